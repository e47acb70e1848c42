package synthetic

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/llm"
)

var update = flag.Bool("update", false, "rewrite golden files")

// wordTok is a test tokenizer: every run of letters, every digit, every other non-space character and every
// whitespace run is one token (close to what a byte-level BPE trained on this suite does).
type wordTok struct{}

var wordRE = regexp.MustCompile(`[A-Za-z]+|[0-9]|\s+|[^\sA-Za-z0-9]`)

func (wordTok) Encode(s string) []int {
	m := wordRE.FindAllStringIndex(s, -1)
	ids := make([]int, len(m))
	for i := range m {
		ids[i] = m[i][0]
	}
	return ids
}
func (wordTok) Decode(ids []int) string { return "" }

func cfg(split string, seed uint64, lengths []int, n int, tok llm.Tokenizer) Config {
	return Config{Split: split, Seed: seed, Tasks: Tasks, Lengths: lengths, N: n, Tok: tok}
}

func TestDeterministicGolden(t *testing.T) {
	a, err := Generate(cfg(SplitEval, 7, []int{256}, 2, wordTok{}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(cfg(SplitEval, 7, []int{256}, 2, wordTok{}))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(a, "", " ")
	again, _ := json.MarshalIndent(b, "", " ")
	if !bytes.Equal(got, again) {
		t.Fatal("two generations with the same seed and tokenizer differ")
	}
	golden := filepath.Join("testdata", "eval_seed7_256.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Errorf("items differ from %s (go test ./eval/synthetic -update if the change is intended)", golden)
	}
}

func TestSeedsAndSplitsDiffer(t *testing.T) {
	eval1, err := Generate(cfg(SplitEval, 1, []int{256}, 20, nil))
	if err != nil {
		t.Fatal(err)
	}
	train1, err := Generate(cfg(SplitTrain, 1, []int{256}, 20, nil))
	if err != nil {
		t.Fatal(err)
	}
	eval2, err := Generate(cfg(SplitEval, 2, []int{256}, 20, nil))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, set := range [][]Sample{eval1, train1, eval2} {
		for _, s := range set {
			key := s.Split + "/" + s.ID
			if prev, dup := seen[s.Prompt]; dup {
				t.Errorf("identical prompts: %s and %s", prev, key)
			}
			seen[s.Prompt] = key
		}
	}
	// The hashed item seed separates splits even for the same (seed, task, length, index).
	if itemRNG(SplitEval, 1, TaskVT, 256, 0).Uint64() == itemRNG(SplitTrain, 1, TaskVT, 256, 0).Uint64() {
		t.Error("eval and train share a random stream")
	}
}

func TestPromptLengths(t *testing.T) {
	tests := []struct {
		name   string
		tok    llm.Tokenizer
		length int
		minFit float64 // smallest acceptable count/target
	}{
		{"tok-256", wordTok{}, 256, 0.92},
		{"tok-1024", wordTok{}, 1024, 0.97},
		{"tok-4096", wordTok{}, 4096, 0.99},
		{"bytes-512", nil, 512, 0.97},
		{"bytes-2048", nil, 2048, 0.99},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items, err := Generate(cfg(SplitEval, 3, []int{tc.length}, 3, tc.tok))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range items {
				n := (len(s.Prompt) + 3) / 4
				if tc.tok != nil {
					n = len(tc.tok.Encode(s.Prompt))
				}
				if n != s.PromptUnits {
					t.Errorf("%s: PromptUnits %d, measured %d", s.ID, s.PromptUnits, n)
				}
				if n > tc.length || float64(n) < tc.minFit*float64(tc.length) {
					t.Errorf("%s: %d tokens for target %d", s.ID, n, tc.length)
				}
			}
		})
	}
}

