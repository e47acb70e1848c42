package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// fileJSON is the subset of Hugging Face tokenizer.json that byte-level BPE needs.
type fileJSON struct {
	AddedTokens   []addedTokenJSON `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Decoder       json.RawMessage  `json:"decoder"`
	Model         *modelJSON       `json:"model"`
}

type addedTokenJSON struct {
	ID         *int   `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelJSON struct {
	Type                    string            `json:"type"`
	Vocab                   map[string]int    `json:"vocab"`
	Merges                  []json.RawMessage `json:"merges"`
	UnkToken                *string           `json:"unk_token"`
	ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
	FuseUnk                 bool              `json:"fuse_unk"`
	ByteFallback            bool              `json:"byte_fallback"`
	IgnoreMerges            bool              `json:"ignore_merges"`
}

// typed reads the "type" field of a component object.
type typed struct {
	Type string `json:"type"`
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// componentType decodes the "type" of a component object; field names it in errors.
func componentType(raw json.RawMessage, field string) (string, error) {
	var t typed
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", fmt.Errorf("%s: %v", field, err)
	}
	if t.Type == "" {
		return "", fmt.Errorf("%s: missing \"type\"", field)
	}
	return t.Type, nil
}

// parseMerge reads one merge written either as ["a", "b"] or as "a b".
func parseMerge(raw json.RawMessage, idx int) (string, string, error) {
	t := bytes.TrimSpace(raw)
	if len(t) > 0 && t[0] == '"' {
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return "", "", fmt.Errorf("model.merges[%d]: %v", idx, err)
		}
		parts := strings.Split(s, " ")
		if len(parts) != 2 {
			return "", "", fmt.Errorf("model.merges[%d]: %q is not two tokens separated by one space", idx, s)
		}
		return parts[0], parts[1], nil
	}
	var pair []string
	if err := json.Unmarshal(t, &pair); err != nil {
		return "", "", fmt.Errorf("model.merges[%d]: want a string or a pair of strings: %v", idx, err)
	}
	if len(pair) != 2 {
		return "", "", fmt.Errorf("model.merges[%d]: want 2 tokens, got %d", idx, len(pair))
	}
	return pair[0], pair[1], nil
}
