package infinitebench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/llm"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// fixtures are the per-task fixture files, in the published row schema (no task field: the file names it).
func fixtures() []string {
	var fs []string
	for _, t := range DefaultTasks {
		fs = append(fs, "testdata/data/"+t+".jsonl")
	}
	return fs
}

// TestTemplatesPinned pins the templates to src/prompt.py (sha256 d49a6891d6bc61522bb428d66a07b092a6bb6bc195aa0fe1
// 03eddd6bb39c7f10 at OpenBMB/InfiniteBench 88b3daa): yarn_mistral_templates and gpt4_templates.
func TestTemplatesPinned(t *testing.T) {
	tests := []struct {
		family, task string
		size         int
		sha256       string
	}{
		{"yarn-mistral", "passkey", 177, "32a0f730f8746b1a422cc902bce30eed03bbbfdc9a3e843160db2bb8596bd1af"},
		{"yarn-mistral", "number_string", 177, "f519b51c90c40022263867a09e516e80c2fa2bd9684247eacfcb535a73ac039c"},
		{"yarn-mistral", "kv_retrieval", 98, "afa97419dd69cd749842c629df9555857891cab7f7d794fe1c5c904da23d2515"},
		{"yarn-mistral", "longbook_qa_eng", 111, "6f24f4abaf415845a823c5a33699c83490e31776fc8baa81f5b384dfb4d55064"},
		{"yarn-mistral", "longbook_choice_eng", 164, "fddf5d8b4293a2750dce8eba2073fea6b0bbbb1c7b971ba4a95a1b226a8f964a"},
		{"yarn-mistral", "longbook_qa_chn", 81, "121d4332c1cc5ee0fae23999bd9f3570ba6c8663a3dce944e1bae554b8a97dad"},
		{"yarn-mistral", "longdialogue_qa_eng", 222, "0483f9f01c709be72f4d0e62e9e14cb7acfa6611872e2ddc673c02b9a5b1f9c2"},
		{"yarn-mistral", "math_find", 28, "df2334891e94023ef2eb94f6ca9632e59b31075b0fd5eef9f7e26d4de8ad3a43"},
		{"yarn-mistral", "code_run", 150, "8cfbec4288592e7702454e3f08534d574e7bb31c13d6077a5b6f9e3b6e714cfa"},
		{"yarn-mistral", "code_debug", 214, "e485a37d7c9c193feff36ef43e89b4cc460ae2aa350eb986888cff92c563a7b2"},
		{"gpt4", "passkey", 168, "a1d265268f61d448425d7bc1193f7be3adddbdf24e9a439013c47aeced7d25ac"},
		{"gpt4", "number_string", 150, "7f84f8637ed441f6471fec8299e9a72c70957d6251f5fcdc11b9dde20bf5c08f"},
		{"gpt4", "kv_retrieval", 98, "afa97419dd69cd749842c629df9555857891cab7f7d794fe1c5c904da23d2515"},
		{"gpt4", "longbook_qa_eng", 93, "3d0b2296b8712aaa5cae7cf466c26a97e150fc127e56bd681ccf3284978577bb"},
		{"gpt4", "longbook_choice_eng", 259, "7df117e8c610080b33e372b84964300d4b1c208c934fa9c7ba95194c19330716"},
		{"gpt4", "longbook_qa_chn", 102, "751d02a1547551de554110d994ed46cf0225f5b84e819f38475616d951ab9df5"},
		{"gpt4", "longdialogue_qa_eng", 362, "f6dadd7709f11572ba0338b7cd9de636a7094fe9aeef902ceb3d5c869089185f"},
		{"gpt4", "math_find", 28, "df2334891e94023ef2eb94f6ca9632e59b31075b0fd5eef9f7e26d4de8ad3a43"},
		{"gpt4", "code_run", 226, "e566fbaa9fa7dbcbeb3c6ec70ae09894a0410f73979cad510e06105dafeeff8a"},
		{"gpt4", "code_debug", 638, "94ffaeb0375fe01b1e1d49b43e458b80a7981f0e33f09f1b1b1a02513996a88b"},
	}
	if len(tests) != 2*len(Tasks) {
		t.Fatalf("%d pinned templates for %d tasks", len(tests), len(Tasks))
	}
	for _, tc := range tests {
		s, err := Template(tc.family, tc.task)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(s))
		if got := hex.EncodeToString(sum[:]); got != tc.sha256 || len(s) != tc.size {
			t.Errorf("%s/%s: %d bytes sha256 %s, want %d bytes %s", tc.family, tc.task, len(s), got, tc.size, tc.sha256)
		}
	}
}