func TestItemContents(t *testing.T) {
	items, err := Generate(cfg(SplitEval, 11, []int{512, 2048}, 5, wordTok{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range items {
		q := s.Prompt[strings.LastIndex(s.Prompt, questionSep)+len(questionSep):]
		if !strings.HasSuffix(q, "are") && !strings.HasSuffix(q, "is") {
			t.Errorf("%s: prompt does not end with the question: %q", s.ID, q)
		}
		if len(s.Answers) == 0 || s.MaxNew <= 0 || !strings.HasPrefix(s.Answer, " ") {
			t.Errorf("%s: bad answer fields %+v", s.ID, s)
		}
		if g := Score(s.Answers, s.Answer); !g.Correct {
			t.Errorf("%s: the training answer %q does not grade as correct", s.ID, s.Answer)
		}
		ctx := s.Prompt[:len(s.Prompt)-len(q)]
		switch s.Task {
		case TaskCWE:
			counts := map[string]int{}
			list := strings.Fields(ctx[len(cwePrefix):])
			for _, w := range list {
				counts[w]++
			}
			words := slices.Collect(func(yield func(string) bool) {
				for w := range counts {
					if !yield(w) {
						return
					}
				}
			})
			slices.SortFunc(words, func(a, b string) int { return counts[b] - counts[a] })
			if counts[words[2]] <= counts[words[3]] {
				t.Errorf("%s: top three not strictly ahead", s.ID)
			}
			for _, a := range s.Answers {
				if !slices.Contains(words[:3], a) {
					t.Errorf("%s: answer %q is not among the three most common words", s.ID, a)
				}
			}
		case TaskVT:
			n := s.Answers
			v := regexp.MustCompile(`The number (\d+) is stored in VAR ` + n[0] + `\.`).FindStringSubmatch(ctx)
			if v == nil || !strings.Contains(q, v[1]) {
				t.Errorf("%s: chain start missing", s.ID)
			}
			for i := 1; i < len(n); i++ {
				if !strings.Contains(ctx, "The value of VAR "+n[i-1]+" is copied into VAR "+n[i]+".") {
					t.Errorf("%s: hop %d missing", s.ID, i)
				}
			}
		default:
			for _, a := range s.Answers {
				if strings.Count(ctx, " is "+a+".") != 1 {
					t.Errorf("%s: value %s not in the context exactly once", s.ID, a)
				}
			}
			if regexp.MustCompile(`[0-9]`).MatchString(q) {
				t.Errorf("%s: the question holds a number", s.ID)
			}
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"split", Config{Split: "test", Tasks: Tasks, Lengths: []int{512}, N: 1}},
		{"task", Config{Split: SplitEval, Tasks: []string{"niah"}, Lengths: []int{512}, N: 1}},
		{"length", Config{Split: SplitEval, Tasks: Tasks, Lengths: []int{64}, N: 1}},
		{"n", Config{Split: SplitEval, Tasks: Tasks, Lengths: []int{512}, N: 0}},
		{"cpt", Config{Split: SplitEval, Tasks: Tasks, Lengths: []int{512}, N: 1, CharsPerToken: 0.1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Generate(tc.cfg); err == nil {
				t.Error("no error")
			}
		})
	}
	// A length that cannot hold the template is an error naming the item, not a panic.
	_, err := GenerateOne(Config{Split: SplitEval, Tasks: Tasks, Lengths: []int{128}, N: 1, CharsPerToken: 1}, TaskVT, 128, 0)
	if err == nil || !strings.Contains(err.Error(), "vt/128/000") {
		t.Errorf("err = %v", err)
	}
}

func TestWriteJSONLMatchesGenerate(t *testing.T) {
	c := Config{Split: SplitTrain, Seed: 5, Tasks: []string{TaskNIAHSingle, TaskCWE}, Lengths: []int{256, 300}, N: 3}
	var buf bytes.Buffer
	n, err := WriteJSONL(&buf, c)
	if err != nil || n != 12 {
		t.Fatalf("WriteJSONL = %d, %v", n, err)
	}
	items, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for i, line := range lines {
		var r TrainRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		s := items[i]
		if r.ID != s.ID || r.Prompt != s.Prompt || r.Answer != s.Answer || r.Task != s.Task || r.Length != s.Length {
			t.Errorf("line %d differs from Generate's item %s", i+1, s.ID)
		}
	}
}

func TestBench(t *testing.T) {
	b, err := eval.OpenBenchmark(Name, eval.BenchOptions{Seed: 3, Options: map[string]string{
		"tasks": "niah_single,vt", "lengths": "256,1k", "n": "2", "max_new": "20"}})
	if err != nil {
		t.Fatal(err)
	}
	items, err := b.Items(context.Background(), wordTok{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	want := []string{"niah_single/256/000", "niah_single/256/001", "niah_single/1024/000", "niah_single/1024/001",
		"vt/256/000", "vt/256/001", "vt/1024/000", "vt/1024/001"}
	if !slices.Equal(ids, want) {
		t.Fatalf("ids = %v", ids)
	}
	if items[2].Tags["task"] != "niah_single" || items[2].Tags["length"] != "1024" {
		t.Errorf("tags = %v", items[2].Tags)
	}
	req, err := b.Request(items[0])
	if err != nil {
		t.Fatal(err)
	}
	s := items[0].Data.(Sample)
	if req.Prompt != s.Prompt || req.Messages != nil || req.Sampling.Temperature != 0 || req.Sampling.MaxNew != 20 {
		t.Errorf("request = %+v", req)
	}
	g, err := b.Grade(context.Background(), items[0], "The number is"+s.Answer+".")
	if err != nil || !g.Correct || g.Score != 1 {
		t.Errorf("grade = %+v, %v", g, err)
	}
	if _, err := b.Grade(context.Background(), eval.Item{ID: "x", Data: 3}, "1"); err == nil {
		t.Error("grading foreign data: no error")
	}
	if d := b.Defaults(); d.Samples != 1 || d.Sampling.Temperature != 0 {
		t.Errorf("defaults = %+v", d)
	}
	def, err := New(eval.BenchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := def.Config(); len(c.Tasks)*len(c.Lengths)*c.N < 200 {
		t.Errorf("default suite has %d items, want >= 200", len(c.Tasks)*len(c.Lengths)*c.N)
	}
}

func TestBenchOptionErrors(t *testing.T) {
	for _, opts := range []map[string]string{
		{"tasks": "nope"}, {"lengths": "abc"}, {"lengths": "-5"}, {"n": "0"}, {"max_new": "x"}, {"color": "red"},
		{"lengths": "64"}, {"chars_per_token": "nan"},
	} {
		if _, err := New(eval.BenchOptions{Options: opts}); err == nil {
			t.Errorf("options %v: no error", opts)
		}
	}
}

func TestParseLengths(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		ok   bool
	}{
		{"512", []int{512}, true},
		{"512, 1k,4K", []int{512, 1024, 4096}, true},
		{"", nil, false},
		{"1.5k", nil, false},
		{"0", nil, false},
		{"99999999999999999999", nil, false},
	}
	for _, tc := range tests {
		got, err := ParseLengths(tc.in)
		if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("ParseLengths(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func FuzzParseLengths(f *testing.F) {
	for _, s := range []string{"512", "1k,2k", "", ",", "4K,", "-1", "1e3", "1048576", "1025k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ls, err := ParseLengths(s)
		if err != nil {
			return
		}
		for _, l := range ls {
			if l <= 0 || l > 1<<20 {
				t.Errorf("ParseLengths(%q) accepted %d", s, l)
			}
		}
	})
}

// nothingTok encodes every text to no tokens; encodeOnly encodes only the texts containing want (the template and
// the needles, not the haystack's words).
type nothingTok struct{ keep string }

func (n nothingTok) Encode(s string) []int {
	if n.keep != "" && strings.Contains(s, n.keep) {
		return wordTok{}.Encode(s)
	}
	return nil
}
func (nothingTok) Decode([]int) string { return "" }

// TestTokenizerThatEncodesNothing: a tokenizer under which haystack text has no tokens used to grow the prompt
// without end (100% CPU, all memory); every task now fails at once, naming the piece it could not size.
func TestTokenizerThatEncodesNothing(t *testing.T) {
	for _, tok := range []nothingTok{{}, {keep: "magic"}} {
		for _, task := range Tasks {
			done := make(chan error, 1)
			go func() {
				_, err := GenerateOne(cfg(SplitEval, 1, []int{512}, 1, tok), task, 512, 0)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "to no tokens") {
					t.Errorf("%s (keep %q): err = %v, want one saying the tokenizer encodes text to no tokens", task, tok.keep, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s (keep %q): still generating after 30 s", task, tok.keep)
			}
		}
	}
}
