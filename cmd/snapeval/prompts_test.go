package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/eval/longbench"
	"github.com/snapeval/snapeval/llm"
	"github.com/snapeval/snapeval/session"
)

// flagged returns run options whose given flags count as set on the command line.
func flagged(c eval.RunConfig, flags ...string) runOptions {
	set := map[string]bool{}
	for _, f := range flags {
		set[f] = true
	}
	return runOptions{Flags: c, Changed: func(f string) bool { return set[f] }, Getenv: func(string) string { return "" }}
}

// listPrompts runs `snapeval prompts` in-process and parses its JSON lines.
func listPrompts(t *testing.T, o *promptsOptions) []session.Prompt {
	t.Helper()
	var out, log bytes.Buffer
	if err := runPrompts(context.Background(), o, &out, &log); err != nil {
		t.Fatalf("prompts: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "prompts of") {
		t.Errorf("no summary line: %q", log.String())
	}
	var ps []session.Prompt
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var p session.Prompt
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("line %d: %v", len(ps)+1, err)
		}
		ps = append(ps, p)
	}
	return ps
}

// runRecords runs the same configuration for real (`snapeval run`, in-process) and returns its records.
func runRecords(t *testing.T, o runOptions) []eval.Record {
	t.Helper()
	o.Out, o.Quiet, o.NoReport = filepath.Join(t.TempDir(), "run"), true, true
	var out, log bytes.Buffer
	if err := runRun(context.Background(), &o, &out, &log); err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	_, recs, err := eval.LoadRun(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// checkAgainstRun: every record of the run traces back to exactly one prompt by (bench, item, sample), with the
// same prompt hash, seed and prompt size; and every prompt is run.
func checkAgainstRun(t *testing.T, ps []session.Prompt, recs []eval.Record, policies int) {
	t.Helper()
	byKey := map[eval.Key]session.Prompt{}
	for _, p := range ps {
		byKey[eval.Key{Bench: p.Bench, ItemID: p.ItemID, Sample: p.Sample}] = p
	}
	if len(byKey) != len(ps) || len(recs) != len(ps)*policies {
		t.Fatalf("%d prompts (%d distinct), %d records of %d policies", len(ps), len(byKey), len(recs), policies)
	}
	for _, r := range recs {
		p, ok := byKey[eval.Key{Bench: r.Bench, ItemID: r.ItemID, Sample: r.Sample}]
		switch {
		case !ok:
			t.Errorf("record %s has no prompt", r.Key())
		case r.PromptHash != p.PromptHash:
			t.Errorf("record %s: prompt_hash %s, the listed prompt's %s", r.Key(), r.PromptHash, p.PromptHash)
		case r.Seed != p.Sampling.Seed:
			t.Errorf("record %s: seed %d, the listed prompt's %d", r.Key(), r.Seed, p.Sampling.Seed)
		case r.PromptTokens != p.Tokens:
			t.Errorf("record %s: %d prompt tokens, the listed prompt has %d", r.Key(), r.PromptTokens, p.Tokens)
		}
	}
}

// TestPromptsDefaultSuite lists the built-in suite on the embedded model and traces a real run's records to it.
func TestPromptsDefaultSuite(t *testing.T) {
	c := eval.RunConfig{Limit: 2, Samples: 2, MaxNew: 2, Policies: []string{"snapstream:budget=128"}}
	o := &promptsOptions{Run: flagged(c, "limit", "samples", "max-new", "policy"), Out: "-", IDs: true}
	ps := listPrompts(t, o)
	if len(ps) != 2*2 {
		t.Fatalf("%d prompts, want 2 items x 2 samples (policies left out)", len(ps))
	}
	tok, err := tokenizer.Load(filepath.Join("..", "..", "models", "snaptiny", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Bench != "synth" || p.Prompt == "" || len(p.Messages) != 0 || p.Rendered != "" || p.Truncation != nil {
			t.Fatalf("prompt %+v", p)
		}
		if ids := tok.EncodeWithSpecial(p.Prompt); p.Tokens != len(ids) || len(p.IDs) != len(ids) {
			t.Errorf("%s: %d tokens, %d ids, want %d", p.ItemID, p.Tokens, len(p.IDs), len(ids))
		}
		if p.PromptHash != eval.PromptHash(llm.Request{Prompt: p.Prompt}) || p.Sampling.MaxNew != 2 {
			t.Errorf("%s: hash or sampling %+v", p.ItemID, p.Sampling)
		}
	}
	checkAgainstRun(t, ps, runRecords(t, o.Run), 2)

	// --out writes the same lines atomically to a file.
	file := filepath.Join(t.TempDir(), "prompts.jsonl")
	var stdout bytes.Buffer
	o.Out = file
	if err := runPrompts(context.Background(), o, &stdout, &bytes.Buffer{}); err != nil || stdout.Len() != 0 {
		t.Fatal(err, stdout.Len())
	}
	if b, _ := os.ReadFile(file); bytes.Count(b, []byte("\n")) != len(ps) {
		t.Errorf("%s holds %d lines", file, bytes.Count(b, []byte("\n")))
	}
}

// TestPromptsLongBench lists LongBench-v2 prompts (eval/longbench/testdata) on a model whose tokenizer adds
// <|begin_of_text|> and cleans up spaces, as Llama-3.1's does: the listing shows the official truncation, the chat
// template's text and its size, and a real run's records carry the same hashes and sizes.
func TestPromptsLongBench(t *testing.T) {
	model := t.TempDir()
	for src, names := range map[string][]string{
		filepath.Join("..", "..", "backends", "cpu", "testdata", "models", "llama-gqa"):    {"config.json", "generation_config.json", "model.safetensors"},
		filepath.Join("..", "..", "eval", "longbench", "testdata", "tokenizers", "llama3"): {"tokenizer.json", "tokenizer_config.json"},
	} {
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(src, n))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(model, n), b, 0o644)
		}
	}
	data := filepath.Join("..", "..", "eval", "longbench", "testdata", "truncation.json")
	// The fixture's tokenizer_config.json holds no chat template: the built-in llama3 one renders the messages.
	c := eval.RunConfig{Benches: []string{"longbench-v2"}, Data: map[string]string{"longbench-v2": data}, Model: model,
		BenchOpts: map[string]string{"max_len": "200"}, MaxNew: 2, Policies: []string{"snapstream:budget=64"},
		BackendOpts: map[string]string{"chat_style": "llama3"}}
	o := &promptsOptions{Run: flagged(c, "bench", "data", "model", "bench-opt", "max-new", "policy", "backend-opt"), Out: "-"}
	ps := listPrompts(t, o)

	tok, err := tokenizer.Load(filepath.Join(model, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []longbench.Row
	raw, _ := os.ReadFile(data)
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	tmpl, _ := longbench.Template(longbench.Mode0Shot)
	if len(ps) != len(rows) {
		t.Fatalf("%d prompts for %d rows", len(ps), len(rows))
	}
	cut := 0
	for i, p := range ps {
		full := longbench.Render(tmpl, rows[i])
		want, before, after := longbench.Truncate(tok, full, 200)
		if p.ItemID != rows[i].ID || len(p.Messages) != 1 || p.Messages[0].Content != want {
			t.Fatalf("prompt %d is not the officially truncated prompt", i)
		}
		if p.Truncation == nil || p.TokensBefore != before || p.TokensAfter != after || p.Truncated != (before > 200) {
			t.Errorf("%s: truncation %+v, want %d -> %d", p.ItemID, p.Truncation, before, after)
		}
		if before != len(tok.Encode(full))+1 {
			t.Errorf("%s: %d tokens before: want the text's plus <|begin_of_text|>", p.ItemID, before)
		}
		// A cut prompt is decoded as pred.py decodes it: special-token text dropped, spaces before punctuation
		// cleaned up (clean_up_tokenization_spaces); an uncut one is the rendered template as it is.
		content := p.Messages[0].Content
		if p.Truncated {
			cut++
			if strings.Contains(content, "<|eot_id|>") || strings.Contains(content, " .") || strings.Contains(content, "<|begin_of_text|>") {
				t.Errorf("%s: truncated prompt keeps special-token text or \" .\": %q", p.ItemID, content)
			}
		} else if content != full || !strings.Contains(content, "<|eot_id|>") {
			t.Errorf("%s: an uncut prompt must be the rendered template untouched", p.ItemID)
		}
		wantRendered := "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n" + want +
			"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
		if p.Rendered != wantRendered || p.Tokens != len(tok.Encode(wantRendered)) {
			t.Errorf("%s: rendered %q (%d tokens)", p.ItemID, p.Rendered, p.Tokens)
		}
		if p.Sampling.Temperature != 0.1 || p.Sampling.MaxNew != 2 {
			t.Errorf("%s: sampling %+v", p.ItemID, p.Sampling)
		}
	}
	if cut == 0 || cut == len(ps) {
		t.Fatalf("%d of %d prompts truncated: the test wants both kinds", cut, len(ps))
	}
	checkAgainstRun(t, ps, runRecords(t, o.Run), 2)
}

func TestPromptsUsage(t *testing.T) {
	for name, o := range map[string]*promptsOptions{
		"shard":     {Run: runOptions{Shard: "3/2", Changed: func(string) bool { return false }}, Out: "-"},
		"benchmark": {Run: flagged(eval.RunConfig{Benches: []string{"nope"}}, "bench"), Out: "-"},
		"data": {Run: flagged(eval.RunConfig{Benches: []string{"longbench-v2"},
			Data: map[string]string{"longbench-v2": "/nonexistent.json"}}, "bench", "data"), Out: "-"},
	} {
		o.Run.Getenv = func(string) string { return "" }
		if err := runPrompts(context.Background(), o, &bytes.Buffer{}, &bytes.Buffer{}); exitCode(err) != exitUsage {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
}
