package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"

	"github.com/snapeval/snapeval/internal/atomicfile"
)

// Files of a run directory.
const (
	// JournalFile is the durable, append-only record journal written as the run goes (one JSON record per line).
	JournalFile = "records.jsonl"
	// RecordsFile is the columnar copy of the records (sorted), written whenever a run stops.
	RecordsFile = "records.parquet"
	// ManifestFile describes the run (config, versions, datasets, backend).
	ManifestFile = "manifest.json"
	// TimingsFile holds per-request wall-clock timings; kept apart from records because they differ between runs.
	TimingsFile = "timings.jsonl"
)

// Key identifies a record: one (benchmark, item, policy, sample).
type Key struct {
	Bench, ItemID, Policy string
	Sample                int
}

// Key returns the record's key.
func (r Record) Key() Key { return Key{r.Bench, r.ItemID, r.Policy, r.Sample} }

func (k Key) String() string {
	return fmt.Sprintf("%s/%s/%s/%d", k.Bench, k.ItemID, k.Policy, k.Sample)
}

// Timing is one request's wall-clock measurements, stored in timings.jsonl.
type Timing struct {
	Bench        string  `json:"bench"`
	ItemID       string  `json:"item_id"`
	Policy       string  `json:"policy"`
	Sample       int     `json:"sample"`
	PrefillMS    float64 `json:"prefill_ms"`
	DecodeMS     float64 `json:"decode_ms"`
	TotalMS      float64 `json:"total_ms"`
	OutputTokens int     `json:"output_tokens"`
}

// Store is a run directory's record journal. Every Append is flushed and fsynced before it returns, so a record
// that Append acknowledged survives SIGKILL. Safe for concurrent use. An open Store holds the directory's lock
// (LockFile): one writer per run directory.
type Store struct {
	dir     string
	mu      sync.Mutex
	lock    *dirLock
	journal *os.File
	timings *os.File
	records map[Key]Record
}

// OpenStore opens (creating if needed) the run directory dir, takes its lock and loads the records already
// journaled there. When another process has the directory open, the error wraps ErrLocked and names it (pid,
// host, start time). A torn final line (the process was killed mid-write) is cut off and its record redone; a
// malformed line before the last is an error naming it.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	st, err := openLocked(dir)
	if err != nil {
		lock.unlock()
		return nil, err
	}
	st.lock = lock
	return st, nil
}

func openLocked(dir string) (*Store, error) {
	path := filepath.Join(dir, JournalFile)
	recs, good, err := readJournal(path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	// Cut a torn tail so appends start on a fresh line.
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: truncating torn tail: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	t, err := os.OpenFile(filepath.Join(dir, TimingsFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &Store{dir: dir, journal: f, timings: t, records: map[Key]Record{}}
	for _, r := range recs {
		s.records[r.Key()] = r
	}
	return s, nil
}

// readJournal reads a journal, returning the records (later lines superseding earlier ones for the same key are
// left to the caller) and the byte length of the well-formed prefix. The last line is dropped when it is torn (a
// kill mid-write: no final newline, or not a whole JSON object); any other malformed line is an error naming it.
func readJournal(path string) ([]Record, int64, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var recs []Record
	var off int64
	line := 0
	for len(data) > 0 {
		line++
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			// A final line without its newline was torn by a kill: drop it.
			break
		}
		var r Record
		if err := json.Unmarshal(data[:nl], &r); err != nil {
			if nl+1 == len(data) {
				break // the last line, torn: dropped, its record is redone
			}
			return nil, 0, fmt.Errorf("%s:%d: malformed record: %w", path, line, err)
		}
		if r.Bench == "" || r.ItemID == "" || r.Policy == "" {
			return nil, 0, fmt.Errorf("%s:%d: record lacks bench, item_id or policy", path, line)
		}
		recs = append(recs, r)
		off += int64(nl + 1)
		data = data[nl+1:]
	}
	return recs, off, nil
}

// Has reports whether a record for k exists; with retryErrors an error record counts as missing.
func (s *Store) Has(k Key, retryErrors bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[k]
	return ok && !(retryErrors && r.IsError())
}

// Append durably writes one record (and its timing, when t is not nil).
func (s *Store) Append(r Record, t *Timing) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.journal.Write(line); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(s.dir, JournalFile), err)
	}
	if err := s.journal.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", filepath.Join(s.dir, JournalFile), err)
	}
	s.records[r.Key()] = r
	if t != nil {
		if tl, err := json.Marshal(t); err == nil {
			s.timings.Write(append(tl, '\n'))
		}
	}
	return nil
}

// Records returns the current records (one per key), in no particular order.
func (s *Store) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, 0, len(s.records))
	for _, r := range s.records {
		out = append(out, r)
	}
	return out
}

// Close closes the journal and releases the directory's lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.journal.Close()
	if e := s.timings.Close(); err == nil {
		err = e
	}
	if e := s.lock.unlock(); err == nil {
		err = e
	}
	s.lock = nil
	return err
}

