package session

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/eval"
)

// Setting is one key of the run configuration, under the names it has in each source.
type Setting struct {
	// Key is the YAML key (the yaml tag of the eval.RunConfig field it fills).
	Key string
	// Flag is the command-line flag of `snapeval run`.
	Flag string
	// Env names the environment variable that sets the key for a backend ("" for none). Only endpoints come from
	// the environment (secrets are read by the backends themselves and never enter the configuration).
	Env func(backend string) string
}

// Settings is the one table of run settings: every source (defaults, YAML file, environment, flags) is read
// through it, in this order of increasing precedence: flag > environment > file > default. Keys are resolved in
// table order, so backend comes before the endpoint that depends on it.
var Settings = []Setting{
	{Key: "benches", Flag: "bench"},
	{Key: "backend", Flag: "backend"},
	{Key: "model", Flag: "model"},
	{Key: "base_url", Flag: "base-url", Env: baseURLEnv},
	{Key: "policies", Flag: "policy"},
	{Key: "samples", Flag: "samples"},
	{Key: "limit", Flag: "limit"},
	{Key: "seed", Flag: "seed"},
	{Key: "temperature", Flag: "temperature"},
	{Key: "top_p", Flag: "top-p"},
	{Key: "max_new", Flag: "max-new"},
	{Key: "concurrency", Flag: "concurrency"},
	{Key: "bench_options", Flag: "bench-opt"},
	{Key: "tokenizer", Flag: "tokenizer"},
	{Key: "data", Flag: "data"},
	{Key: "backend_options", Flag: "backend-opt"},
}

// baseURLEnv is the endpoint variable of each remote backend.
func baseURLEnv(backend string) string {
	switch backend {
	case "openai":
		return "OPENAI_BASE_URL"
	case "sn40l":
		return "SAMBANOVA_BASE_URL"
	}
	return ""
}

// fieldIndex maps a YAML key to its eval.RunConfig field.
var fieldIndex = func() map[string]int {
	m := map[string]int{}
	t := reflect.TypeFor[eval.RunConfig]()
	for i := range t.NumField() {
		if k, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); k != "" && k != "-" {
			m[k] = i
		}
	}
	return m
}()

// Layer is one source of settings: Config holds its values and Has says which keys it sets (nil: every key, as
// for the defaults).
type Layer struct {
	Config eval.RunConfig
	Has    func(key string) bool
}

// File is the YAML run configuration: the run matrix plus remote endpoints per policy.
type File struct {
	eval.RunConfig `yaml:",inline"`
	Endpoints      map[string]backends.Endpoint `yaml:"endpoints"`
}

// ReadFile reads a YAML run configuration. Unknown keys are an error naming them and the known ones.
func ReadFile(path string) (Layer, map[string]backends.Endpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Layer{}, nil, Usagef("reading config: %w", err)
	}
	var fc File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.ReplaceAll(err.Error(), " in type session.File", "")
		return Layer{}, nil, Usagef("%s: %s (known keys: %s, endpoints)", path, msg, strings.Join(Keys(), ", "))
	}
	var present map[string]yaml.Node
	if err := yaml.Unmarshal(data, &present); err != nil {
		return Layer{}, nil, Usagef("%s: %w", path, err)
	}
	return Layer{Config: fc.RunConfig, Has: func(k string) bool { _, ok := present[k]; return ok }}, fc.Endpoints, nil
}

// flagOf is the flag of a setting's key.
func flagOf(key string) string {
	for _, s := range Settings {
		if s.Key == key {
			return s.Flag
		}
	}
	return key
}

// Keys lists the YAML keys of the run configuration, in table order.
func Keys() []string {
	keys := make([]string, len(Settings))
	for i, s := range Settings {
		keys[i] = s.Key
	}
	return keys
}

