package datasets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	snapeval "github.com/snapeval/snapeval"
	"github.com/snapeval/snapeval/hub"
	"github.com/snapeval/snapeval/internal/atomicfile"
)

// LocalLockName is the trust-on-first-use override file kept in the cache directory.
const LocalLockName = "lock.local.json"

// CacheDir returns the dataset cache: $SNAPEVAL_CACHE, else $XDG_CACHE_HOME/snapeval, else ~/.cache/snapeval.
func CacheDir() string {
	if d := os.Getenv("SNAPEVAL_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "snapeval")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "snapeval")
	}
	return filepath.Join(os.TempDir(), "snapeval-cache")
}

// Path returns where a dataset file lives in the cache: <cacheDir>/<name>/<file>
// (cacheDir "" means CacheDir()). The revision is not part of the path: the lock's sha256 says which bytes
// belong there, and `snapeval data verify` checks them.
func Path(cacheDir, name, file string) string {
	if cacheDir == "" {
		cacheDir = CacheDir()
	}
	return filepath.Join(cacheDir, name, filepath.FromSlash(file))
}

// FindLock locates datasets.lock: $SNAPEVAL_LOCK, else datasets.lock in the working directory or a parent.
func FindLock() (string, error) {
	if p := os.Getenv("SNAPEVAL_LOCK"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "datasets.lock")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("datasets.lock not found in the working directory or its parents (set SNAPEVAL_LOCK or pass --lock)")
		}
		dir = parent
	}
}

// localOverride is the TOFU record: dataset -> revision -> path -> sha256 (and size).
type localOverride struct {
	Version int                                       `json:"version"`
	Seen    map[string]map[string]map[string]seenFile `json:"seen"`
}

type seenFile struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

func loadOverride(cacheDir string) (*localOverride, error) {
	o := &localOverride{Version: 1, Seen: map[string]map[string]map[string]seenFile{}}
	b, err := os.ReadFile(filepath.Join(cacheDir, LocalLockName))
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, o); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(cacheDir, LocalLockName), err)
	}
	if o.Seen == nil {
		o.Seen = map[string]map[string]map[string]seenFile{}
	}
	return o, nil
}

func (o *localOverride) get(d *Dataset, f *File) (seenFile, bool) {
	s, ok := o.Seen[d.Name][d.Revision][f.Path]
	return s, ok && hexRe.MatchString(s.SHA256)
}

func (o *localOverride) put(d *Dataset, f *File, s seenFile) {
	if o.Seen[d.Name] == nil {
		o.Seen[d.Name] = map[string]map[string]seenFile{}
	}
	if o.Seen[d.Name][d.Revision] == nil {
		o.Seen[d.Name][d.Revision] = map[string]seenFile{}
	}
	o.Seen[d.Name][d.Revision][f.Path] = s
}

func (o *localOverride) save(cacheDir string) error {
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(cacheDir, LocalLockName), append(b, '\n'), 0o644)
}

// expected returns the sha256 and size a local file must have: the lock's pin, else a TOFU record.
func expected(o *localOverride, d *Dataset, f *File) (sha string, size int64, from string) {
	if f.Pinned() {
		return f.SHA256, f.KnownSize(), "lock"
	}
	if s, ok := o.get(d, f); ok {
		return s.SHA256, s.Size, LocalLockName
	}
	return "", f.KnownSize(), ""
}

// PullOptions configures Pull.
type PullOptions struct {
	// Client downloads from the Hub (default hub.NewFromEnv()).
	Client *hub.Client
	// TrustOnFirstUse allows files whose sha256 is unknown; the hash seen is recorded in lock.local.json.
	TrustOnFirstUse bool
	// Log receives warnings and progress lines (default io.Discard).
	Log io.Writer
}

