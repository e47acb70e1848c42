package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/backends/cpu"
)

// inspectOptions are the flags of `snapeval inspect`.
type inspectOptions struct {
	Model      string
	PromptIDs  string
	PromptText string
	Policy     string
	MaxNew     int
	Out        io.Writer
}

func init() {
	o := &inspectOptions{}
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show the KV cache kept after prefill and the greedy tokens of a local model under one policy",
		Long: `inspect loads a local Hugging Face checkpoint with the cpu backend, prefills the prompt, compresses
the cache under --policy and decodes --max-new greedy tokens (EOS ignored). It prints one JSON object:
prompt_ids, kept ([layer][kv_head] sorted absolute positions after prefill), greedy and logits_last.
--prompt-text is tokenized like a raw prompt (with the tokenizer's BOS, if any).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return runInspect(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Model, "model", "", "model directory (config.json, model.safetensors, tokenizer.json)")
	f.StringVar(&o.PromptIDs, "prompt-ids", "", "prompt token ids: 1,2,3 or @file.json (a JSON list, or an object with prompt_ids)")
	f.StringVar(&o.PromptText, "prompt-text", "", "prompt text (instead of --prompt-ids)")
	f.StringVar(&o.Policy, "policy", "full", "cache policy spec")
	f.IntVar(&o.MaxNew, "max-new", 24, "greedy tokens to decode")
	rootCmd.AddCommand(cmd)
}

func runInspect(cmd *cobra.Command, o *inspectOptions) error {
	if o.Model == "" {
		return usageErrorf("inspect: --model is required")
	}
	if (o.PromptIDs == "") == (o.PromptText == "") {
		return usageErrorf("inspect: give exactly one of --prompt-ids and --prompt-text")
	}
	if o.MaxNew < 0 {
		return usageErrorf("inspect: --max-new must not be negative")
	}
	var ids []int
	if o.PromptIDs != "" {
		var err error
		if ids, err = parsePromptIDs(o.PromptIDs); err != nil {
			return usageErrorf("inspect: --prompt-ids: %w", err)
		}
	}
	b, err := cpu.Open(o.Model, cpu.Options{})
	if err != nil {
		return err
	}
	defer b.Close()
	if o.PromptText != "" {
		ids = b.TokenizerImpl().EncodeWithSpecial(o.PromptText)
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := b.Inspect(ctx, ids, o.Policy, o.MaxNew)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(o.Out)
	return enc.Encode(res)
}

// parsePromptIDs reads "1,2,3" or "@file.json" (a JSON list of ids, or an object with a prompt_ids list).
func parsePromptIDs(s string) ([]int, error) {
	if name, ok := strings.CutPrefix(s, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var ids []int
		if err := json.Unmarshal(b, &ids); err == nil {
			return ids, nil
		}
		var obj struct {
			PromptIDs []int `json:"prompt_ids"`
		}
		if err := json.Unmarshal(b, &obj); err != nil || obj.PromptIDs == nil {
			return nil, fmt.Errorf("%s: want a JSON list of token ids or an object with prompt_ids", name)
		}
		return obj.PromptIDs, nil
	}
	var ids []int
	for i, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("item %d %q is not an integer", i+1, f)
		}
		ids = append(ids, n)
	}
	return ids, nil
}
