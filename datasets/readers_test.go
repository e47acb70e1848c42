package datasets

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

func collect(t *testing.T, read func(RowFunc) error) ([]int, []string, error) {
	t.Helper()
	var pos []int
	var rows []string
	err := read(func(p int, raw []byte) error {
		pos = append(pos, p)
		rows = append(rows, string(raw))
		return nil
	})
	return pos, rows, err
}

func TestReadJSONArray(t *testing.T) {
	in := ` [ {"a":1}, {"a":"x\u2019"} ,{"a":[1,2]} ] `
	pos, rows, err := collect(t, func(fn RowFunc) error { return ReadJSONArray(strings.NewReader(in), fn) })
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || pos[2] != 3 || rows[1] != `{"a":"x\u2019"}` {
		t.Fatalf("pos %v rows %q", pos, rows)
	}
	bad := []struct{ in, want string }{
		{`{"a":1}`, "want a JSON array"},
		{`[{"a":1}, {"a":}]`, "element 2"},
		{`[{"a":1}`, "unterminated"},
		{`[1] [2]`, "trailing"},
		{``, "offset 0"},
	}
	for _, b := range bad {
		_, _, err := collect(t, func(fn RowFunc) error { return ReadJSONArray(strings.NewReader(b.in), fn) })
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q: err = %v, want %q", b.in, err, b.want)
		}
	}
	stop := errors.New("stop")
	err = ReadJSONArray(strings.NewReader(`[1,2,3]`), func(p int, _ []byte) error {
		if p == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !strings.Contains(err.Error(), "element 2") {
		t.Fatalf("callback error = %v", err)
	}
}

func TestReadJSONL(t *testing.T) {
	long := strings.Repeat("x", 3<<20) // longer than any scanner default
	in := "{\"a\":1}\r\n\n  \n{\"b\":\"" + long + "\"}\n{\"c\":3}"
	pos, rows, err := collect(t, func(fn RowFunc) error { return ReadJSONL(strings.NewReader(in), fn) })
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 4, 5}; len(pos) != 3 || pos[0] != want[0] || pos[1] != want[1] || pos[2] != want[2] {
		t.Fatalf("positions %v, want %v", pos, want)
	}
	if len(rows[1]) != len(long)+8 || rows[0] != `{"a":1}` {
		t.Fatal("row content")
	}
	_, _, err = collect(t, func(fn RowFunc) error { return ReadJSONL(strings.NewReader("{}\n{}\n{oops}\n"), fn) })
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v, want line 3", err)
	}
}

type pqRow struct {
	ID     string  `parquet:"ID"`
	N      int64   `parquet:"n"`
	Small  int32   `parquet:"small"`
	F      float64 `parquet:"f"`
	OK     bool    `parquet:"ok"`
	Maybe  *string `parquet:"maybe,optional"`
	Unused float32 `parquet:"unused"`
}

