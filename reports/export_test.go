package reports

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/llm"
)

func exportRecords() []eval.Record {
	return []eval.Record{
		{RunID: "r", Bench: "aime24", ItemID: "1", Policy: "full", Sample: 0, Seed: 18446744073709551615, Output: "x <y> & \"z\"\nline2",
			Extracted: "42", Correct: true, Score: 1, Verdict: "pass", OutputTokens: 7, KVBytes: 1 << 40, Tags: "a=b;c=d"},
		{RunID: "r", Bench: "aime24", ItemID: "1", Policy: "snapstream:budget=64", Sample: 1, ErrorKind: llm.ErrKindTimeout,
			Error: "deadline, exceeded", Score: 0.25},
	}
}

func TestExportJSONL(t *testing.T) {
	recs := exportRecords()
	var buf bytes.Buffer
	if err := WriteRecordsJSONL(&buf, recs); err != nil {
		t.Fatal(err)
	}
	golden(t, "export.jsonl", buf.Bytes())
	sc := bufio.NewScanner(&buf)
	i := 0
	for sc.Scan() {
		var fields map[string]any
		if err := json.Unmarshal(sc.Bytes(), &fields); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		for _, k := range []string{"bench", "item_id", "policy", "sample", "output", "extracted", "correct", "error", "error_kind"} {
			if _, ok := fields[k]; !ok {
				t.Errorf("line %d lacks %q", i+1, k)
			}
		}
		var back eval.Record
		if err := json.Unmarshal(sc.Bytes(), &back); err != nil || !reflect.DeepEqual(back, recs[i]) {
			t.Errorf("line %d does not round-trip: %+v, %v", i+1, back, err)
		}
		i++
	}
	if i != len(recs) {
		t.Errorf("%d lines, want %d", i, len(recs))
	}
}

func TestExportCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteRecordsCSV(&buf, exportRecords()); err != nil {
		t.Fatal(err)
	}
	golden(t, "export.csv", buf.Bytes())
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want header + 2", len(rows))
	}
	col := map[string]int{}
	for i, c := range rows[0] {
		col[c] = i
	}
	if got := rows[1][col["output"]]; got != "x <y> & \"z\"\nline2" {
		t.Errorf("output cell %q", got)
	}
	if rows[1][col["seed"]] != "18446744073709551615" || rows[2][col["score"]] != "0.25" || rows[2][col["error"]] != "deadline, exceeded" {
		t.Errorf("seed/score/error cells %q %q %q", rows[1][col["seed"]], rows[2][col["score"]], rows[2][col["error"]])
	}
	if len(rows[0]) != reflect.TypeFor[eval.Record]().NumField() {
		t.Errorf("%d columns for %d record fields", len(rows[0]), reflect.TypeFor[eval.Record]().NumField())
	}
}
