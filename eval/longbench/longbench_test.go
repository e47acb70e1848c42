package longbench

import (
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
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"

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

// TestTemplatesPinned pins the official prompt files byte for byte.
func TestTemplatesPinned(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		sha256 string
		cot    bool
	}{
		{"0shot", 262, "68a162252bc9ff71d5d7abca3d69bb31aac3c35f832d657a2866f2018b8a6950", false},
		{"0shot_cot", 212, "6cc33d92fd8f611662b756c1f10f302c541ca005b58c46d5f3188ac3a939bfe8", true},
		{"0shot_cot_ans", 383, "85ec59df4ac0e27aabbc619a7ca5cf3ae1787dd5a76cf51a18944eb52c91955f", true},
		{"0shot_no_context", 224, "125fb44183af01ffc623df19392b80a287db62af3e2a2805e5b2ff9c7b2bee30", false},
	}
	for _, tc := range tests {
		s, err := Template(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(s))
		if got := hex.EncodeToString(sum[:]); got != tc.sha256 || len(s) != tc.size {
			t.Errorf("%s: %d bytes sha256 %s, want %d bytes %s", tc.name, len(s), got, tc.size, tc.sha256)
		}
		if strings.HasSuffix(s, "\n") {
			t.Errorf("%s ends with a newline", tc.name)
		}
		if got := strings.Contains(s, "Let\u2019s think step by step:"); got != tc.cot {
			t.Errorf("%s: U+2019 \"Let’s\" present = %v", tc.name, got)
		}
	}
	if _, err := Template("nope"); err == nil {
		t.Error("unknown template: want error")
	}
}

