package ruler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/eval"
)

func eval0() eval.BenchOptions { return eval.BenchOptions{} }

func TestOptions(t *testing.T) {
	for _, c := range []struct {
		opts map[string]string
		bad  string
	}{
		{map[string]string{"tasks": "vt,cwe", "lengths": "4k,8192", "n": "3", "seed": "7", "template": "meta-llama3"}, ""},
		{map[string]string{"tasks": "niah_single"}, "unknown task"},
		{map[string]string{"template": "llama"}, "unknown model template"},
		{map[string]string{"n": "0"}, "want > 0"},
		{map[string]string{"seed": "-1"}, "seed"},
		{map[string]string{"chars_per_token": "4"}, "now synth"},
	} {
		_, err := New(eval.BenchOptions{Options: c.opts})
		if (err == nil) != (c.bad == "") || (err != nil && !strings.Contains(err.Error(), c.bad)) {
			t.Errorf("%v: err %v, want %q", c.opts, err, c.bad)
		}
	}
}

// TestPreparedDir reads prepare.py's layout (<len>/data/<task>/validation.jsonl) and sends input + answer_prefix.
func TestPreparedDir(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "4096", "data", "niah_single_1")
	os.MkdirAll(p, 0o755)
	row := `{"index": 12, "input": "A special magic number for x is: 1234567. What is it?", "outputs": ["1234567"], "length": 30, "length_w_model_temp": 30, "answer_prefix": " The special magic number for x mentioned in the provided text is", "token_position_answer": 5}` + "\n"
	os.WriteFile(filepath.Join(p, "validation.jsonl"), []byte(row+row), 0o644)
	b, err := New(eval.BenchOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	items, err := b.Items(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[1].ID != "niah_single_1/4096/001" || items[0].Tags["depth"] != "60" {
		t.Fatalf("items %+v", items)
	}
	req, _ := b.Request(items[0])
	if !strings.HasSuffix(req.Prompt, "provided text is") || req.Sampling.MaxNew != 128 || req.Sampling.Temperature != 0 {
		t.Errorf("request %+v", req)
	}
	if got := b.Files(); len(got) != 1 {
		t.Errorf("files %v", got)
	}
}

// TestItemsDeterministic: the same seed and data give the same items, a prefix for a smaller n, and a balanced
// index-major order.
func TestItemsDeterministic(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"squad.json", "hotpotqa.json"} {
		b, _ := os.ReadFile(filepath.Join("testdata", f))
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	gen := func(n string) []eval.Item {
		b, err := New(eval.BenchOptions{DataDir: dir, Options: map[string]string{"tasks": "niah_multikey_2,vt,qa_1", "lengths": "1200", "n": n}})
		if err != nil {
			t.Fatal(err)
		}
		items, err := b.Items(context.Background(), wsTok{})
		if err != nil {
			t.Fatal(err)
		}
		return items
	}
	a, b := gen("2"), gen("1")
	if len(a) != 6 || len(b) != 3 || a[0].ID != "niah_multikey_2/1200/000" || a[1].ID != "vt/1200/000" {
		t.Fatalf("ids %d %d %s %s", len(a), len(b), a[0].ID, a[1].ID)
	}
	for i := range b {
		if a[i].Data.(*Item).Row.Input != b[i].Data.(*Item).Row.Input {
			t.Errorf("item %s differs between n=2 and n=1", a[i].ID)
		}
	}
	if _, err := New(eval.BenchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestNeedsTokenizer(t *testing.T) {
	task, _ := TaskByName("vt")
	if _, err := Generate(Spec{Task: task, MaxSeq: 4096, N: 1, Seed: 42, Template: "base"}); err == nil || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("err %v", err)
	}
}
