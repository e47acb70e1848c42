package eval

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/snapeval/snapeval/llm"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func TestTornTailIsCut(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := Record{Bench: "b", ItemID: "i", Policy: "full", Output: "x"}
	if err := st.Append(r, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	p := filepath.Join(dir, JournalFile)
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"bench":"b","item_id":"j","pol`)
	f.Close()
	st, err = OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(st.Records()); got != 1 {
		t.Fatalf("%d records after torn tail, want 1", got)
	}
	r.ItemID = "k"
	if err := st.Append(r, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	data, _ := os.ReadFile(p)
	if n := strings.Count(string(data), "\n"); n != 2 || strings.Contains(string(data), `"pol`+"\n") {
		t.Fatalf("journal after append:\n%s", data)
	}
}

func TestMalformedJournalLineNamed(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, JournalFile), []byte("{\"bench\":\"b\",\"item_id\":\"i\",\"policy\":\"full\"}\nnot json\n{}\n"), 0o644)
	_, err := OpenStore(dir)
	if err == nil || !strings.Contains(err.Error(), "records.jsonl:2") {
		t.Fatalf("error %v, want one naming records.jsonl:2", err)
	}
}

func TestParquetRoundTrip(t *testing.T) {
	recs := []Record{
		{RunID: "r", Bench: "aime24", ItemID: "1", Policy: "full", Output: "\\boxed{5}", Extracted: "5", Correct: true, Score: 1, Tags: "year=2024"},
		{RunID: "r", Bench: "aime24", ItemID: "1", Policy: "snapstream:budget=1024", Sample: 1, ErrorKind: llm.ErrKindBackend, Error: "HTTP 500"},
	}
	p := filepath.Join(t.TempDir(), RecordsFile)
	if err := WriteParquet(p, recs); err != nil {
		t.Fatal(err)
	}
	got, err := parquet.ReadFile[Record](p)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(recs)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Fatalf("round trip:\n%s\n%s", a, b)
	}
}

func TestTags(t *testing.T) {
	s := TagString(map[string]string{"length": "long", "difficulty": "hard"})
	if s != "difficulty=hard;length=long" {
		t.Fatal(s)
	}
	if m := ParseTags(s); m["length"] != "long" || len(m) != 2 {
		t.Fatal(m)
	}
}

func FuzzJournal(f *testing.F) {
	f.Add([]byte("{\"bench\":\"b\",\"item_id\":\"i\",\"policy\":\"full\"}\n"))
	f.Add([]byte("{\"bench\":\"b\",\"item_id\":\"i\",\"policy\":\"full\"}\n{\"be"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, JournalFile)
		os.WriteFile(p, data, 0o644)
		recs, off, err := readJournal(p)
		if err != nil {
			return
		}
		if off > int64(len(data)) || (len(recs) > 0 && off == 0) {
			t.Fatalf("offset %d of %d with %d records", off, len(data), len(recs))
		}
	})
}

// TestSecondWriterRefused: while one Store holds a run directory, another OpenStore is refused with a message
// naming the holder; once the first closes, the directory opens again.
func TestSecondWriterRefused(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenStore(dir)
	host, _ := os.Hostname()
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second OpenStore: %v, want ErrLocked", err)
	}
	for _, want := range []string{fmt.Sprintf("pid %d", os.Getpid()), "host " + host, "started 20", "--out"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = OpenStore(dir)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	st.Close()
}

// TestSecondWriterRefusedAcrossProcesses holds the lock in a child process (this test binary) and opens the
// directory here.
func TestSecondWriterRefusedAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("SNAPEVAL_TEST_HOLD_LOCK"); dir != "" {
		st, err := OpenStore(dir)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		io.ReadAll(os.Stdin) // hold until the parent closes our stdin
		st.Close()
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondWriterRefusedAcrossProcesses$")
	cmd.Env = append(os.Environ(), "SNAPEVAL_TEST_HOLD_LOCK="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "locked\n" {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("child: %q", line)
	}
	_, err := OpenStore(dir)
	stdin.Close()
	cmd.Wait()
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Fatalf("OpenStore while a child holds the lock: %v, want ErrLocked naming pid %d", err, cmd.Process.Pid)
	}
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatalf("after the child ended: %v", err)
	}
	st.Close()
}

