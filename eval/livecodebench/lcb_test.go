package livecodebench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/sandbox"
)

var update = flag.Bool("update", false, "rewrite golden files")

const o1miniFile = "../../../shared/data/lcb_v5_o1mini_eval_all.json"

func TestRealRowPrivateTests(t *testing.T) {
	b, err := os.ReadFile("testdata/lcb_row_1873A.json")
	if err != nil {
		t.Fatal(err)
	}
	it, err := (&Bench{}).ParseRow(b)
	if err != nil {
		t.Fatal(err)
	}
	p := it.Data.(*Problem)
	if p.Public != 1 || len(p.Tests) != 5 {
		t.Fatalf("public %d, total %d tests; want 1 public + 4 private", p.Public, len(p.Tests))
	}
	for i, tc := range p.Tests {
		if tc.Type != "stdin" || tc.Input == "" || tc.Output == "" {
			t.Errorf("test %d: %+v", i, tc)
		}
	}
	if it.Tags["difficulty"] != "easy" || it.Tags["platform"] != "codeforces" || it.ID != "1873_A" {
		t.Errorf("item %s tags %v", it.ID, it.Tags)
	}
}

func TestUnpickleRejects(t *testing.T) {
	good := []byte("\x80\x04\x95\x07\x00\x00\x00\x00\x00\x00\x00\x8c\x03abc\x94.")
	if s, err := unpickleString(good); err != nil || s != "abc" {
		t.Fatalf("good pickle: %q, %v", s, err)
	}
	bad := map[string][]byte{
		"GLOBAL os.system":   []byte("\x80\x04cos\nsystem\n\x8c\x02ls\x85R."),
		"REDUCE":             []byte("\x80\x04\x8c\x01a\x94R."),
		"two strings":        []byte("\x80\x04\x8c\x01a\x8c\x01b."),
		"no STOP":            []byte("\x80\x04\x8c\x01a"),
		"truncated string":   []byte("\x80\x04X\xff\x00\x00\x00ab."),
		"frame overrun":      []byte("\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00."),
		"trailing bytes":     []byte("\x80\x04\x8c\x01a.x"),
		"bad utf-8":          []byte("\x80\x04\x8c\x01\xff."),
		"empty":              {},
		"protocol 9":         []byte("\x80\x09\x8c\x01a."),
		"MEMOIZE empty":      []byte("\x80\x04\x94\x8c\x01a."),
		"BINUNICODE8 (0x8d)": []byte("\x80\x04\x8d\x01\x00\x00\x00\x00\x00\x00\x00a."),
	}
	for name, b := range bad {
		if _, err := unpickleString(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := unpickleString(bad["GLOBAL os.system"]); !strings.Contains(err.Error(), "opcode 0x63") {
		t.Errorf("GLOBAL error does not name the opcode: %v", err)
	}
}

func FuzzUnpickle(f *testing.F) {
	f.Add([]byte("\x80\x04\x95\x07\x00\x00\x00\x00\x00\x00\x00\x8c\x03abc\x94."))
	f.Add([]byte("\x80\x04X\x02\x00\x00\x00ab."))
	f.Add([]byte("\x80\x04cos\nsystem\n."))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := unpickleString(b)
		if err == nil && !strings.Contains(string(b), s) {
			t.Errorf("decoded %q not in input", s)
		}
	})
}

func FuzzDecodeTests(f *testing.F) {
	b, _ := os.ReadFile("testdata/lcb_row_1873A.json")
	var r Row
	_ = json.Unmarshal(b, &r)
	f.Add(r.PrivateTests)
	f.Add(r.PublicTests)
	f.Add(base64.StdEncoding.EncodeToString([]byte("not zlib")))
	f.Fuzz(func(t *testing.T, s string) { _, _ = DecodeTests(s) })
}

func FuzzParseRows(f *testing.F) {
	b, _ := os.ReadFile("testdata/rows.jsonl")
	f.Add(b)
	f.Add([]byte("[{\"question_id\": 1}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := parseRows("fuzz", b)
		if err != nil {
			return
		}
		for _, r := range rows {
			_, _ = r.Decode()
		}
	})
}

func TestParseRowsErrorsNameLine(t *testing.T) {
	_, err := parseRows("x.jsonl", []byte("{\"question_id\":\"a\"}\n\n{bad\n"))
	if err == nil || !strings.Contains(err.Error(), "x.jsonl:3") {
		t.Errorf("error %v does not name x.jsonl:3", err)
	}
}