func loadSample(t *testing.T, b *Bench, tok llm.Tokenizer) []eval.Item {
	t.Helper()
	items, err := b.Items(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func TestRenderGolden(t *testing.T) {
	b, err := New(eval.BenchOptions{Files: []string{"testdata/sample.json"}})
	if err != nil {
		t.Fatal(err)
	}
	items := loadSample(t, b, nil)
	if len(items) != 3 {
		t.Fatalf("%d items", len(items))
	}
	req, err := b.Request(items[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Messages) != 1 || req.Messages[0].Role != "user" || req.Prompt != "" {
		t.Fatalf("request shape %+v", req)
	}
	if req.Sampling.Temperature != 0.1 || req.Sampling.MaxNew != 128 {
		t.Fatalf("sampling %+v", req.Sampling)
	}
	golden(t, "render_0shot.golden", []byte(req.Messages[0].Content))
	if tags := items[1].Tags; tags["difficulty"] != "hard" || tags["length"] != "long" || tags["domain"] != "Code Repository Understanding" {
		t.Fatalf("tags %v", tags)
	}
	nc, _ := New(eval.BenchOptions{Files: []string{"testdata/sample.json"}, Options: map[string]string{"mode": "0shot_no_context"}})
	ncItems := loadSample(t, nc, nil)
	golden(t, "render_0shot_no_context.golden", []byte(ncItems[0].Data.(*Problem).Prompt))
	var row Row
	raw, _ := os.ReadFile("testdata/sample.jsonl")
	json.Unmarshal(bytes.SplitN(raw, []byte("\n"), 2)[0], &row)
	golden(t, "render_0shot_cot_ans.golden", []byte(RenderCoTAnswer(row, "The ledger says March.")))
}

func TestFormatsAgree(t *testing.T) {
	// Build the parquet conversion of the JSON sample the way the Hub's converter lays it out (flat string columns).
	var rows []Row
	raw, _ := os.ReadFile("testdata/sample.json")
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	type pqRow struct {
		ID         string `parquet:"_id"`
		Domain     string `parquet:"domain"`
		SubDomain  string `parquet:"sub_domain"`
		Difficulty string `parquet:"difficulty"`
		Length     string `parquet:"length"`
		Question   string `parquet:"question"`
		ChoiceA    string `parquet:"choice_A"`
		ChoiceB    string `parquet:"choice_B"`
		ChoiceC    string `parquet:"choice_C"`
		ChoiceD    string `parquet:"choice_D"`
		Answer     string `parquet:"answer"`
		Context    string `parquet:"context"`
	}
	var pq []pqRow
	for _, r := range rows {
		pq = append(pq, pqRow(r))
	}
	pqPath := filepath.Join(t.TempDir(), "0000.parquet")
	if err := parquet.WriteFile(pqPath, pq); err != nil {
		t.Fatal(err)
	}
	var prompts [][]string
	for _, f := range []string{"testdata/sample.json", "testdata/sample.jsonl", pqPath} {
		b, _ := New(eval.BenchOptions{Files: []string{f}})
		var ps []string
		for _, it := range loadSample(t, b, nil) {
			ps = append(ps, it.ID+"\x00"+it.Data.(*Problem).Prompt)
		}
		prompts = append(prompts, ps)
	}
	for i := 1; i < len(prompts); i++ {
		if strings.Join(prompts[i], "\x01") != strings.Join(prompts[0], "\x01") {
			t.Errorf("format %d renders differently from data.json", i)
		}
	}
}

// runeTok is a deterministic test tokenizer: one token per Unicode code point.
type runeTok struct{}

func (runeTok) Encode(s string) []int {
	ids := make([]int, 0, len(s))
	for _, r := range s {
		ids = append(ids, int(r))
	}
	return ids
}

func (runeTok) Decode(ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteRune(rune(id))
	}
	return b.String()
}

func TestTruncateLongItem(t *testing.T) {
	row := Row{ID: "long", Difficulty: "hard", Length: "long", Answer: "B", Question: "Q?", ChoiceA: "a", ChoiceB: "b", ChoiceC: "c", ChoiceD: "d",
		Context: strings.Repeat("lorem ipsum \u2019 ", 20000)}
	t0, _ := Template(Mode0Shot)
	full := Render(t0, row)
	n := utf8.RuneCountInString(full)
	// 262 template runes - 28 placeholder runes + 279999 context runes (stripped) + "Q?" + 4 one-letter choices
	if n != 262-28+279999+2+4 {
		t.Fatalf("full prompt has %d runes", n)
	}
	tests := []struct{ maxLen, head, tail int }{
		{120000, 60000, 60000},
		{1001, 500, 501}, // Python: ids[:1001//2] + ids[-1001//2:] keeps 500 + 501
		{2, 1, 1},
	}
	for _, tc := range tests {
		got, before, after := Truncate(runeTok{}, full, tc.maxLen)
		if before != n || after != tc.maxLen || utf8.RuneCountInString(got) != tc.maxLen {
			t.Fatalf("max_len %d: before %d after %d runes %d", tc.maxLen, before, after, utf8.RuneCountInString(got))
		}
		r := []rune(full)
		if want := string(r[:tc.head]) + string(r[len(r)-tc.tail:]); got != want {
			t.Fatalf("max_len %d: wrong halves", tc.maxLen)
		}
	}
	short, before, after := Truncate(runeTok{}, "short prompt", 100)
	if short != "short prompt" || before != 12 || after != 12 {
		t.Fatal("a prompt under max_len must not change")
	}
	// Through the benchmark: max_len option, golden of the cut region.
	dir := t.TempDir()
	raw, _ := json.Marshal([]Row{row})
	os.WriteFile(filepath.Join(dir, "data.json"), raw, 0o644)
	b, err := New(eval.BenchOptions{Files: []string{filepath.Join(dir, "data.json")}, Options: map[string]string{"max_len": "400"}})
	if err != nil {
		t.Fatal(err)
	}
	it := loadSample(t, b, runeTok{})[0]
	p := it.Data.(*Problem)
	if !p.Truncated || p.Tokens != n || utf8.RuneCountInString(p.Prompt) != 400 {
		t.Fatalf("truncated=%v tokens=%d runes=%d", p.Truncated, p.Tokens, utf8.RuneCountInString(p.Prompt))
	}
	golden(t, "truncate_400.golden", []byte(p.Prompt))
}

func TestExtractAndGrade(t *testing.T) {
	tests := []struct {
		name, out, extracted, verdict string
	}{
		{"plain", `The correct answer is (B)`, "B", VerdictCorrect},
		{"bare", `The correct answer is B.`, "B", VerdictCorrect},
		{"markdown bold", `**The correct answer is (B)**`, "B", VerdictCorrect},
		{"bold inside", `The correct answer is **(C)**`, "C", VerdictWrong},
		{"lower case is not accepted", `the correct answer is (B)`, "", VerdictNoAnswer},
		{"first wins", `The correct answer is (A). On reflection, The correct answer is (B)`, "A", VerdictWrong},
		{"paren form preferred over earlier bare", `The correct answer is D? No. The correct answer is (B)`, "B", VerdictCorrect},
		{"out of range letter", `The correct answer is (E)`, "", VerdictNoAnswer},
		{"lower-case letter", `The correct answer is (b)`, "", VerdictNoAnswer},
		{"think block", "<think>\nmaybe The correct answer is (A)\n</think>\nThe correct answer is (B)", "A", VerdictWrong},
		{"truncated output", `Let me look at the ledger. The March entry shows`, "", VerdictNoAnswer},
		{"insert answer here echo", `The correct answer is (insert answer here)`, "", VerdictNoAnswer},
		{"choice text", `The correct answer is (B) The April entry`, "B", VerdictCorrect},
		{"extra spaces", `The correct answer is  (B)`, "", VerdictNoAnswer},
		{"newline", "The correct answer is\n(B)", "", VerdictNoAnswer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := GradeOutput(tc.out, "B")
			if g.Extracted != tc.extracted || g.Verdict != tc.verdict || g.Correct != (tc.verdict == VerdictCorrect) {
				t.Fatalf("got %+v, want extracted %q verdict %s", g, tc.extracted, tc.verdict)
			}
			if g.Correct && g.Score != 1 || !g.Correct && g.Score != 0 {
				t.Fatalf("score %v", g.Score)
			}
		})
	}
}

func TestParseRowErrors(t *testing.T) {
	b, _ := New(eval.BenchOptions{})
	tests := []struct{ raw, want string }{
		{`{`, "longbench row"},
		{`{"difficulty":"easy"}`, "missing _id"},
		{`{"_id":"x","answer":"E","difficulty":"easy","length":"short"}`, "field answer"},
		{`{"_id":"x","answer":"A","difficulty":"medium","length":"short"}`, "field difficulty"},
		{`{"_id":"x","answer":"A","difficulty":"easy","length":"huge"}`, "field length"},
		{`{"_id":3}`, "longbench row"},
	}
	for _, tc := range tests {
		if _, err := b.ParseRow([]byte(tc.raw)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.raw, err, tc.want)
		}
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []map[string]string{{"max_len": "1"}, {"max_len": "x"}, {"mode": "5shot"}, {"nope": "1"}} {
		if _, err := New(eval.BenchOptions{Options: o}); err == nil {
			t.Errorf("%v: want error", o)
		}
	}
	b, err := eval.OpenBenchmark(Name, eval.BenchOptions{DataDir: "/cache"})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.(*Bench).Files(); got[0] != filepath.FromSlash("/cache/longbench-v2/data.json") {
		t.Fatal(got)
	}
	if _, ok := b.(eval.RowParser); !ok {
		t.Fatal("not a RowParser")
	}
	_, err = b.Items(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "data.json") {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestDuplicateIDRejected(t *testing.T) {
	dir := t.TempDir()
	raw, _ := os.ReadFile("testdata/sample.jsonl")
	first := bytes.SplitN(raw, []byte("\n"), 2)[0]
	os.WriteFile(filepath.Join(dir, "d.jsonl"), append(append(first, '\n'), first...), 0o644)
	b, _ := New(eval.BenchOptions{Files: []string{filepath.Join(dir, "d.jsonl")}})
	if _, err := b.Items(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "line 2: duplicate item id") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseRow(f *testing.F) {
	raw, _ := os.ReadFile("testdata/sample.jsonl")
	for _, l := range bytes.Split(raw, []byte("\n")) {
		f.Add(l)
	}
	f.Add([]byte(`{"_id":"x","answer":"A","difficulty":"easy","length":"short","context":"$DOC$$Q$"}`))
	b, _ := New(eval.BenchOptions{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		it, err := b.ParseRow(raw)
		if err != nil {
			return
		}
		g, err := b.Grade(context.Background(), it, "The correct answer is (A)")
		if err != nil || g.Correct != (it.Data.(*Problem).Answer == "A") {
			t.Fatalf("grade %+v %v", g, err)
		}
	})
}

func TestCoTFollowUp(t *testing.T) {
	b, err := New(eval.BenchOptions{Options: map[string]string{"mode": Mode0ShotCoT}})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Defaults().Sampling.MaxNew; got != CoTMaxNew {
		t.Fatalf("reasoning pass max_new %d, want %d", got, CoTMaxNew)
	}
	r := Row{ID: "x", Question: "Q?", ChoiceA: "a", ChoiceB: "b", ChoiceC: "c", ChoiceD: "d", Answer: "B", Context: "long text"}
	it := eval.Item{ID: "x", Data: &Problem{Row: r}}
	req, ok, err := b.FollowUp(it, "  I think B.\n")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	want := RenderCoTAnswer(r, "I think B.")
	if req.Messages[0].Content != want || req.Sampling.MaxNew != 128 || req.Sampling.Temperature != 0.1 {
		t.Fatalf("follow-up %+v", req)
	}
	if strings.Contains(want, "long text") || !strings.Contains(want, "I think B.") {
		t.Fatalf("answer pass must omit the document and quote the reasoning:\n%s", want)
	}
	plain, _ := New(eval.BenchOptions{})
	if _, ok, _ := plain.FollowUp(it, "x"); ok {
		t.Fatal("0shot mode asked twice")
	}
}