// TestTornLastLine: a last line that is not a whole record is dropped whether or not it has its newline (its record
// is redone), for the writer and for readers (report, export); a malformed line before it stays an error.
func TestTornLastLine(t *testing.T) {
	good := `{"bench":"b","item_id":"i","policy":"full","output":"x"}` + "\n"
	for _, tc := range []struct {
		name, journal string
		records       int
		err           string
	}{
		{"no newline", good + `{"bench":"b","item_id":"j","pol`, 1, ""},
		{"with newline", good + `{"bench":"b","item_id":"j","pol` + "\n", 1, ""},
		{"zeros", good + "\x00\x00\x00\n", 1, ""},
		{"only line torn", `{"bench":"b"` + "\n", 0, ""},
		{"torn line not last", good + `{"bench":"b","item_id":"j","pol` + "\n" + good, 0, "records.jsonl:2: malformed record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, JournalFile)
			os.WriteFile(p, []byte(tc.journal), 0o644)
			WriteManifest(dir, Manifest{RunID: "r"})
			_, recs, lerr := LoadRun(dir)
			st, err := OpenStore(dir)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || lerr == nil || !strings.Contains(lerr.Error(), tc.err) {
					t.Fatalf("OpenStore: %v; LoadRun: %v; want errors naming %q", err, lerr, tc.err)
				}
				return
			}
			if err != nil || lerr != nil {
				t.Fatalf("OpenStore: %v; LoadRun: %v", err, lerr)
			}
			if len(st.Records()) != tc.records || len(recs) != tc.records {
				t.Fatalf("%d records (LoadRun %d), want %d", len(st.Records()), len(recs), tc.records)
			}
			if err := st.Append(Record{Bench: "b", ItemID: "j", Policy: "full"}, nil); err != nil {
				t.Fatal(err)
			}
			st.Close()
			recs2, _, err := readJournal(p)
			if err != nil || len(recs2) != tc.records+1 {
				t.Fatalf("after append: %d records, %v", len(recs2), err)
			}
		})
	}
}

func TestRunConfigValidate(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name string
		cfg  RunConfig
		want string // "" when valid
	}{
		{"defaults", RunConfig{Concurrency: 1}, ""},
		{"limit", RunConfig{Concurrency: 1, Limit: -3}, "--limit -3"},
		{"samples", RunConfig{Concurrency: 1, Samples: -1}, "--samples -1"},
		{"max new", RunConfig{Concurrency: 1, MaxNew: -2}, "--max-new -2"},
		{"concurrency", RunConfig{}, "--concurrency 0"},
		{"temperature", RunConfig{Concurrency: 1, Temperature: f(-1)}, "--temperature -1"},
		{"top-p", RunConfig{Concurrency: 1, TopP: f(5)}, "--top-p 5"},
		{"greedy", RunConfig{Concurrency: 1, Temperature: f(0), TopP: f(1)}, ""},
	} {
		err := tc.cfg.Validate()
		if (tc.want == "") != (err == nil) || err != nil && !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestErrorSummary(t *testing.T) {
	for _, tc := range []struct {
		kinds map[string]int
		want  string
	}{
		{map[string]int{"backend": 2, "timeout": 1}, "3 of 10 records are errors (2 backend, 1 timeout; see `snapeval export D`): re-run the same command to retry them"},
		{map[string]int{"context_overflow": 4}, "4 of 10 records are errors (4 context_overflow; see `snapeval export D`): they recur on every try"},
		{map[string]int{"context_overflow": 1, "backend": 2}, "re-run the same command to retry the 2 retryable ones; the 1 context_overflow ones recur on every try"},
	} {
		got := ErrorSummary(tc.kinds, 10, "D")
		if !strings.Contains(got, tc.want) {
			t.Errorf("%v: %q, want it to contain %q", tc.kinds, got, tc.want)
		}
		if tc.kinds["backend"] == 0 && strings.Contains(got, "retry them") {
			t.Errorf("%v: %q offers a retry that cannot help", tc.kinds, got)
		}
	}
}
