package session

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/snapeval/snapeval/eval"
)

// TestResolvePrecedence checks flag > environment > file > default for every kind of setting, through the one table.
func TestResolvePrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.yaml")
	os.WriteFile(path, []byte(`
benches: [aime24]
backend: openai
base_url: http://file/v1
seed: 0
samples: 4
temperature: 0.6
bench_options: {mode: qwen, max_len: "100"}
`), 0o644)
	file, _, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	flagSet := map[string]bool{"samples": true, "bench_options": true}
	flags := Layer{Config: eval.RunConfig{Samples: 2, Seed: 99, BenchOpts: map[string]string{"max_len": "200"}},
		Has: func(k string) bool { return flagSet[k] }}
	env := map[string]string{"OPENAI_BASE_URL": " http://env/v1 "}
	tests := []struct {
		name string
		env  map[string]string
		want func(c eval.RunConfig) bool
	}{
		{"flag beats file", nil, func(c eval.RunConfig) bool { return c.Samples == 2 }},
		{"file beats default", nil, func(c eval.RunConfig) bool { return c.Backend == "openai" && *c.Temperature == 0.6 }},
		{"file's explicit zero is kept", nil, func(c eval.RunConfig) bool { return c.Seed == 0 }},
		{"file beats default when no env", nil, func(c eval.RunConfig) bool { return c.BaseURL == "http://file/v1" }},
		{"env beats file", env, func(c eval.RunConfig) bool { return c.BaseURL == "http://env/v1" }},
		{"maps merge key by key", nil, func(c eval.RunConfig) bool {
			return reflect.DeepEqual(c.BenchOpts, map[string]string{"mode": "qwen", "max_len": "200"})
		}},
		{"default stays", nil, func(c eval.RunConfig) bool { return c.Concurrency == 8 }},
		{"policies canonical, full first", nil, func(c eval.RunConfig) bool {
			return reflect.DeepEqual(c.Policies, []string{"full", "snapstream:budget=128", "snapstream:budget=256",
				"snapstream:budget=512", "streaming:sinks=4,recent=252", "snapkv:topk=224,window=32,kernel=5"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Resolve(Layer{Config: Default()}, file, flags, func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(cfg) {
				t.Errorf("%+v", cfg)
			}
		})
	}
	// A flag beats the environment.
	flagSet["base_url"] = true
	flags.Config.BaseURL = "http://flag/v1"
	cfg, err := Resolve(Layer{Config: Default()}, file, flags, func(k string) string { return env[k] })
	if err != nil || cfg.BaseURL != "http://flag/v1" {
		t.Errorf("flag vs env: %q, %v", cfg.BaseURL, err)
	}
}

// TestSettingsCoverRunConfig: every YAML key of eval.RunConfig has a row in the table, and every row a field.
func TestSettingsCoverRunConfig(t *testing.T) {
	rows := map[string]bool{}
	for _, s := range Settings {
		if _, ok := fieldIndex[s.Key]; !ok {
			t.Errorf("setting %q has no RunConfig field", s.Key)
		}
		rows[s.Key] = true
	}
	for k := range fieldIndex {
		if !rows[k] {
			t.Errorf("RunConfig key %q has no row in Settings", k)
		}
	}
}

func TestReadFileUnknownKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("benchs: [x]\n"), 0o644)
	_, _, err := ReadFile(path)
	if !IsUsage(err) {
		t.Fatalf("err %v, want a usage error", err)
	}
}
