package session_test

import (
	"context"
	"path/filepath"
	"testing"

	_ "github.com/snapeval/snapeval/backends/cpu"
	"github.com/snapeval/snapeval/eval"
	_ "github.com/snapeval/snapeval/eval/synthetic"
	"github.com/snapeval/snapeval/session"
)

// TestLifecycle runs a small matrix through Prepare, Open, Execute and Finalize, then prepares it again on the
// same directory: the second session finds nothing to do and finalizes the same records.
func TestLifecycle(t *testing.T) {
	cfg := session.Default()
	cfg.Limit = 2
	cfg.Policies = []string{"snapstream:budget=128"}
	if err := session.Validate(&cfg); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	run := func() (int, session.Result) {
		s, err := session.Prepare(context.Background(), session.Options{Config: cfg, Out: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		pending, err := s.Open()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Execute(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		res, err := s.Finalize()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Incomplete(res); err != nil {
			t.Fatal(err)
		}
		return pending, res
	}
	p1, r1 := run()
	p2, r2 := run()
	if p1 == 0 || p1 != r1.Planned || p2 != 0 || len(r2.Records) != len(r1.Records) {
		t.Fatalf("pending %d then %d, records %d then %d of %d", p1, p2, len(r1.Records), len(r2.Records), r1.Planned)
	}
	if _, recs, err := eval.LoadRun(dir); err != nil || len(recs) != r1.Planned {
		t.Fatalf("LoadRun: %d records, %v", len(recs), err)
	}
}

// TestPrepareUsageErrors: what the user can fix is a *UsageError (exit 2).
func TestPrepareUsageErrors(t *testing.T) {
	for name, mut := range map[string]func(*eval.RunConfig){
		"unknown backend":   func(c *eval.RunConfig) { c.Backend = "nope" },
		"unknown benchmark": func(c *eval.RunConfig) { c.Benches = []string{"nope"} },
		"data for another":  func(c *eval.RunConfig) { c.Data = map[string]string{"aime24": "."} },
		"missing tokenizer": func(c *eval.RunConfig) { c.Tokenizer = "/nonexistent/tokenizer.json" },
	} {
		cfg := session.Default()
		cfg.Limit = 1
		session.Validate(&cfg)
		mut(&cfg)
		_, err := session.Prepare(context.Background(), session.Options{Config: cfg, Out: t.TempDir()})
		if !session.IsUsage(err) {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
}
