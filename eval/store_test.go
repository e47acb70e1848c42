package eval

import (
	"encoding/json"
	"os"
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
