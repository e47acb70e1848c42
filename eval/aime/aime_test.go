package aime

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/snapeval/snapeval/eval"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestLastBoxed(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`\boxed{204}`, "204", true},
		{`first \boxed{1} then \boxed{2}`, "2", true},
		{`\boxed{\frac{1}{2}}`, `\frac{1}{2}`, true},
		{`\fbox{17} and later \boxed{18}`, "18", true},
		{`\boxed{18} and later \fbox{17}`, "17", true},
		{`\boxed {42}`, "42", true},
		{`\boxed{7} then truncated \boxed{12`, "7", true},
		{`\boxed{\{3\}}`, `\{3\}`, true},
		{`no box here`, "", false},
		{`\boxed 5`, "", false},
		{`\boxed{`, "", false},
	}
	for _, tc := range tests {
		got, ok := LastBoxed(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("LastBoxed(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestGradeTable(t *testing.T) {
	type want struct {
		extracted, verdict string
	}
	tests := []struct {
		name, out, gold string
		def, qwen, len  want
	}{
		{"plain", `So the answer is $\boxed{204}$.`, "204",
			want{"204", VerdictCorrect}, want{"204", VerdictCorrect}, want{"204", VerdictCorrect}},
		{"leading zeros in output", `\boxed{025}`, "25",
			want{"25", VerdictCorrect}, want{"25", VerdictCorrect}, want{"25", VerdictCorrect}},
		{"units", `\boxed{204 \text{ minutes}}`, "204",
			want{"204", VerdictCorrect}, want{"204", VerdictCorrect}, want{"204", VerdictCorrect}},
		{"text only", `\boxed{\text{204}}`, "204",
			want{"204", VerdictCorrect}, want{"204", VerdictCorrect}, want{"204", VerdictCorrect}},
		{"thousands comma", `\boxed{1,000}`, "1000",
			want{"1000", VerdictCorrect}, want{"1000", VerdictCorrect}, want{"1000", VerdictCorrect}},
		{"latex thousands", `\boxed{1{,}000}`, "1000",
			want{"1000", VerdictCorrect}, want{"1000", VerdictCorrect}, want{"1000", VerdictCorrect}},
		{"two answers are not a number", `\boxed{2,3}`, "23",
			want{"2,3", VerdictWrong}, want{"2,3", VerdictWrong}, want{"2,3", VerdictWrong}},
		{"trailing .0", `\boxed{204.00}`, "204",
			want{"204", VerdictCorrect}, want{"204", VerdictCorrect}, want{"204", VerdictCorrect}},
		{"dollars inside", `\boxed{$33$}`, "33",
			want{"33", VerdictCorrect}, want{"33", VerdictCorrect}, want{"33", VerdictCorrect}},
		{"last box wins", `maybe \boxed{12}... no wait, \boxed{13}`, "12",
			want{"13", VerdictWrong}, want{"13", VerdictWrong}, want{"13", VerdictWrong}},
		{"adjacent boxes: the last one", `\boxed{-2} and \boxed{1}`, "1",
			want{"1", VerdictCorrect}, want{"1", VerdictCorrect}, want{"1", VerdictCorrect}},
		{"nested braces", `\boxed{\frac{408}{2}}`, "204",
			want{`\frac{408}{2}`, VerdictWrong}, want{`\frac{408}{2}`, VerdictWrong}, want{`\frac{408}{2}`, VerdictWrong}},
		{"percentage rule", `\boxed{2.04}`, "204",
			want{"2.04", VerdictWrong}, want{"2.04", VerdictCorrect}, want{"2.04", VerdictWrong}},
		{"percentage rule x100", `\boxed{20400}`, "204",
			want{"20400", VerdictWrong}, want{"20400", VerdictCorrect}, want{"20400", VerdictWrong}},
		{"think block then answer", "<think>\nTry \\boxed{100}? No.\n</think>\nThe answer is \\boxed{204}.", "204",
			want{"204", VerdictCorrect}, want{"204", VerdictCorrect}, want{"204", VerdictCorrect}},
		{"truncated inside think", "<think>\nLet s = 2.5 so the time is 204 minutes, but let me double-check", "204",
			want{"", VerdictNoAnswer}, want{"", VerdictNoAnswer}, want{"204", VerdictCorrect}},
		{"answer is fallback", "Therefore, the answer is 73.", "73",
			want{"", VerdictNoAnswer}, want{"", VerdictNoAnswer}, want{"73", VerdictCorrect}},
		{"answer is bold", "**Final answer is: $073$**", "73",
			want{"", VerdictNoAnswer}, want{"", VerdictNoAnswer}, want{"73", VerdictCorrect}},
		{"no answer at all", "I cannot solve this.", "5",
			want{"", VerdictNoAnswer}, want{"", VerdictNoAnswer}, want{"", VerdictNoAnswer}},
		{"fbox as in AoPS solutions", `$\framebox{204}$ ... $\fbox{204}$`, "204",
			want{"204", VerdictCorrect}, want{"204", VerdictCorrect}, want{"204", VerdictCorrect}},
		{"zero", `\boxed{000}`, "0",
			want{"0", VerdictCorrect}, want{"0", VerdictCorrect}, want{"0", VerdictCorrect}},
		{"negative is not gold", `\boxed{-204}`, "204",
			want{"-204", VerdictWrong}, want{"-204", VerdictWrong}, want{"-204", VerdictWrong}},
	}
	modes := []string{ModeDefault, ModeQwen, ModeLenient}
	for _, tc := range tests {
		for i, w := range []want{tc.def, tc.qwen, tc.len} {
			g, _ := NewGrader(modes[i])
			got := g.Grade(tc.out, tc.gold)
			if got.Extracted != w.extracted || got.Verdict != w.verdict || got.Correct != (w.verdict == VerdictCorrect) {
				t.Errorf("%s [%s]: got extracted %q verdict %s (%s); want %q %s", tc.name, modes[i], got.Extracted, got.Verdict, got.Detail, w.extracted, w.verdict)
			}
		}
	}
	if _, err := NewGrader("math-verify"); err == nil {
		t.Error("unknown mode: want error")
	}
}

func TestCanonicalAnswer(t *testing.T) {
	for in, want := range map[string]string{"025": "25", "0": "0", "000": "0", " 73 ": "73", "204.0": "204", "902": "902"} {
		if got, err := CanonicalAnswer(in); err != nil || got != want {
			t.Errorf("CanonicalAnswer(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "2/3", "1.5"} {
		if _, err := CanonicalAnswer(bad); err == nil {
			t.Errorf("CanonicalAnswer(%q): want error", bad)
		}
	}
}

func TestPromptGolden(t *testing.T) {
	b, _ := New(eval.BenchOptions{Files: []string{"testdata/excerpt.jsonl"}})
	items, err := b.Items(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].ID != "2024-I-1" || items[1].ID != "2024-I-2" || items[1].Data.(*Problem).Answer != "25" || items[1].Data.(*Problem).RawAnswer != "025" {
		t.Fatalf("items %+v %+v", items[0], items[1])
	}
	if items[0].Tags["contest"] != "2024-I" {
		t.Fatalf("tags %v", items[0].Tags)
	}
	req, _ := b.Request(items[0])
	if len(req.Messages) != 1 || req.Messages[0].Role != "user" {
		t.Fatalf("%+v", req)
	}
	s := req.Sampling
	if s.Temperature != 0.6 || s.TopP != 0.95 || s.MaxNew != 32768 || b.Defaults().Samples != 64 {
		t.Fatalf("sampling %+v", s)
	}
	got := []byte(req.Messages[0].Content)
	p := filepath.Join("testdata", "prompt_2024-I-1.golden")
	if *update {
		os.WriteFile(p, got, 0o644)
	}
	want, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("prompt differs from %s (%v):\n%s", p, err, got)
	}
	if !strings.HasSuffix(string(got), "\nPlease reason step by step, and put your final answer within \\boxed{}.") {
		t.Fatal("instruction")
	}
	g, _ := b.Grade(context.Background(), items[1], `... so $m+n = \boxed{25}$`)
	if !g.Correct {
		t.Fatalf("%+v", g)
	}
}

// TestSharedAIME24 loads the real copy in /work/shared/data when it is present.
func TestSharedAIME24(t *testing.T) {
	p := filepath.Join("..", "..", "..", "shared", "data", "aime24.jsonl")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s absent", p)
	}
	b, err := New(eval.BenchOptions{Files: []string{p}})
	if err != nil {
		t.Fatal(err)
	}
	items, err := b.Items(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 30 {
		t.Fatalf("%d items", len(items))
	}
	zeros := 0
	for i, it := range items {
		pr := it.Data.(*Problem)
		if pr.RawAnswer != pr.Answer {
			zeros++
			if strings.TrimLeft(pr.RawAnswer, "0") != pr.Answer {
				t.Errorf("%s: %q -> %q", it.ID, pr.RawAnswer, pr.Answer)
			}
		}
		if !idRe.MatchString(it.ID) {
			t.Errorf("item %d id %q", i, it.ID)
		}
		// Each gold answer, boxed, grades correct in every mode; a wrong one does not.
		for _, m := range []string{ModeDefault, ModeQwen, ModeLenient} {
			g, _ := NewGrader(m)
			if !g.Grade(`\boxed{`+pr.RawAnswer+`}`, pr.Answer).Correct || g.Grade(`\boxed{1000}`, pr.Answer).Correct {
				t.Errorf("%s [%s]: grading the gold answer", it.ID, m)
			}
		}
	}
	if zeros != 7 {
		t.Errorf("%d answers with leading zeros, want 7", zeros)
	}
}

func TestMaxwellParquetLayout(t *testing.T) {
	type row struct {
		ID       string `parquet:"ID"`
		Problem  string `parquet:"Problem"`
		Solution string `parquet:"Solution"`
		Answer   int64  `parquet:"Answer"`
	}
	type h4row struct {
		ID      int64  `parquet:"id"`
		Problem string `parquet:"problem"`
		Answer  string `parquet:"answer"`
		URL     string `parquet:"url"`
		Year    string `parquet:"year"`
	}
	dir := t.TempDir()
	mp := filepath.Join(dir, "aime_2024_problems.parquet")
	hp := filepath.Join(dir, "train-00000-of-00001.parquet")
	if err := parquet.WriteFile(mp, []row{{"2024-II-4", "Let x...", "sol", 33}, {"2024-I-2", "There exist...", "sol", 25}}); err != nil {
		t.Fatal(err)
	}
	if err := parquet.WriteFile(hp, []h4row{{61, "Let ABC...", "033", "https://artofproblemsolving.com/wiki/index.php/2024_AIME_II_Problems/Problem_4", "2024"}}); err != nil {
		t.Fatal(err)
	}
	b, _ := New(eval.BenchOptions{Files: []string{mp}})
	items, err := b.Items(context.Background(), nil)
	if err != nil || len(items) != 2 || items[0].ID != "2024-II-4" || items[0].Data.(*Problem).Answer != "33" {
		t.Fatalf("maxwell: %v %+v", err, items)
	}
	b2, _ := New(eval.BenchOptions{Files: []string{hp}})
	items2, err := b2.Items(context.Background(), nil)
	if err != nil || len(items2) != 1 || items2[0].ID != "2024-II-4" || items2[0].Data.(*Problem).Answer != "33" {
		t.Fatalf("h4: %v %+v", err, items2)
	}
	both, _ := New(eval.BenchOptions{Files: []string{mp, hp}})
	if _, err := both.Items(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "duplicate item id") {
		t.Fatalf("two copies together: err = %v", err)
	}
}

func TestParseRowErrors(t *testing.T) {
	b, _ := New(eval.BenchOptions{})
	tests := []struct{ raw, want string }{
		{`[`, "aime row"},
		{`{"id":1,"answer":"5"}`, "field problem"},
		{`{"id":1,"problem":"p"}`, "field answer is missing"},
		{`{"id":1,"problem":"p","answer":"x"}`, "not an integer"},
		{`{"problem":"p","answer":"5"}`, "no id"},
		{`{"id":{},"problem":"p","answer":"5"}`, "field id"},
	}
	for _, tc := range tests {
		if _, err := b.ParseRow([]byte(tc.raw)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.raw, err, tc.want)
		}
	}
	if _, err := New(eval.BenchOptions{Options: map[string]string{"samples": "4"}}); err == nil {
		t.Error("unknown option: want error")
	}
	if _, err := New(eval.BenchOptions{Options: map[string]string{"grader": "qwen"}}); err != nil {
		t.Error(err)
	}
}

func FuzzParseRow(f *testing.F) {
	raw, _ := os.ReadFile("testdata/excerpt.jsonl")
	for _, l := range bytes.Split(raw, []byte("\n")) {
		f.Add(l)
	}
	f.Add([]byte(`{"ID":"2024-I-3","Problem":"p","Answer":809}`))
	f.Add([]byte(`{"id":1,"problem":"p","answer":"1,000"}`))
	b, _ := New(eval.BenchOptions{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		it, err := b.ParseRow(raw)
		if err != nil {
			return
		}
		p := it.Data.(*Problem)
		g, err := b.Grade(context.Background(), it, `\boxed{`+p.Answer+`}`)
		if err != nil || !g.Correct {
			t.Fatalf("gold %q does not grade correct: %+v", p.Answer, g)
		}
	})
}

func FuzzGrade(f *testing.F) {
	for _, s := range []string{`\boxed{204}`, `\boxed{\text{a}\text{`, `\fbox{{{}}}`, "<think>\\boxed{1", `the answer is 1,000,000.00`, `\boxed{1\,000}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		for _, m := range []string{ModeDefault, ModeQwen, ModeLenient} {
			g, _ := NewGrader(m)
			gr := g.Grade(out, "204")
			if gr.Correct != (gr.Verdict == VerdictCorrect) || (gr.Verdict == VerdictNoAnswer) != (gr.Extracted == "") {
				t.Fatalf("[%s] inconsistent grade %+v", m, gr)
			}
		}
	})
}