// SortRecords orders records deterministically: benchmarks and policies in the order given (unknown ones after, by name),
// then item id, then sample.
func SortRecords(recs []Record, benches, policies []string) {
	rank := func(order []string, s string) int {
		for i, o := range order {
			if o == s {
				return i
			}
		}
		return len(order)
	}
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if ra, rb := rank(benches, a.Bench), rank(benches, b.Bench); ra != rb {
			return ra < rb
		}
		if a.Bench != b.Bench {
			return a.Bench < b.Bench
		}
		if a.ItemID != b.ItemID {
			return a.ItemID < b.ItemID
		}
		if ra, rb := rank(policies, a.Policy), rank(policies, b.Policy); ra != rb {
			return ra < rb
		}
		if a.Policy != b.Policy {
			return a.Policy < b.Policy
		}
		return a.Sample < b.Sample
	})
}

// WriteParquet writes records (already sorted) to path atomically.
func WriteParquet(path string, recs []Record) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return parquet.Write(w, recs, parquet.CreatedBy("snapeval", "", ""))
	})
}

// WriteManifest writes manifest.json atomically.
func WriteManifest(dir string, m Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ManifestFile), append(data, '\n'), 0o644)
}

// ReadManifest reads dir/manifest.json.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// LoadRun reads a run directory: its manifest and its records (from the journal, or from records.parquet when the
// journal is absent), one per key, sorted deterministically.
func LoadRun(dir string) (Manifest, []Record, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return m, nil, fmt.Errorf("%s is not a snapeval run directory: %w", dir, err)
	}
	recs, _, err := readJournal(filepath.Join(dir, JournalFile))
	if err != nil {
		return m, nil, err
	}
	if recs == nil {
		p := filepath.Join(dir, RecordsFile)
		if _, statErr := os.Stat(p); statErr == nil {
			recs, err = parquet.ReadFile[Record](p)
			if err != nil {
				return m, nil, fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	byKey := map[Key]Record{}
	for _, r := range recs {
		byKey[r.Key()] = r
	}
	out := make([]Record, 0, len(byKey))
	for _, r := range byKey {
		out = append(out, r)
	}
	SortRecords(out, m.Config.Benches, m.Config.Policies)
	return m, out, nil
}

// LoadRuns merges several run directories (the shards of one run, or runs of the same config on several machines).
// Their manifests must describe the same run (same run id); a key present in two directories must hold the same record.
func LoadRuns(dirs []string) (Manifest, []Record, error) {
	if len(dirs) == 0 {
		return Manifest{}, nil, errors.New("no run directory given")
	}
	var merged Manifest
	byKey := map[Key]Record{}
	from := map[Key]string{}
	seenDir := map[string]bool{}
	shards := map[string]bool{}
	planned, count := 0, 0
	for i, dir := range dirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return merged, nil, err
		}
		if seenDir[abs] {
			return merged, nil, fmt.Errorf("%s is given twice", dir)
		}
		seenDir[abs] = true
		m, recs, err := LoadRun(dir)
		if err != nil {
			return merged, nil, err
		}
		if i == 0 {
			merged = m
		} else if m.RunID != merged.RunID {
			return merged, nil, fmt.Errorf("%s holds run %s but %s holds run %s: only shards of one run can be merged",
				dir, m.RunID, dirs[0], merged.RunID)
		}
		if m.Shard != "" {
			if shards[m.Shard] {
				return merged, nil, fmt.Errorf("%s holds shard %s, which another directory already holds", dir, m.Shard)
			}
			shards[m.Shard] = true
			_, n, _ := strings.Cut(m.Shard, "/")
			count, _ = strconv.Atoi(n)
		}
		planned += m.Planned
		for _, r := range recs {
			k := r.Key()
			if prev, ok := byKey[k]; ok && !sameRecord(prev, r) {
				return merged, nil, fmt.Errorf("record %s differs between %s and %s", k, from[k], dir)
			}
			byKey[k] = r
			from[k] = dir
		}
	}
	merged.Planned = planned
	if len(dirs) > 1 && len(shards) > 0 {
		// Only a full set of shards is the whole run; otherwise say which shards the merge holds.
		merged.Shard = ""
		if len(shards) < count {
			var held []string
			for s := range shards {
				held = append(held, s)
			}
			sort.Strings(held)
			merged.Shard = strings.Join(held, ",")
		}
	}
	out := make([]Record, 0, len(byKey))
	for _, r := range byKey {
		out = append(out, r)
	}
	SortRecords(out, merged.Config.Benches, merged.Config.Policies)
	return merged, out, nil
}

func sameRecord(a, b Record) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TagString renders tags as "k=v;k=v" sorted by key (the Record.Tags form).
func TagString(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(tags[k])
	}
	return b.String()
}

// ParseTags parses a Record.Tags string ("k=v;k=v") back into a map; a pair without '=' is a key with an empty value.
func ParseTags(s string) map[string]string {
	m := map[string]string{}
	if s == "" {
		return m
	}
	for _, kv := range strings.Split(s, ";") {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
