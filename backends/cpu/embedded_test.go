package cpu_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/cpu"
	"github.com/snapeval/snapeval/llm"
	"github.com/snapeval/snapeval/models"
)

// TestShippedModel opens the embedded checkpoint as the default model (through OpenFS) and generates under full and a compressed policy.
func TestShippedModel(t *testing.T) {
	bk, err := backends.Open(context.Background(), "cpu", backends.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Close()
	b := bk.(*cpu.Backend)
	if !strings.HasPrefix(b.Identity(), "cpu:"+models.Name+"@") {
		t.Errorf("default model identity %q", b.Identity())
	}
	t.Logf("%s %+v", b.Identity(), b.Shape())
	for _, pol := range []string{"full", "snapstream:budget=64"} {
		start := time.Now()
		out, err := b.Generate(context.Background(), llm.Request{Prompt: "The key is 7. What is the key?", Policy: pol,
			Sampling: llm.Sampling{MaxNew: 16}})
		if err != nil {
			t.Fatal(err)
		}
		if out.PromptTokens == 0 || out.OutputTokens == 0 || out.Cache.Capacity == 0 {
			t.Errorf("%s: %+v", pol, out)
		}
		t.Logf("%s: %q (%d tokens, %s, %v)", pol, out.Text, out.OutputTokens, out.FinishReason, time.Since(start))
	}
}
