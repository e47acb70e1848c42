package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCleanUpTokenization(t *testing.T) {
	tests := []struct{ in, want string }{
		{"It is late . Is it ? Yes ! a , b", "It is late. Is it? Yes! a, b"},
		{"do n't , I 'm , it 's , we 've , they 're", "don't, I'm, it's, we've, they're"},
		{"a ' b", "a'b"},
		// transformers' own reports of what it does to Llama-3.1 text (issues 35175, 44914).
		{" plunged the long 'sword' into", " plunged the long'sword' into"},
		{"x != y and a.b == c", "x!= y and a.b == c"},
		// Non-overlapping, left to right, one pass per pattern, as Python's str.replace.
		{"x  .", "x ."},
		{" .  .", ". ."},
		// The chain runs in order on the result of the previous replace: " ." goes before " ' ", which then finds no
		// "' " left (a single-pass strings.Replacer, or another order, would give "a'.").
		{"a ' .", "a '."},
		{"no change", "no change"},
	}
	for _, tc := range tests {
		if got := CleanUpTokenization(tc.in); got != tc.want {
			t.Errorf("CleanUpTokenization(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWithConfig(t *testing.T) {
	tok, err := Load(filepath.Join("testdata", "llama3", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	ids := append([]int{0}, tok.Encode("It 's late . <|eot_id|>Is it ?")...) // 0 = <|begin_of_text|>
	tests := []struct {
		config  string
		cleanUp bool
		err     string
	}{
		{`{"clean_up_tokenization_spaces": true}`, true, ""},
		{`{"clean_up_tokenization_spaces": false}`, false, ""},
		{`{"bos_token": "<|begin_of_text|>"}`, false, ""},
		{`{"clean_up_tokenization_spaces": null}`, false, ""},
		{`{"clean_up_tokenization_spaces": "yes"}`, false, `cfg.json: clean_up_tokenization_spaces: want true or false, got "yes"`},
		{`{"clean_up_tokenization_spaces": `, false, "cfg.json: invalid JSON"},
	}
	for _, tc := range tests {
		c, err := tok.WithConfig([]byte(tc.config), "cfg.json")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.config, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if c.CleanUpTokenizationSpaces() != tc.cleanUp {
			t.Errorf("%s: clean-up %v", tc.config, c.CleanUpTokenizationSpaces())
		}
		want := "It 's late . Is it ?"
		if tc.cleanUp {
			want = "It's late. Is it?"
		}
		if got := c.DecodeSkipSpecialClean(ids); got != want {
			t.Errorf("%s: DecodeSkipSpecialClean = %q, want %q", tc.config, got, want)
		}
		if got := c.DecodeSkipSpecial(ids); got != "It 's late . Is it ?" {
			t.Errorf("%s: DecodeSkipSpecial = %q: the tokenizers-level decode never cleans up", tc.config, got)
		}
	}
	if tok.CleanUpTokenizationSpaces() {
		t.Error("WithConfig changed the tokenizer it was called on")
	}
}

// TestLoadReadsSiblingConfig: Load applies the tokenizer_config.json beside tokenizer.json, as from_pretrained does.
func TestLoadReadsSiblingConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "chatml", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tokenizer.json")
	os.WriteFile(path, data, 0o644)
	for _, tc := range []struct {
		config  string // "" writes no file
		cleanUp bool
		err     string
	}{
		{"", false, ""},
		{`{"clean_up_tokenization_spaces": true}`, true, ""},
		{`{"clean_up_tokenization_spaces": 1}`, false, filepath.Join(dir, ConfigFile)},
	} {
		os.Remove(filepath.Join(dir, ConfigFile))
		if tc.config != "" {
			os.WriteFile(filepath.Join(dir, ConfigFile), []byte(tc.config), 0o644)
		}
		tok, err := Load(path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want one naming %s", tc.config, err, tc.err)
			}
			continue
		}
		if err != nil || tok.CleanUpTokenizationSpaces() != tc.cleanUp {
			t.Errorf("%q: clean-up %v, err %v", tc.config, tok != nil && tok.CleanUpTokenizationSpaces(), err)
		}
	}
}