func writeParquet(t testing.TB, rows []pqRow) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[pqRow](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadParquet(t *testing.T) {
	s := "present"
	var rows []pqRow
	for i := 0; i < 40; i++ { // more than one read batch
		r := pqRow{ID: "2024-I-" + string(rune('a'+i%26)), N: int64(i), Small: int32(-i), F: float64(i) / 2, OK: i%2 == 0}
		if i == 3 {
			r.Maybe = &s
		}
		rows = append(rows, r)
	}
	b := writeParquet(t, rows)
	pos, got, err := collect(t, func(fn RowFunc) error { return ReadParquet(bytes.NewReader(b), int64(len(b)), fn) })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 40 || pos[39] != 40 {
		t.Fatalf("%d rows", len(got))
	}
	var m map[string]any
	json.Unmarshal([]byte(got[3]), &m)
	if m["ID"] != "2024-I-d" || m["n"] != float64(3) || m["small"] != float64(-3) || m["f"] != 1.5 || m["ok"] != false || m["maybe"] != "present" {
		t.Fatalf("row 4 = %s", got[3])
	}
	json.Unmarshal([]byte(got[4]), &m)
	if v, ok := m["maybe"]; !ok || v != nil {
		t.Fatalf("null column: %s", got[4])
	}
	if err := ReadParquet(bytes.NewReader(b[:len(b)/2]), int64(len(b)/2), func(int, []byte) error { return nil }); err == nil {
		t.Fatal("truncated parquet: want error")
	}
}

func TestReadFileDispatch(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.json"), []byte(`[{"x":1},{"x":2}]`), 0o644)
	os.WriteFile(filepath.Join(dir, "a.jsonl"), []byte("{\"x\":1}\n{\"x\":2}\n{\"x\":3}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.parquet"), writeParquet(t, []pqRow{{ID: "a"}}), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.jsonl"), []byte("{}\nnope\n"), 0o644)
	for name, want := range map[string]int{"a.json": 2, "a.jsonl": 3, "a.parquet": 1} {
		n := 0
		if err := ReadFile(filepath.Join(dir, name), "", func(int, []byte) error { n++; return nil }); err != nil || n != want {
			t.Errorf("%s: %d rows, err %v", name, n, err)
		}
	}
	err := ReadFile(filepath.Join(dir, "bad.jsonl"), "", func(int, []byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl: line 2") {
		t.Errorf("err = %v", err)
	}
	if err := ReadFile(filepath.Join(dir, "x.csv"), "", nil); err == nil {
		t.Error("csv: want error")
	}
}

func FuzzReadJSONArray(f *testing.F) {
	for _, s := range []string{`[]`, `[{"a":1},{"b":[1,2,{"c":null}]}]`, `[1,`, `{"a":1}`, `[1] x`, `[{"_id":"x","context":"\u2019"}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = ReadJSONArray(bytes.NewReader(b), func(_ int, raw []byte) error {
			if !json.Valid(raw) {
				t.Fatalf("element is not valid JSON: %q", raw)
			}
			return nil
		})
	})
}

func FuzzReadJSONL(f *testing.F) {
	for _, s := range []string{"{}\n{}\n", "{\"a\":1}\r\n\n[1,2]", "x\n", "\n\n\n", "{\"problem\":\"$9$\",\"answer\":\"025\"}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		last := 0
		_ = ReadJSONL(bytes.NewReader(b), func(line int, raw []byte) error {
			if line <= last || !json.Valid(raw) {
				t.Fatalf("line %d after %d, raw %q", line, last, raw)
			}
			last = line
			return nil
		})
	})
}

func FuzzReadParquet(f *testing.F) {
	good := writeParquet(f, []pqRow{{ID: "a", N: 1}, {ID: "b", N: 2}})
	f.Add(good)
	f.Add(good[:len(good)-10])
	f.Add([]byte("PAR1PAR1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = ReadParquet(bytes.NewReader(b), int64(len(b)), func(_ int, raw []byte) error {
			if !json.Valid(raw) {
				t.Fatalf("row is not valid JSON: %q", raw)
			}
			return nil
		})
	})
}

// BenchmarkReadJSONArray streams a LongBench-shaped array (16 rows with 4 MiB contexts).
func BenchmarkReadJSONArray(b *testing.B) {
	ctx := strings.Repeat("Synthetic context words. ", 4<<20/25)
	var buf bytes.Buffer
	buf.WriteString("[")
	for i := 0; i < 16; i++ {
		if i > 0 {
			buf.WriteString(",")
		}
		row, _ := json.Marshal(map[string]string{"_id": "x", "answer": "A", "context": ctx})
		buf.Write(row)
	}
	buf.WriteString("]")
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := ReadJSONArray(bytes.NewReader(data), func(int, []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadJSONL streams the same rows as JSON lines.
func BenchmarkReadJSONL(b *testing.B) {
	ctx := strings.Repeat("Synthetic context words. ", 4<<20/25)
	var buf bytes.Buffer
	for i := 0; i < 16; i++ {
		row, _ := json.Marshal(map[string]string{"_id": "x", "answer": "A", "context": ctx})
		buf.Write(row)
		buf.WriteByte('\n')
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := ReadJSONL(bytes.NewReader(data), func(int, []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
