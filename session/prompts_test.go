package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/session"
)

// TestPromptsOnePerSample: the run matrix has one task per policy; Prompts lists each (item, sample) once, in run
// order, with the request's hash and seed, and token ids only when asked.
func TestPromptsOnePerSample(t *testing.T) {
	cfg := session.Default()
	cfg.Limit, cfg.Samples = 2, 2
	cfg.Policies = []string{"snapstream:budget=128", "snapkv:topk=64,window=8,kernel=1"}
	if err := session.Validate(&cfg); err != nil {
		t.Fatal(err)
	}
	s, err := session.Prepare(context.Background(), session.Options{Config: cfg, Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Tasks()) != 2*2*3 {
		t.Fatalf("%d tasks", len(s.Tasks()))
	}
	for _, withIDs := range []bool{false, true} {
		var buf bytes.Buffer
		n, cut, err := s.WritePrompts(&buf, session.PromptOptions{IDs: withIDs})
		if err != nil || n != 2*2 || cut != 0 {
			t.Fatalf("%d prompts, %d truncated, %v", n, cut, err)
		}
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		for i, line := range lines {
			var p session.Prompt
			if err := json.Unmarshal([]byte(line), &p); err != nil {
				t.Fatal(err)
			}
			task := s.Tasks()[i/2*6+i%2] // the full policy's tasks: item i/2, sample i%2
			if p.ItemID != task.Item.ID || p.Sample != i%2 || p.Sample != task.Sample ||
				p.PromptHash != eval.PromptHash(task.Request) || p.Sampling.Seed != task.Request.Sampling.Seed {
				t.Errorf("line %d: %s/%d, want %s/%d", i, p.ItemID, p.Sample, task.Item.ID, task.Sample)
			}
			if (len(p.IDs) == p.Tokens) != withIDs || p.Tokens == 0 {
				t.Errorf("line %d: %d ids of %d tokens (ids asked: %v)", i, len(p.IDs), p.Tokens, withIDs)
			}
			if strings.Contains(line, `"policy"`) {
				t.Errorf("line %d names a policy", i)
			}
		}
	}
}