// Pull downloads every file of dataset name into cacheDir (verified; files already there and matching are kept).
func Pull(ctx context.Context, lock *Lock, name, cacheDir string, opt PullOptions) error {
	d, err := lock.Dataset(name)
	if err != nil {
		return err
	}
	if cacheDir == "" {
		cacheDir = CacheDir()
	}
	if opt.Client == nil {
		opt.Client = hub.NewFromEnv()
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if d.Revision == Unknown {
		return fmt.Errorf("%s: revision unknown in %s: pin a commit before pulling", name, lockName(lock))
	}
	o, err := loadOverride(cacheDir)
	if err != nil {
		return err
	}
	for i := range d.Files {
		f := &d.Files[i]
		sha, size, from := expected(o, d, f)
		if sha == "" && !opt.TrustOnFirstUse {
			return fmt.Errorf("%s/%s: sha256 unknown in %s; refusing to download an unverifiable file (pass --trust-on-first-use to record the hash seen)",
				name, f.Path, lockName(lock))
		}
		u, err := opt.Client.URL(d.RepoType, d.Repo, d.Revision, f.Path)
		if err != nil {
			return err
		}
		dest := Path(cacheDir, name, f.Path)
		fmt.Fprintf(opt.Log, "pull %s/%s from %s@%s\n", name, f.Path, d.Repo, d.Revision[:12])
		res, err := opt.Client.FetchURL(ctx, u, dest, hub.FileSpec{Path: f.Path, Size: size, SHA256: sha})
		if err != nil {
			return fmt.Errorf("%s/%s: %w", name, f.Path, err)
		}
		if sha == "" {
			fmt.Fprintf(opt.Log, "WARNING: %s/%s is not pinned; trusting it on first use: sha256 %s, %d bytes (recorded in %s)\n",
				name, f.Path, res.SHA256, res.Size, filepath.Join(cacheDir, LocalLockName))
			o.put(d, f, seenFile{SHA256: res.SHA256, Size: res.Size})
			if err := o.save(cacheDir); err != nil {
				return err
			}
		} else if from == LocalLockName {
			fmt.Fprintf(opt.Log, "note: %s/%s verified against the trust-on-first-use record, not the lock\n", name, f.Path)
		}
	}
	return nil
}

func lockName(l *Lock) string {
	if l.Source != "" {
		return l.Source
	}
	return "datasets.lock"
}

// Status is the verification state of one cached file.
type Status struct {
	Dataset string
	File    string
	Local   string
	// State is "ok", "missing", "mismatch", "unpinned" (present, nothing to check against) or "tofu" (matches a TOFU record).
	State  string
	SHA256 string
	Size   int64
	Detail string
}

// Verify hashes the cached files of the named datasets (all when names is empty).
func Verify(lock *Lock, cacheDir string, names ...string) ([]Status, error) {
	if cacheDir == "" {
		cacheDir = CacheDir()
	}
	o, err := loadOverride(cacheDir)
	if err != nil {
		return nil, err
	}
	var ds []*Dataset
	if len(names) == 0 {
		for i := range lock.Datasets {
			ds = append(ds, &lock.Datasets[i])
		}
	} else {
		for _, n := range names {
			members := lock.Members(n)
			if len(members) == 0 {
				members = []string{n}
			}
			for _, m := range members {
				d, err := lock.Dataset(m)
				if err != nil {
					return nil, err
				}
				ds = append(ds, d)
			}
		}
	}
	var out []Status
	for _, d := range ds {
		for i := range d.Files {
			f := &d.Files[i]
			st := Status{Dataset: d.Name, File: f.Path, Local: Path(cacheDir, d.Name, f.Path)}
			sha, size, from := expected(o, d, f)
			res, err := hub.HashFile(st.Local)
			switch {
			case errors.Is(err, os.ErrNotExist):
				st.State = "missing"
			case err != nil:
				return nil, err
			default:
				st.SHA256, st.Size = res.SHA256, res.Size
				switch {
				case sha == "":
					st.State = "unpinned"
				case res.SHA256 != sha:
					st.State = "mismatch"
					st.Detail = fmt.Sprintf("sha256 %s, want %s (%s)", res.SHA256, sha, from)
				case size > 0 && res.Size != size:
					st.State = "mismatch"
					st.Detail = fmt.Sprintf("size %d, want %d", res.Size, size)
				case from == LocalLockName:
					st.State = "tofu"
				default:
					st.State = "ok"
				}
			}
			out = append(out, st)
		}
	}
	return out, nil
}

// Import copies a local file into the cache as a file of dataset name. The file must match a pinned file's
// sha256 (its name does not matter); a file of an unpinned dataset is accepted by base name only with trust,
// and its hash is then recorded like a trust-on-first-use pull. It returns the cache path.
func Import(lock *Lock, name, src, cacheDir string, trust bool) (string, error) {
	d, err := lock.Dataset(name)
	if err != nil {
		return "", err
	}
	if cacheDir == "" {
		cacheDir = CacheDir()
	}
	res, err := hub.HashFile(src)
	if err != nil {
		return "", err
	}
	o, err := loadOverride(cacheDir)
	if err != nil {
		return "", err
	}
	var target *File
	for i := range d.Files {
		if sha, _, _ := expected(o, d, &d.Files[i]); sha == res.SHA256 {
			target = &d.Files[i]
			break
		}
	}
	tofu := false
	if target == nil {
		base := filepath.Base(src)
		for i := range d.Files {
			f := &d.Files[i]
			if sha, _, _ := expected(o, d, f); sha == "" && filepath.Base(filepath.FromSlash(f.Path)) == base {
				if !trust {
					return "", fmt.Errorf("%s: %s is not pinned (sha256 unknown); pass --trust-on-first-use to import it anyway", name, f.Path)
				}
				target, tofu = f, true
				break
			}
		}
	}
	if target == nil {
		var want []string
		for _, f := range d.Files {
			want = append(want, f.Path+"="+f.SHA256)
		}
		sort.Strings(want)
		return "", fmt.Errorf("%s: sha256 %s matches no file of dataset %s (%s)", src, res.SHA256, name, strings.Join(want, ", "))
	}
	if target.KnownSize() > 0 && res.Size != target.KnownSize() {
		return "", fmt.Errorf("%s: size %d, want %d", src, res.Size, target.KnownSize())
	}
	dest := Path(cacheDir, name, target.Path)
	if err := copyFile(src, dest); err != nil {
		return "", err
	}
	if tofu {
		o.put(d, target, seenFile{SHA256: res.SHA256, Size: res.Size})
		if err := o.save(cacheDir); err != nil {
			return "", err
		}
	}
	return dest, nil
}

func copyFile(src, dest string) error {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.Write(dest, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// DefaultLock loads the datasets.lock that FindLock locates, or else the one embedded in the binary. The second
// result names where it came from.
func DefaultLock() (*Lock, string, error) {
	if p, err := FindLock(); err == nil {
		l, err := LoadLock(p)
		return l, p, err
	}
	l, err := ParseLock(snapeval.DatasetsLock)
	if err != nil {
		return nil, "", fmt.Errorf("embedded datasets.lock: %w", err)
	}
	return l, "datasets.lock (embedded)", nil
}
