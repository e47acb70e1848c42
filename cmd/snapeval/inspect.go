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

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/llm"
	"github.com/snapeval/snapeval/session"
)

// inspectOptions are the flags of `snapeval inspect`.
type inspectOptions struct {
	Backend     string
	BackendOpts []string
	Model       string
	PromptIDs   string
	PromptText  string
	Policy      string
	MaxNew      int
	Out         io.Writer
}

func init() {
	o := &inspectOptions{}
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show the KV cache kept after prefill and the greedy tokens of a local model under one policy",
		Long: `inspect loads a Hugging Face checkpoint with a local backend (cpu, or torch on a GPU), prefills the
prompt, compresses the cache under --policy and decodes --max-new greedy tokens (EOS ignored). It prints one
JSON object: prompt_ids, policy, capacity, kv_bytes, kept ([layer][kv_head] sorted absolute positions after
prefill), greedy and logits_last. --prompt-text is tokenized like a raw prompt (with the tokenizer's BOS, if any).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return runInspect(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Backend, "backend", "cpu", "local backend (cpu or torch)")
	f.StringArrayVar(&o.BackendOpts, "backend-opt", nil, "backend option key=value (repeatable), e.g. dtype=float32")
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
	if o.Backend == "" {
		o.Backend = "cpu"
	}
	opts, err := session.ParseKV(o.BackendOpts, "--backend-opt")
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	be, err := backends.Open(ctx, o.Backend, backends.Config{Model: o.Model, Options: opts, Concurrency: 1})
	if err != nil {
		return fmt.Errorf("opening backend %s: %w", o.Backend, err)
	}
	defer be.Close()
	b, ok := be.(backends.Inspector)
	if !ok {
		return usageErrorf("inspect: backend %s cannot show its cache (use cpu or torch)", o.Backend)
	}
	if o.PromptText != "" {
		if ids, err = b.EncodePrompt(llm.Request{Prompt: o.PromptText}); err != nil {
			return err
		}
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
