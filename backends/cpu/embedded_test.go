package cpu_test

import (
	"context"
	"testing"
	"time"

	"github.com/snapeval/snapeval/backends/cpu"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/models"
)

// TestShippedModel loads the embedded checkpoint through OpenFS and generates under full and a compressed policy.
func TestShippedModel(t *testing.T) {
	b, err := cpu.OpenFS(models.SnapTiny, ".", models.Name, cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t.Logf("%s %+v", b.Identity(), b.Shape())
	for _, pol := range []string{"full", "snapstream:budget=64"} {
		start := time.Now()
		out, err := b.Generate(context.Background(), eval.Request{Prompt: "The key is 7. What is the key?", Policy: pol,
			Sampling: eval.Sampling{MaxNew: 16}})
		if err != nil {
			t.Fatal(err)
		}
		if out.PromptTokens == 0 || out.OutputTokens == 0 || out.Cache.Capacity == 0 {
			t.Errorf("%s: %+v", pol, out)
		}
		t.Logf("%s: %q (%d tokens, %s, %v)", pol, out.Text, out.OutputTokens, out.FinishReason, time.Since(start))
	}
}