// Resolve merges the sources of a run configuration through the Settings table: for each key the flag when given,
// else the environment variable when set, else the file's value when the file names the key, else the default.
// Maps (bench_options, backend_options, data) merge key by key in the same order of precedence. getenv may be nil.
// The result is validated and its policies made canonical, the full-cache baseline first.
func Resolve(defaults, file, flags Layer, getenv func(string) string) (eval.RunConfig, error) {
	cfg := defaults.Config
	dst := reflect.ValueOf(&cfg).Elem()
	for _, s := range Settings {
		i, ok := fieldIndex[s.Key]
		if !ok {
			panic("session: setting " + s.Key + " has no eval.RunConfig field")
		}
		f := dst.Field(i)
		if f.Kind() == reflect.Map {
			merged := map[string]string{}
			for _, l := range []Layer{defaults, file, flags} {
				if l.Has != nil && !l.Has(s.Key) {
					continue
				}
				for k, v := range reflect.ValueOf(l.Config).Field(i).Interface().(map[string]string) {
					merged[k] = v
				}
			}
			if len(merged) > 0 {
				f.Set(reflect.ValueOf(merged))
			} else {
				f.Set(reflect.Zero(f.Type()))
			}
			continue
		}
		env := ""
		if s.Env != nil && getenv != nil {
			if name := s.Env(cfg.Backend); name != "" {
				env = strings.TrimSpace(getenv(name))
			}
		}
		switch {
		case flags.Has != nil && flags.Has(s.Key):
			f.Set(reflect.ValueOf(flags.Config).Field(i))
		case env != "":
			f.SetString(env)
		case file.Has != nil && file.Has(s.Key):
			f.Set(reflect.ValueOf(file.Config).Field(i))
		}
	}
	// 0 spells "the benchmark's default" where a setting is left out, never as a value given on the command line.
	for _, k := range []struct {
		key string
		v   int
	}{{"samples", flags.Config.Samples}, {"max_new", flags.Config.MaxNew}} {
		if flags.Has != nil && flags.Has(k.key) && k.v == 0 {
			return cfg, Usagef("--%s 0: want a number >= 1 (leave the flag out for the benchmark's default)", flagOf(k.key))
		}
	}
	if err := Validate(&cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Validate checks a resolved configuration and makes its policies canonical (full first, no duplicates).
func Validate(cfg *eval.RunConfig) error {
	if len(cfg.Benches) == 0 {
		return Usagef("no benchmark chosen (--bench)")
	}
	if err := cfg.Validate(); err != nil {
		return &UsageError{Err: err}
	}
	pols, err := CanonicalPolicies(cfg.Policies)
	if err != nil {
		return err
	}
	cfg.Policies = pols
	return nil
}

// CanonicalPolicies parses every spec, prints it canonically, puts the full baseline first and refuses duplicates.
func CanonicalPolicies(specs []string) ([]string, error) {
	out := []string{"full"}
	seen := map[string]bool{"full": true}
	for _, s := range specs {
		p, err := compress.Parse(s)
		if err != nil {
			return nil, Usagef("--policy %q: %w", s, err)
		}
		c := p.String()
		if seen[c] {
			if c == "full" {
				continue
			}
			return nil, Usagef("--policy %q given twice", c)
		}
		seen[c] = true
		out = append(out, c)
	}
	return out, nil
}

// ParseKV parses key=value pairs (the --bench-opt, --backend-opt and --data flags) into a map.
func ParseKV(kvs []string, flag string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, Usagef("%s %q: want key=value", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

// Default is the embedded default run: the built-in suite on the shipped model, full cache versus SnapStream at
// three budgets, StreamingLLM and SnapKV at the middle budget.
func Default() eval.RunConfig {
	return eval.RunConfig{
		Benches:     []string{"synth"},
		Backend:     "cpu",
		Policies:    []string{"snapstream:budget=128", "snapstream:budget=256", "snapstream:budget=512", "streaming:sinks=4,recent=252", "snapkv:topk=224,window=32,kernel=5"},
		Seed:        1,
		Concurrency: 8,
	}
}
