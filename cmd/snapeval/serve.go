package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/backends"
	_ "github.com/snapeval/snapeval/backends/cpu"    // registers "cpu"
	_ "github.com/snapeval/snapeval/backends/openai" // registers "openai"
	_ "github.com/snapeval/snapeval/backends/sn40l"  // registers "sn40l"
	_ "github.com/snapeval/snapeval/backends/torch"  // registers "torch"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/models"
	"github.com/snapeval/snapeval/serve"
	"github.com/snapeval/snapeval/session"
)

// serveOptions are the flags of `snapeval serve`.
type serveOptions struct {
	Backend       string
	Model         string
	Name          string
	BaseURL       string
	Policy        string
	DefaultPolicy string
	Addr          string
	BackendOpts   []string
	MaxConcurrent int
	MaxTokens     int
	Grace         time.Duration
	Stderr        io.Writer
}

func init() {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve any backend over the OpenAI HTTP protocol (chat and text completions, streamed or not)",
		Long: `serve answers /v1/chat/completions, /v1/completions, /v1/models and /health over a backend (by default
the cpu backend on the embedded model), and publishes the model's tokenizer.json at /v1/snapeval/tokenizer, so that
"snapeval run --backend openai" against it sizes prompts with the served model's tokenizer and sends each request's
policy without further flags.

The cache policy is fixed with --policy, or chosen per request with the extension field
"snapeval_policy" (default --default-policy). Each response carries a "snapeval" object with the
policy applied, cache capacity, KV bytes and timings. Streaming sends the whole text once the backend
has generated it (Backend.Generate is not incremental), with SSE heartbeats meanwhile.
SIGINT or SIGTERM stops accepting and lets requests in flight finish (up to --grace).`,
		Example: `  snapeval serve                                   # the embedded model, on 127.0.0.1:8080
  snapeval serve --model ./Qwen2.5-0.5B-Instruct --policy snapstream:budget=1024   # a local checkpoint
  curl -s 127.0.0.1:8080/v1/completions -d '{"prompt":"The special magic number for","max_tokens":8,"snapeval_policy":"snapstream:budget=256"}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Stderr = cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Backend, "backend", "cpu", "backend name ("+strings.Join(backends.Names(), ", ")+")")
	f.StringVar(&o.Model, "model", "", "model reference for the backend: a checkpoint directory or Hub id for cpu (default: the embedded model)")
	f.StringVar(&o.Name, "name", "", "model name served in /v1/models (default: the base name of --model)")
	f.StringVar(&o.BaseURL, "base-url", "", "base URL for remote backends")
	f.StringVar(&o.Policy, "policy", "", "fix the cache policy of every request (default: per request)")
	f.StringVar(&o.DefaultPolicy, "default-policy", "full", "policy of requests that name none (without --policy)")
	f.StringVar(&o.Addr, "addr", "127.0.0.1:8080", "listen address host:port")
	f.StringArrayVar(&o.BackendOpts, "backend-opt", nil, "backend option key=value (repeatable), e.g. slots=8")
	f.IntVar(&o.MaxConcurrent, "max-concurrent", 64, "requests generating at once (more wait their turn)")
	f.IntVar(&o.MaxTokens, "max-tokens", 1024, "max new tokens of requests that set none")
	f.DurationVar(&o.Grace, "grace", 30*time.Second, "how long shutdown waits for requests in flight")
	rootCmd.AddCommand(cmd)
}

// canonicalPolicy parses a policy spec and prints it canonically.
func canonicalPolicy(spec string) (string, error) {
	p, err := compress.Parse(spec)
	if err != nil {
		return "", err
	}
	return p.String(), nil
}

func runServe(ctx context.Context, o *serveOptions) error {
	if o.MaxConcurrent <= 0 || o.MaxTokens <= 0 {
		return usageErrorf("--max-concurrent and --max-tokens must be positive")
	}
	opts, err := session.ParseKV(o.BackendOpts, "--backend-opt")
	if err != nil {
		return err
	}
	for _, p := range []string{o.Policy, o.DefaultPolicy} {
		if p == "" {
			continue
		}
		if _, err := canonicalPolicy(p); err != nil {
			return usageErrorf("policy %q: %w", p, err)
		}
	}
	be, err := backends.Open(ctx, o.Backend, backends.Config{Model: o.Model, BaseURL: o.BaseURL, Options: opts, Concurrency: o.MaxConcurrent})
	if err != nil {
		return fmt.Errorf("opening backend %s: %w", o.Backend, err)
	}
	defer be.Close()
	name := o.Name
	if name == "" {
		name = filepath.Base(strings.TrimRight(o.Model, "/"))
		switch {
		case o.Model == "" && o.Backend == "cpu":
			name = models.Name // the cpu backend opens the embedded model
		case o.Model == "":
			name = o.Backend
		}
	}
	logger := log.New(o.Stderr, "", log.LstdFlags)
	srv, err := serve.New(serve.Config{Backend: be, Model: name, Policy: o.Policy, DefaultPolicy: o.DefaultPolicy,
		Canonicalize: canonicalPolicy, MaxConcurrent: o.MaxConcurrent, DefaultMaxTokens: o.MaxTokens, Log: logger})
	if err != nil {
		return usageErrorf("%w", err)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return usageErrorf("--addr %s: %w", o.Addr, err)
	}
	policy := o.Policy
	if policy == "" {
		policy = "per request (default " + o.DefaultPolicy + ")"
	}
	fmt.Fprintf(o.Stderr, "snapeval serve: %s (%s), policy %s, on http://%s/v1\n", name, be.Identity(), policy, ln.Addr())
	err = srv.Serve(ctx, ln, o.Grace)
	fmt.Fprintln(o.Stderr, "snapeval serve: stopped")
	return err
}
