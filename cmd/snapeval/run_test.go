package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
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
	o := &runOptions{ConfigFile: cfgPath, Samples: 2, Concurrency: 8, set: func(n string) bool { return changed[n] }}
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
		"bad policy":   {Policies: []string{"snapstream:budget=8,kernel=4"}, Concurrency: 1},
		"dup policy":   {Policies: []string{"snapstream:budget=64", "snapstream:budget=64"}, Concurrency: 1},
		"bad kv":       {BenchOpts: []string{"novalue"}, Concurrency: 1},
		"missing file": {ConfigFile: "/nonexistent/run.yaml", Concurrency: 1},
	} {
		o.set = func(n string) bool { return n == "policy" }
		_, _, err := resolveConfig(o)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitUsage {
			t.Errorf("%s: err %v, want a usage error", name, err)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("benchs: [x]\n"), 0o644)
	if _, _, err := resolveConfig(&runOptions{ConfigFile: bad, Concurrency: 1}); err == nil {
		t.Error("unknown YAML key accepted")
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		"https://api.example.com/v1":       "https://api.example.com/v1",
		"https://u:sk-secret@host/v1":      "https://REDACTED@host/v1",
		"http://host/v1?api_key=sk-secret": "http://host/v1?REDACTED",
		"http://host/v1?api_key=sk-s#frag": "http://host/v1?REDACTED#frag",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOptionsFor(t *testing.T) {
	opts := map[string]string{"n": "2", "longbench-v2.max_len": "1000", "aime24.grader": "qwen"}
	if got := optionsFor(opts, "longbench-v2"); !reflect.DeepEqual(got, map[string]string{"n": "2", "max_len": "1000"}) {
		t.Errorf("longbench-v2 options %v", got)
	}
	if got := optionsFor(opts, "ruler"); !reflect.DeepEqual(got, map[string]string{"n": "2"}) {
		t.Errorf("ruler options %v", got)
	}
	if optionsFor(nil, "ruler") != nil {
		t.Error("no options should stay nil")
	}
}

func TestFreshRunDir(t *testing.T) {
	base := filepath.Join(t.TempDir(), "run-x")
	if got := freshRunDir(base); got != base {
		t.Fatal(got)
	}
	os.Mkdir(base, 0o755)
	os.Mkdir(base+"-2", 0o755)
	if got := freshRunDir(base); got != base+"-3" {
		t.Fatal(got)
	}
}
