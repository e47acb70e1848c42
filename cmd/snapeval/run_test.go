package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/snapeval/snapeval/eval"
)

func TestResolveConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "run.yaml")
	os.WriteFile(cfgPath, []byte(`
benches: [aime24]
backend: openai
model: served-model
policies: ["snapstream:budget=4096"]
samples: 4
temperature: 0.6
bench_options: {mode: qwen}
endpoints:
  "snapstream:budget=4096": {base_url: "http://127.0.0.1:9/v1", model: m}
`), 0o644)
	changed := map[string]bool{"config": true, "samples": true}
	o := &runOptions{ConfigFile: cfgPath, Flags: eval.RunConfig{Samples: 2, Concurrency: 8}, Changed: func(n string) bool { return changed[n] }}
	cfg, eps, err := resolveConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Samples != 2 {
		t.Errorf("flag did not override the file: samples %d", cfg.Samples)
	}
	if cfg.Backend != "openai" || cfg.Model != "served-model" || *cfg.Temperature != 0.6 || cfg.BenchOpts["mode"] != "qwen" {
		t.Errorf("file values lost: %+v", cfg)
	}
	if !reflect.DeepEqual(cfg.Policies, []string{"full", "snapstream:budget=4096"}) {
		t.Errorf("policies %v: want the baseline first", cfg.Policies)
	}
	if eps["snapstream:budget=4096"].Model != "m" {
		t.Errorf("endpoints %v", eps)
	}
}

func TestResolveConfigErrors(t *testing.T) {
	for name, o := range map[string]*runOptions{
		"bad policy":   {Flags: eval.RunConfig{Policies: []string{"snapstream:budget=8,kernel=4"}, Concurrency: 1}},
		"dup policy":   {Flags: eval.RunConfig{Policies: []string{"snapstream:budget=64", "snapstream:budget=64"}, Concurrency: 1}},
		"missing file": {ConfigFile: "/nonexistent/run.yaml", Flags: eval.RunConfig{Concurrency: 1}},
	} {
		o.Changed = func(n string) bool { return n == "policy" }
		_, _, err := resolveConfig(o)
		if exitCode(err) != exitUsage {
			t.Errorf("%s: err %v, want a usage error", name, err)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("benchs: [x]\n"), 0o644)
	if _, _, err := resolveConfig(&runOptions{ConfigFile: bad, Flags: eval.RunConfig{Concurrency: 1}}); err == nil {
		t.Error("unknown YAML key accepted")
	}
}