// TestScoresMatchReference checks get_score_one against testdata/scores_ref.jsonl, written by
// src/compute_scores.py's own get_score_one; where it raises, the output scores 0 here.
func TestScoresMatchReference(t *testing.T) {
	f, err := os.Open("testdata/scores_ref.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		var c struct {
			Task  string          `json:"task"`
			Pred  string          `json:"pred"`
			Label json.RawMessage `json:"label"`
			Want  any             `json:"want"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		task, _ := TaskByName(c.Task)
		strs, nums, err := parseAnswer(c.Label)
		if err != nil {
			t.Fatal(err)
		}
		p := &Problem{Task: task, Label: strs, Numbers: nums}
		want := 0.0
		if w, ok := c.Want.(float64); ok {
			want = w
		}
		if got := Score(p, c.Pred); got != want {
			t.Errorf("line %d %s %q (label %s): got %v, want %v", n, c.Task, c.Pred, c.Label, got, c.Want)
		}
	}
	if n < 100 {
		t.Fatalf("%d reference cases", n)
	}
}

func load(t *testing.T, opts eval.BenchOptions, tok llm.Tokenizer) (*Bench, []eval.Item) {
	t.Helper()
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	items, err := b.Items(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return b, items
}

// TestRequestsGolden renders every fixture item in both families.
func TestRequestsGolden(t *testing.T) {
	var out bytes.Buffer
	for _, fam := range []string{FamilyOpen, FamilyGPT4} {
		b, items := load(t, eval.BenchOptions{Files: fixtures(), Options: map[string]string{"template": fam}}, nil)
		if len(items) != 11 {
			t.Fatalf("%d items", len(items))
		}
		for _, it := range items {
			req, err := b.Request(it)
			if err != nil {
				t.Fatal(err)
			}
			p := it.Data.(*Problem)
			if req.Sampling.MaxNew != p.Task.MaxNew || req.Sampling.Temperature != 0 {
				t.Fatalf("%s: sampling %+v", it.ID, req.Sampling)
			}
			out.WriteString("=== " + fam + " " + it.ID + " max_new " + itoa(req.Sampling.MaxNew) + " label " + strings.Join(p.Label, " | ") + "\n")
			if req.Prompt != "" {
				out.WriteString("[raw]\n" + req.Prompt + "\n")
			}
			for _, m := range req.Messages {
				out.WriteString("[" + m.Role + "]\n" + m.Content + "\n")
			}
		}
	}
	golden(t, "requests.golden", out.Bytes())
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// runeTok is one token per rune plus a BOS (-1) that EncodeWithSpecial adds and DecodeSkipSpecial drops.
type runeTok struct{}

func (runeTok) Encode(s string) []int {
	var ids []int
	for _, r := range s {
		ids = append(ids, int(r))
	}
	return ids
}
func (t runeTok) EncodeWithSpecial(s string) []int { return append([]int{-1}, t.Encode(s)...) }
func (runeTok) Decode(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		if id < 0 {
			b.WriteString("<s>")
			continue
		}
		b.WriteRune(rune(id))
	}
	return b.String()
}
func (t runeTok) DecodeSkipSpecial(ids []int) string {
	var keep []int
	for _, id := range ids {
		if id >= 0 {
			keep = append(keep, id)
		}
	}
	return t.Decode(keep)
}

func TestTruncate(t *testing.T) {
	p := "abcdefghij"
	tests := []struct {
		fam    string
		maxLen int
		want   string
		n      int
	}{
		{FamilyOpen, 11, p, 11},
		{FamilyOpen, 10, "abcd" + "fghij", 11}, // BOS counted in the head, skipped when decoding
		{FamilyOpen, 7, "ab" + "hij", 11},
		{FamilyGPT4, 10, p, 10},
		{FamilyGPT4, 9, "abcd" + "fghij", 10}, // input[:9//2] + input[-9//2:]: 4 + 5
		{FamilyGPT4, 4, "ab" + "ij", 10},
	}
	for _, tc := range tests {
		got, n := Truncate(runeTok{}, p, tc.maxLen, tc.fam)
		if got != tc.want || n != tc.n {
			t.Errorf("%s max_len %d: %q (%d), want %q (%d)", tc.fam, tc.maxLen, got, n, tc.want, tc.n)
		}
	}
	_, items := load(t, eval.BenchOptions{Files: []string{"testdata/data/passkey.jsonl"}, Options: map[string]string{"max_len": "200"}}, runeTok{})
	var buf bytes.Buffer
	for _, it := range items {
		pr := it.Data.(*Problem)
		if !pr.Truncated {
			t.Fatalf("%s not truncated (%d tokens)", it.ID, pr.Tokens)
		}
		buf.WriteString("=== " + it.ID + " tokens " + itoa(pr.Tokens) + "\n" + pr.Prompt + "\n")
	}
	golden(t, "truncate_200.golden", buf.Bytes())
}

func TestParseErrors(t *testing.T) {
	b, _ := New(eval.BenchOptions{})
	withTask, _ := New(eval.BenchOptions{Options: map[string]string{"task": "code_run"}})
	tests := []struct {
		b         *Bench
		raw, want string
	}{
		{b, `{`, "infinitebench row"},
		{b, `{"id":"x","answer":["1"],"task":"passkey"}`, "field id"},
		{b, `{"id":1,"answer":["1"]}`, "no task"},
		{b, `{"id":1,"answer":["1"],"task":"longbook_sum_eng"}`, "not implemented"},
		{b, `{"id":1,"task":"passkey"}`, "field answer is missing"},
		{b, `{"id":1,"answer":{},"task":"passkey"}`, "field answer"},
		{b, `{"id":1,"answer":[],"task":"passkey"}`, "field answer is empty"},
		{b, `{"id":1,"answer":["x"],"task":"math_find","input":"The largest number of the list is: "}`, "holds no number"},
		{b, `{"id":1,"answer":[3],"task":"math_find","input":"largest?"}`, "The ... of"},
		{withTask, `{"id":1,"answer":[3],"input":"value of f(3)"}`, "no func_N(M) call"},
		{b, `{"id":1,"answer":["x"],"task":"code_debug","options":["a","b","c","d"]}`, "not one of the first four options"},
		{b, `{"id":1,"answer":["a"],"task":"code_debug","options":["a","b"]}`, "field options"},
		{b, `{"id":1,"answer":["a","b","c"],"task":"longbook_choice_eng","options":["a","b","c","d"]}`, "3 entries"},
	}
	for _, tc := range tests {
		if _, err := tc.b.ParseRow([]byte(tc.raw)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.raw, err, tc.want)
		}
	}
	// a row naming no task takes the option's
	it, err := withTask.ParseRow([]byte(`{"id":7,"context":"c","input":"func_12(-4)","answer":[1]}`))
	if err != nil || it.ID != "code_run/7" || !strings.Contains(it.Data.(*Problem).Prompt, "func_12(-4)") {
		t.Fatalf("%+v %v", it, err)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []map[string]string{{"max_len": "1"}, {"template": "kimi"}, {"tasks": "math_calc"}, {"task": "nope"}, {"nope": "1"}} {
		if _, err := New(eval.BenchOptions{Options: o}); err == nil {
			t.Errorf("%v: want error", o)
		}
	}
	b, _ := New(eval.BenchOptions{DataDir: "/cache", Options: map[string]string{"tasks": "passkey,kv_retrieval"}})
	if got := b.Files(); len(got) != 2 || got[1] != filepath.FromSlash("/cache/infinitebench/kv_retrieval.jsonl") {
		t.Fatalf("files %q", got)
	}
	g, _ := New(eval.BenchOptions{Options: map[string]string{"template": "gpt4"}})
	if g.maxLen != DefaultMaxLenGPT4 || b.maxLen != DefaultMaxLen {
		t.Fatalf("max_len %d %d", g.maxLen, b.maxLen)
	}
	if _, err := b.Items(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "passkey.jsonl") {
		t.Fatalf("missing file: %v", err)
	}
	// the tasks option filters the rows read
	_, items := load(t, eval.BenchOptions{Files: fixtures(), Options: map[string]string{"tasks": "passkey"}}, nil)
	if len(items) != 2 || items[0].ID != "passkey/0" || items[1].ID != "passkey/1" {
		t.Fatalf("%d items", len(items))
	}
}

func TestAggregate(t *testing.T) {
	it := func(task string, s float64) eval.ItemScore {
		return eval.ItemScore{Tags: map[string]string{"task": task}, Score: s}
	}
	got := Aggregate([]eval.ItemScore{it("kv_retrieval", 1), it("passkey", 1), it("passkey", 0), it("other", 1)})
	if len(got) != 3 || got[0] != (eval.Metric{Name: "passkey", Value: 50, Items: 2}) ||
		got[1] != (eval.Metric{Name: "kv_retrieval", Value: 100, Items: 1}) || got[2] != (eval.Metric{Name: "Avg", Value: 75, Items: 3}) {
		t.Fatalf("%+v", got)
	}
	if Aggregate(nil) != nil {
		t.Fatal("no items: want no metrics")
	}
}

func FuzzParseRow(f *testing.F) {
	for _, file := range fixtures() {
		raw, _ := os.ReadFile(file)
		task := strings.TrimSuffix(filepath.Base(file), ".jsonl")
		for _, l := range bytes.Split(raw, []byte("\n")) {
			if len(l) > 0 {
				f.Add(append([]byte(`{"task":"`+task+`",`), l[1:]...), "B.")
			}
		}
	}
	b, _ := New(eval.BenchOptions{})
	f.Fuzz(func(t *testing.T, raw []byte, output string) {
		it, err := b.ParseRow(raw)
		if err != nil {
			return
		}
		if _, err := b.Request(it); err != nil {
			t.Fatal(err)
		}
		g, err := b.Grade(context.Background(), it, output)
		if err != nil || g.Score < 0 || g.Score > 1 || g.Correct != (g.Score == 1) {
			t.Fatalf("grade %+v %v", g, err)
		}
	})
}
