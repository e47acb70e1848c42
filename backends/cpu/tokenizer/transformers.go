package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ConfigFile is the file beside tokenizer.json that holds the settings transformers adds on top of the tokenizers
// library (of which snapeval reads clean_up_tokenization_spaces).
const ConfigFile = "tokenizer_config.json"

// WithConfig returns a copy of t configured by the model's tokenizer_config.json (name prefixes errors): its
// clean_up_tokenization_spaces, which DecodeSkipSpecialClean applies. An absent key means false, the default of
// transformers since 4.45 (the version LongBench-v2's requirements.txt pins); real files set it explicitly
// (Llama-3.x true, Qwen2.5 false). Invalid JSON, or a value that is not a boolean, is an error.
func (t *Tokenizer) WithConfig(tokenizerConfigJSON []byte, name string) (*Tokenizer, error) {
	var cfg struct {
		CleanUp *json.RawMessage `json:"clean_up_tokenization_spaces"`
	}
	if err := json.Unmarshal(tokenizerConfigJSON, &cfg); err != nil {
		return nil, fmt.Errorf("tokenizer config %s: invalid JSON: %v", name, err)
	}
	c := *t
	c.cleanUpSpaces = false
	if cfg.CleanUp != nil && string(*cfg.CleanUp) != "null" {
		if err := json.Unmarshal(*cfg.CleanUp, &c.cleanUpSpaces); err != nil {
			return nil, fmt.Errorf("tokenizer config %s: clean_up_tokenization_spaces: want true or false, got %s", name, *cfg.CleanUp)
		}
	}
	return &c, nil
}

// loadSiblingConfig applies the tokenizer_config.json beside the tokenizer.json at path, when there is one.
func (t *Tokenizer) loadSiblingConfig(path string) (*Tokenizer, error) {
	p := filepath.Join(filepath.Dir(path), ConfigFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, err
	}
	return t.WithConfig(data, p)
}

// CleanUpTokenizationSpaces reports whether the tokenizer's config sets clean_up_tokenization_spaces, so that
// transformers' decode applies CleanUpTokenization to its text.
func (t *Tokenizer) CleanUpTokenizationSpaces() bool { return t.cleanUpSpaces }

// DecodeSkipSpecialClean is transformers' tokenizer.decode(ids, skip_special_tokens=True): DecodeSkipSpecial (the
// tokenizers library's decode, special tokens dropped), then CleanUpTokenization when the tokenizer's config sets
// clean_up_tokenization_spaces. Model outputs are not decoded this way (inference servers stream the plain decode).
func (t *Tokenizer) DecodeSkipSpecialClean(ids []int) string {
	s := t.DecodeSkipSpecial(ids)
	if t.cleanUpSpaces {
		s = CleanUpTokenization(s)
	}
	return s
}

// cleanUpReplacements holds transformers' clean_up_tokenization replacements, in its order.
var cleanUpReplacements = [][2]string{
	{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
	{" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
}

// CleanUpTokenization is transformers' clean_up_tokenization: ten chained str.replace calls that delete the space
// before . ? ! , and English contractions (" ' " becomes "'"). Each replace runs over the result of the previous
// one, as Python's chained calls do (a single strings.Replacer would not).
func CleanUpTokenization(s string) string {
	for _, r := range cleanUpReplacements {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}