func TestReleaseFiles(t *testing.T) {
	cases := []struct {
		tag  string
		want string
	}{
		{"release_v1", "test.jsonl"},
		{"release_v5", "test.jsonl test2.jsonl test3.jsonl test4.jsonl test5.jsonl"},
		{"release_latest", "test.jsonl test2.jsonl test3.jsonl test4.jsonl test5.jsonl test6.jsonl"},
		{"v1", "test.jsonl"},
		{"v6", "test6.jsonl"},
		{"v4_v5", "test4.jsonl test5.jsonl"},
		{"v1_v3", "test.jsonl test2.jsonl test3.jsonl"},
	}
	for _, c := range cases {
		got, err := ReleaseFiles(c.tag)
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("%s: %v %v, want %s", c.tag, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "release_v7", "v5_v4", "v3_v3", "release_v0", "v7", "latest"} {
		if _, err := ReleaseFiles(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestR1Window(t *testing.T) {
	b, err := os.ReadFile(o1miniFile)
	if err != nil {
		t.Skipf("real data absent: %v", err)
	}
	var rows []struct {
		Date       string `json:"contest_date"`
		Difficulty string `json:"difficulty"`
	}
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	n := 0
	official := Window{From: day(2024, 8, 1), To: day(2025, 1, 31)}
	for _, r := range rows {
		d, err := time.Parse("2006-01-02T15:04:05", r.Date)
		if err != nil {
			t.Fatal(err)
		}
		if R1Window.Contains(d) {
			n++
			counts[r.Difficulty]++
		}
		if R1Window.Contains(d) != official.Contains(d) {
			t.Errorf("%s: R1 window and official start/end dates disagree", r.Date)
		}
	}
	if len(rows) != 880 || n != 279 || counts["easy"] != 67 || counts["medium"] != 89 || counts["hard"] != 123 {
		t.Errorf("release_v5 %d rows, window %d %v; want 880, 279 (67 easy, 89 medium, 123 hard)", len(rows), n, counts)
	}
}

func TestExtractCodeCases(t *testing.T) {
	b, err := os.ReadFile("testdata/extract_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct{ QuestionID, Output, Code string }
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := ExtractCode(c.Output); got != c.Code {
			t.Errorf("%s: extraction differs from the official code_list", c.QuestionID)
		}
	}
	tiny := []struct{ in, want string }{
		{"no fences", ""},
		{"```python\nprint(1)\n```", "print(1)"},
		{"```\na\n```\ntext\n```python\nb\n```", "b"},
		{"x ``` y\ncode\nz```", "code"},
		{"```\n```", ""},
		{"```python\nonly one fence", ""},
	}
	for _, c := range tiny {
		if got := ExtractCode(c.in); got != c.want {
			t.Errorf("ExtractCode(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestExtractCodeReal880(t *testing.T) {
	b, err := os.ReadFile(o1miniFile)
	if err != nil {
		t.Skipf("real data absent: %v", err)
	}
	var rows []struct {
		QuestionID string   `json:"question_id"`
		Outputs    []string `json:"output_list"`
		Codes      []string `json:"code_list"`
	}
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rows {
		for i := range r.Outputs {
			n++
			if got := ExtractCode(r.Outputs[i]); got != r.Codes[i] {
				t.Errorf("%s sample %d: extraction differs from the official code_list", r.QuestionID, i)
			}
		}
	}
	if n != 880 {
		t.Errorf("%d outputs, want 880", n)
	}
}

func TestPromptsGolden(t *testing.T) {
	cases := []struct{ name, style, starter string }{
		{"chat_stdin", StyleChat, ""},
		{"chat_starter", StyleChat, "class Solution:\n    def f(self, x: int) -> int:\n        "},
		{"user_stdin", StyleUser, ""},
		{"r1_stdin", StyleR1, ""},
		{"r1_starter", StyleR1, "class Solution:\n    def f(self, x: int) -> int:\n        "},
	}
	for _, c := range cases {
		msgs, err := Messages(c.style, "question-content", c.starter)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.MarshalIndent(msgs, "", " ")
		path := filepath.Join("testdata", "golden", c.name+".json")
		if *update {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: prompt differs from golden %s:\n%s", c.name, path, got)
		}
	}
	if _, err := Messages("nope", "", ""); err == nil {
		t.Error("unknown style accepted")
	}
}

// TestPromptWording pins the official sentences independently of the golden files.
func TestPromptWording(t *testing.T) {
	msgs, _ := Messages(StyleChat, "Q", "")
	want := "### Question:\nQ\n\n### Format: Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.\n```python\n# YOUR CODE HERE\n```\n\n### Answer: (use the provided format with backticks)\n\n"
	if msgs[0].Content != SystemMessage || msgs[1].Content != want {
		t.Errorf("chat prompt: %q", msgs[1].Content)
	}
	msgs, _ = Messages(StyleChat, "Q", "S")
	want = "### Question:\nQ\n\n### Format: You will use the following starter code to write the solution to the problem and enclose your code within delimiters.\n```python\nS\n```\n\n### Answer: (use the provided format with backticks)\n\n"
	if msgs[1].Content != want {
		t.Errorf("starter prompt: %q", msgs[1].Content)
	}
}

func TestOptions(t *testing.T) {
	files := []string{"testdata/rows.jsonl"}
	bad := []map[string]string{
		{"release": "v9"}, {"window": "r2"}, {"start_date": "2024/01/01"}, {"prompt": "x"}, {"timeout": "-1"},
		{"parallel": "0"}, {"nope": "1"},
	}
	for _, o := range bad {
		if _, err := New(eval.BenchOptions{Files: files, Options: o}); err == nil {
			t.Errorf("options %v accepted", o)
		}
	}
	// Missing data is Items' error (grading rows that carry their tests needs no dataset).
	t.Setenv("SNAPEVAL_CACHE", t.TempDir())
	itemsErr := func(o eval.BenchOptions) error {
		b, err := New(o)
		if err != nil {
			return fmt.Errorf("New: %w", err)
		}
		_, err = b.Items(context.Background(), nil)
		return err
	}
	if err := itemsErr(eval.BenchOptions{}); err == nil || !strings.Contains(err.Error(), "snapeval data pull livecodebench") {
		t.Errorf("no data in the cache: %v", err)
	}
	if err := itemsErr(eval.BenchOptions{Files: files, Options: map[string]string{"release": "release_v1"}}); err == nil ||
		!strings.Contains(err.Error(), "test.jsonl") {
		t.Errorf("missing release file: %v", err)
	}
}

func TestBenchEndToEnd(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		if _, err := os.Stat("/usr/local/bin/python3"); err != nil {
			t.Skip("python3 not installed")
		}
	}
	bm, err := eval.OpenBenchmark(Name, eval.BenchOptions{Files: []string{"testdata/rows.jsonl"},
		Options: map[string]string{"start_date": "2023-01-01", "timeout": "3", "parallel": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer bm.(*Bench).Close()
	items, err := bm.Items(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Fatalf("%d items", len(items))
	}
	req, err := bm.Request(items[1])
	if err != nil || len(req.Messages) != 2 || req.Sampling.Temperature != 0.6 || req.Sampling.MaxNew != 32768 {
		t.Fatalf("request %+v, %v", req, err)
	}
	real, _ := os.ReadFile("testdata/extract_cases.json")
	var cases []struct{ QuestionID, Output string }
	_ = json.Unmarshal(real, &cases)
	outputs := map[string][2]string{
		"1873_A": {cases[0].Output, "```python\nprint('YES')\n```"},
		"snapeval-pairsum": {"Here:\n```python\nclass Solution:\n    def pairSum(self, nums, target):\n        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n                return (seen[target - x], i)\n            seen[x] = i\n```\n",
			"```python\nclass Solution:\n    def pairSum(self, nums, target):\n        return [0, 1] if nums[0] != 5 else [1, 0]\n```"},
	}
	for _, it := range items {
		o := outputs[it.ID]
		g, err := bm.Grade(context.Background(), it, o[0])
		if err != nil {
			t.Fatal(err)
		}
		if !g.Correct || g.Verdict != sandbox.Pass || g.Score != 1 {
			t.Errorf("%s: correct program graded %+v", it.ID, g)
		}
		g, err = bm.Grade(context.Background(), it, o[1])
		if err != nil {
			t.Fatal(err)
		}
		wantKind := map[string]string{"1873_A": "(public)", "snapeval-pairsum": "test 2 (private)"}[it.ID]
		if g.Correct || g.Verdict != sandbox.WrongAnswer || !strings.Contains(g.Detail, wantKind) {
			t.Errorf("%s: wrong program graded %+v", it.ID, g)
		}
	}
	g, err := bm.Grade(context.Background(), items[0], "no code here")
	if err != nil || g.Verdict != sandbox.CompileError {
		t.Errorf("no code: %+v %v", g, err)
	}
}
