package longbench1

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"math"
	"os"
	"path/filepath"
	"regexp"
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

// TestTemplatesPinned pins the 21 prompt files to config/dataset2prompt.json's values byte for byte (the
// JSON file itself: sha256 56d22ad4f382169c2b8a11ff4c982a4a1bea096c8152b0f0b85b64686b157c30 at THUDM/LongBench
// 2e00731), and checks that they name no field but {context} and {input}.
func TestTemplatesPinned(t *testing.T) {
	tests := []struct {
		task   string
		size   int
		sha256 string
	}{
		{"narrativeqa", 378, "aada7ed24b06abace5b0045ac3bcfe06fc831a6cf434f0ecfd99fb7b3d299e1c"},
		{"qasper", 725, "0fbdd123fe7f83d6d6a9c583ca28cb29d68e523bf8fec01a0cf2dcd11037775d"},
		{"multifieldqa_en", 201, "20b4666a2de8a1f701bdb6c4e015fa9f8758d64b361d841f7766df6c9ceba770"},
		{"multifieldqa_zh", 194, "344b3a4e557cd5470c661b3d6b374339717e1257a6c01f628d22322d4a554b94"},
		{"hotpotqa", 288, "9ec4ae308865bd0c62af20b3dc7b12b31f2b447f55684bd88c1aa40f2f636deb"},
		{"2wikimqa", 288, "9ec4ae308865bd0c62af20b3dc7b12b31f2b447f55684bd88c1aa40f2f636deb"},
		{"musique", 288, "9ec4ae308865bd0c62af20b3dc7b12b31f2b447f55684bd88c1aa40f2f636deb"},
		{"dureader", 140, "ae53329f51b17908e08b8c6bf366987282b8b38c0ee35275ebd7b79e9b30eff2"},
		{"gov_report", 161, "91c25d585b189ced91c9280efcb4ecb5dcff9548cd4e3bfae66c68025b569e95"},
		{"qmsum", 261, "dca23b678fe0183bbd9555b57947022aed1b85739da5ad7e1b4708dd0c71c409"},
		{"multi_news", 150, "2af3f28c40b902e6535d4910510d51653613c49de9b2fc287c5958395061101d"},
		{"vcsum", 133, "3e5d8241bc9b512eb4929c1ba80882a44f50b446bc2b1d9d79eff030dd10dc27"},
		{"trec", 104, "0eff8bebdba99d91e9d7d91b6ab39455ac74648bea92c9255c9f68c62175b2db"},
		{"triviaqa", 159, "00a802e6377e72fca39b169cf6c28893bedf23ba7286b03ecd15867c3e27a7c4"},
		{"samsum", 103, "a68d884234907eefcaa0eacf7b2997f60fa46603988dceae6a44f9b49f045b3f"},
		{"lsht", 76, "f3edabdf7fae53d6cadfa7a10f3574d114302161c46dacecd5d30763204bbbf3"},
		{"passage_count", 464, "986550b6c61009c629a4535766d94b7b51e2b2b9e1ed169e4ecb54417466e964"},
		{"passage_retrieval_en", 320, "39b96b7fa52bdd2aa2bde34ea199158505201b9a0a2c3ce94e80249293f60431"},
		{"passage_retrieval_zh", 257, "c1e2346e245eb365bc33a1503cde2e473948a2aad51c3e4c72893e61ab074d60"},
		{"lcc", 67, "6a1f24cf0bb83cd90f1fca8f0dd24801626c2aaea29db834ddc83b950e71190e"},
		{"repobench-p", 74, "ee9ec182ea5ffeb70a7140d55baea97264a8612d88226d323afa90859c36240c"},
	}
	if len(tests) != len(Tasks) {
		t.Fatalf("%d pinned templates for %d tasks", len(tests), len(Tasks))
	}
	field := regexp.MustCompile(`\{[^}]*\}`)
	for _, tc := range tests {
		s, err := Template(tc.task)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(s))
		if got := hex.EncodeToString(sum[:]); got != tc.sha256 || len(s) != tc.size {
			t.Errorf("%s: %d bytes sha256 %s, want %d bytes %s", tc.task, len(s), got, tc.size, tc.sha256)
		}
		for _, f := range field.FindAllString(s, -1) {
			if f != "{context}" && f != "{input}" {
				t.Errorf("%s names field %s", tc.task, f)
			}
		}
		if _, ok := TaskByName(tc.task); !ok {
			t.Errorf("%s is not in Tasks", tc.task)
		}
	}
	if _, err := Template("nope"); err == nil {
		t.Error("unknown template: want error")
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

// TestRequestsGolden renders every fixture item's request (role or raw, max new tokens, stop) into one golden
// file.
func TestRequestsGolden(t *testing.T) {
	b, items := load(t, eval.BenchOptions{Files: []string{"testdata/rows.jsonl"}}, nil)
	if len(items) != 22 {
		t.Fatalf("%d items", len(items))
	}
	var out bytes.Buffer
	for _, it := range items {
		req, err := b.Request(it)
		if err != nil {
			t.Fatal(err)
		}
		p := it.Data.(*Problem)
		kind, text := "chat", ""
		if req.Prompt != "" {
			kind, text = "raw", req.Prompt
		} else {
			if len(req.Messages) != 1 || req.Messages[0].Role != "user" {
				t.Fatalf("%s: messages %+v", it.ID, req.Messages)
			}
			text = req.Messages[0].Content
		}
		if kind == "raw" != p.Task.Raw || req.Sampling.MaxNew != p.Task.MaxNew || req.Sampling.Temperature != 0 {
			t.Fatalf("%s: %s request, sampling %+v", it.ID, kind, req.Sampling)
		}
		if (len(req.Sampling.Stop) > 0) != (p.Task.Name == "samsum") {
			t.Fatalf("%s: stop %q", it.ID, req.Sampling.Stop)
		}
		out.WriteString("=== " + it.ID + " (" + kind + ", max_new " + formatInt(req.Sampling.MaxNew) + ", stop " + strings.Join(req.Sampling.Stop, "|") + ", tags " + tagString(it.Tags) + ")\n")
		out.WriteString(text + "\n")
	}
	golden(t, "requests.golden", out.Bytes())
}

func formatInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func tagString(tags map[string]string) string {
	var parts []string
	for _, k := range []string{"task", "category", "language", "length"} {
		if v, ok := tags[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func TestRenderIsSinglePass(t *testing.T) {
	r := Row{Input: "{context} and {x}", Context: "ctx {input}"}
	got := Render("A {context} B {input} C {other} {", r)
	if want := "A ctx {input} B {context} and {x} C {other} {"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

// specialTok is one token per rune, with a BOS token (id -1) that EncodeWithSpecial adds and DecodeSkipSpecial
// drops, like a Llama tokenizer.
type specialTok struct{}

func (specialTok) Encode(s string) []int {
	var ids []int
	for _, r := range s {
		ids = append(ids, int(r))
	}
	return ids
}

func (t specialTok) EncodeWithSpecial(s string) []int { return append([]int{-1}, t.Encode(s)...) }

func (specialTok) Decode(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		if id == -1 {
			b.WriteString("<s>")
			continue
		}
		b.WriteRune(rune(id))
	}
	return b.String()
}

func (t specialTok) DecodeSkipSpecial(ids []int) string {
	var keep []int
	for _, id := range ids {
		if id != -1 {
			keep = append(keep, id)
		}
	}
	return t.Decode(keep)
}

// plainTok is one token per rune, without special tokens.
type plainTok struct{}

func (plainTok) Encode(s string) []int   { return specialTok{}.Encode(s) }
func (plainTok) Decode(ids []int) string { return specialTok{}.Decode(ids) }

func TestTruncate(t *testing.T) {
	prompt := "abcdefghij" // 10 runes: 11 tokens with BOS
	tests := []struct {
		tok    llm.Tokenizer
		maxLen int
		want   string
		n      int
	}{
		{specialTok{}, 11, prompt, 11},
		{specialTok{}, 10, "abcd" + "fghij", 11}, // BOS + abcd | fghij: the BOS counts and is skipped
		{specialTok{}, 7, "ab" + "hij", 11},      // int(7/2) = 3 tokens each side
		{plainTok{}, 10, prompt, 10},
		{plainTok{}, 9, "abcd" + "ghij", 10},
		{plainTok{}, 2, "a" + "j", 10},
	}
	for _, tc := range tests {
		var tok llm.Tokenizer = tc.tok
		got, n := Truncate(tok, prompt, tc.maxLen)
		if got != tc.want || n != tc.n {
			t.Errorf("%T max_len %d: %q (%d tokens), want %q (%d)", tc.tok, tc.maxLen, got, n, tc.want, tc.n)
		}
	}
	// through the benchmark: a long context cut in the middle, the instructions at both ends kept
	_, items := load(t, eval.BenchOptions{Files: []string{"testdata/rows.jsonl"}, Options: map[string]string{"max_len": "120", "tasks": "hotpotqa,lcc"}}, specialTok{})
	var buf bytes.Buffer
	for _, it := range items {
		p := it.Data.(*Problem)
		buf.WriteString("=== " + it.ID + " truncated=" + map[bool]string{true: "yes", false: "no"}[p.Truncated] + " tokens=" + formatInt(p.Tokens) + "\n" + p.Prompt + "\n")
	}
	golden(t, "truncate_120.golden", buf.Bytes())
}

func TestGrade(t *testing.T) {
	b, items := load(t, eval.BenchOptions{Files: []string{"testdata/rows.jsonl"}}, nil)
	byTask := map[string]eval.Item{}
	for _, it := range items {
		if _, ok := byTask[it.Tags["task"]]; !ok {
			byTask[it.Tags["task"]] = it
		}
	}
	tests := []struct {
		task, output string
		score        float64
		verdict      string
	}{
		{"narrativeqa", "Mara Quill", 1, VerdictCorrect},
		{"narrativeqa", "mara quill.", 1, VerdictCorrect},
		{"narrativeqa", "The answer: Mara Quill", 0.8, VerdictPartial},
		{"narrativeqa", "Mara", 2.0 / 3, VerdictPartial},
		{"triviaqa", "\n\nThe Moon\nMars has two moons.", 1, VerdictCorrect}, // first line after leading newlines
		{"triviaqa", "Mars\nMoon", 0, VerdictWrong},                          // only the first line counts
		{"triviaqa", "Moon orbits", 2.0 / 3, VerdictPartial},                 // "Moon" and "The Moon" (articles dropped) both 2/3
		{"trec", "Abbreviation", 1, VerdictCorrect},
		{"trec", "Abbreviation or Animal", 0.5, VerdictPartial},
		{"trec", "Type: Animal\nAbbreviation", 0, VerdictWrong},
		{"samsum", "Ann and Bob will have lunch at noon\nDialogue: more", 1, VerdictCorrect},
		{"passage_count", "There are 2 unique paragraphs out of 3", 0.5, VerdictPartial},
		{"passage_retrieval_en", "Paragraph 1", 1, VerdictCorrect},
		{"passage_retrieval_zh", "答案是段落2", 1, VerdictCorrect},
		{"lcc", "```python\n# the list\n[8,9];\nmore", 1, VerdictCorrect},
		{"lcc", "[8,9]", 0.91, VerdictPartial},
		{"multifieldqa_zh", "杭州", 1, VerdictCorrect},
		{"multifieldqa_zh", "总部在杭州。", 0.5, VerdictPartial},
		{"gov_report", "", 0, VerdictWrong},
	}
	for _, tc := range tests {
		it, ok := byTask[tc.task]
		if !ok {
			t.Fatalf("no %s item", tc.task)
		}
		g, err := b.Grade(context.Background(), it, tc.output)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(g.Score-tc.score) > 1e-12 || g.Verdict != tc.verdict || g.Correct != (tc.verdict == VerdictCorrect) {
			t.Errorf("%s %q: %+v, want score %v verdict %s", tc.task, tc.output, g, tc.score, tc.verdict)
		}
	}
}

func TestParseRowErrors(t *testing.T) {
	tests := []struct{ raw, want string }{
		{`{`, "longbench row"},
		{`{"dataset":"hotpotqa","answers":["x"]}`, "missing _id"},
		{`{"_id":"x","dataset":"nope","answers":["x"]}`, `field dataset "nope"`},
		{`{"_id":"x","dataset":"hotpotqa","answers":[]}`, "field answers is empty"},
		{`{"_id":"x","dataset":"hotpotqa","answers":["a"],"length":-1}`, "field length"},
		{`{"_id":"x","dataset":"trec","answers":["a"],"all_classes":null}`, "field all_classes"},
		{`{"_id":"x","dataset":"passage_retrieval_en","answers":["Paragraph 3","3"]}`, "field answers[1]"},
		{`{"_id":"x","dataset":"passage_retrieval_zh","answers":["Paragraph 3"]}`, "field answers[0]"},
		{`{"_id":3,"dataset":"hotpotqa","answers":["a"]}`, "longbench row"},
		{`{"_id":"x","dataset":"hotpotqa","answers":"a"}`, "longbench row"},
	}
	b, _ := New(eval.BenchOptions{})
	for _, tc := range tests {
		if _, err := b.ParseRow([]byte(tc.raw)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.raw, err, tc.want)
		}
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []map[string]string{
		{"max_len": "1"}, {"max_len": "x"}, {"e": "maybe"}, {"tasks": "nope"}, {"e": "true", "tasks": "narrativeqa"},
		{"rouge": "2.0"}, {"rouge_depth": "-1"}, {"code_sim": "rapidfuzz"}, {"nope": "1"},
	} {
		if _, err := New(eval.BenchOptions{Options: o}); err == nil {
			t.Errorf("%v: want error", o)
		}
	}
	b, err := eval.OpenBenchmark(Name, eval.BenchOptions{DataDir: "/cache", Options: map[string]string{"tasks": "trec, hotpotqa"}})
	if err != nil {
		t.Fatal(err)
	}
	got := b.(*Bench).Files()
	want := []string{filepath.FromSlash("/cache/longbench/data/trec.jsonl"), filepath.FromSlash("/cache/longbench/data/hotpotqa.jsonl")}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("files %q, want %q", got, want)
	}
	if _, err := b.Items(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "trec.jsonl") {
		t.Fatalf("missing file: err = %v", err)
	}
	all, _ := New(eval.BenchOptions{})
	e, _ := New(eval.BenchOptions{Options: map[string]string{"e": "true"}})
	if len(all.Files()) != 21 || len(e.Files()) != 13 || !strings.HasSuffix(e.Files()[0], filepath.FromSlash("data/qasper_e.jsonl")) {
		t.Fatalf("files: %d, E %d %q", len(all.Files()), len(e.Files()), e.Files())
	}
}

// TestLongBenchE: the E files' rows (dataset with or without "_e"), length intervals as tags, other tasks'
// rows of a --data file skipped.
func TestLongBenchE(t *testing.T) {
	_, items := load(t, eval.BenchOptions{Files: []string{"testdata/rows_e.jsonl", "testdata/rows.jsonl"}, Options: map[string]string{"e": "true", "tasks": "hotpotqa,passage_count"}}, nil)
	var got []string
	for _, it := range items {
		got = append(got, it.ID+"@"+it.Tags["length"])
	}
	want := "hotpotqa/e005b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d@0-4k hotpotqa/e015b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d@4-8k " +
		"hotpotqa/e025b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d@8k+ passage_count/e035b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d@0-4k " +
		"passage_count/e045b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d5b1d@8k+ " +
		"hotpotqa/f0c3a9e1b2d4057e5a7e5a7e5a7e5a7e5a7e5a7e5a7e5a7e5a@0-4k passage_count/f0c3a9e1b2d4177e5a7e5a7e5a7e5a7e5a7e5a7e5a7e5a7e5a@0-4k"
	if strings.Join(got, " ") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	for _, b := range []struct {
		n    int
		want string
	}{{0, "0-4k"}, {3999, "0-4k"}, {4000, "4-8k"}, {7999, "4-8k"}, {8000, "8k+"}} {
		if got := LengthBucket(b.n); got != b.want {
			t.Errorf("LengthBucket(%d) = %s", b.n, got)
		}
	}
}

func TestGoldSkipsUnscorableReferences(t *testing.T) {
	b, _ := New(eval.BenchOptions{})
	lcc, _ := TaskByName("lcc")
	it := eval.Item{ID: "x", Data: &Problem{Task: lcc, Row: Row{Answers: []string{"x = 1  # one", "y=2"}}}}
	if g, ok := b.Gold(it); !ok || g != "y=2" {
		t.Fatalf("gold %q %v", g, ok)
	}
	it.Data.(*Problem).Row.Answers = []string{"// only a comment"}
	if _, ok := b.Gold(it); ok {
		t.Fatal("a reference code_sim_score skips was offered as gold")
	}
}

func FuzzParseRow(f *testing.F) {
	for _, file := range []string{"testdata/rows.jsonl", "testdata/rows_e.jsonl"} {
		raw, _ := os.ReadFile(file)
		for _, l := range bytes.Split(raw, []byte("\n")) {
			f.Add(l, "x")
		}
	}
	f.Add([]byte(`{"_id":"x","dataset":"passage_retrieval_en","answers":["Paragraph 7"],"context":"{input}{context}"}`), "Paragraph 7")
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
