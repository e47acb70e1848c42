package textgen

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/snapeval/snapeval/llm"
)

func loadFixture(t *testing.T, style string) *Text {
	t.Helper()
	tx, err := Load(os.DirFS("../cpu/testdata/models/llama-gqa"), ".", "llama-gqa", "llama-gqa", ChatOptions{Style: style}, "test backend")
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func TestLoad(t *testing.T) {
	tx := loadFixture(t, "")
	if _, err := tx.ChatTemplate(); err == nil || len(tx.EOS) == 0 {
		t.Errorf("the fixture has no chat template, yet ChatTemplate says none is missing (EOS %v)", tx.EOS)
	}
	base := fstest.MapFS{
		"config.json":           {Data: []byte(`{"eos_token_id": 7}`)},
		"tokenizer.json":        {Data: mustRead(t, "../cpu/testdata/models/llama-gqa/tokenizer.json")},
		"tokenizer_config.json": {Data: []byte(`{"chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"}`)},
	}
	cases := []struct {
		name    string
		gen     string
		wantEOS []int
		wantErr string
	}{
		{"config only", "", []int{7}, ""},
		{"generation config wins", `{"eos_token_id": [1, 2]}`, []int{1, 2}, ""},
		{"generation config without eos", `{"do_sample": false}`, []int{7}, ""},
		{"bad generation config", `{"eos_token_id": "x"}`, nil, "generation_config.json: field eos_token_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for k, v := range base {
				fsys[k] = v
			}
			if c.gen != "" {
				fsys["generation_config.json"] = &fstest.MapFile{Data: []byte(c.gen)}
			}
			tx, err := Load(fsys, ".", "m", "m", ChatOptions{}, "test backend")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tx.EOS, c.wantEOS) {
				t.Errorf("EOS %v, want %v", tx.EOS, c.wantEOS)
			}
			if _, err := tx.ChatTemplate(); err != nil {
				t.Errorf("chat template not loaded from tokenizer_config.json: %v", err)
			}
		})
	}
	if _, err := Load(fstest.MapFS{"config.json": {Data: []byte(`{}`)}}, ".", "m", "m", ChatOptions{}, "test backend"); err == nil || !strings.Contains(err.Error(), "test backend") {
		t.Errorf("missing tokenizer.json: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodePrompt(t *testing.T) {
	tx := loadFixture(t, "")
	if _, err := tx.EncodePrompt(llm.Request{Key: "k", Prompt: "a", Messages: []llm.Message{{Role: "user", Content: "b"}}}); err == nil || !strings.Contains(err.Error(), "test backend: request k sets both") {
		t.Errorf("both: %v", err)
	}
	if _, err := tx.EncodePrompt(llm.Request{Key: "k"}); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("neither: %v", err)
	}
	if _, err := tx.EncodePrompt(llm.Request{Key: "k", Messages: []llm.Message{{Role: "user", Content: "b"}}}); err == nil || !strings.Contains(err.Error(), "chat_style") || !errors.Is(err, llm.ErrBadRequest) {
		t.Errorf("no template: %v", err)
	}
	ids, err := tx.EncodePrompt(llm.Request{Prompt: "hello world"})
	if err != nil || len(ids) == 0 || !slices.Equal(ids, tx.Tok.EncodeWithSpecial("hello world")) {
		t.Errorf("raw prompt: %v %v", ids, err)
	}
	chat := loadFixture(t, "chatml")
	ids, err = chat.EncodePrompt(llm.Request{Messages: []llm.Message{{Role: "user", Content: "hi"}}})
	if err != nil || !strings.Contains(chat.Tok.Decode(ids), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n") {
		t.Errorf("chat prompt: %q %v", chat.Tok.Decode(ids), err)
	}
}

func TestStopper(t *testing.T) {
	tx := loadFixture(t, "")
	ids := tx.Tok.Encode("the quick brown fox jumps over the lazy dog")
	cases := []struct {
		name    string
		stops   []string
		text    string
		stopped bool
	}{
		{"none", nil, "the quick brown fox jumps over the lazy dog", false},
		{"empty ignored", []string{""}, "the quick brown fox jumps over the lazy dog", false},
		{"first of two", []string{"lazy", "brown"}, "the quick ", true},
		{"spanning tokens", []string{"fox jumps"}, "the quick brown ", true},
		{"absent", []string{"cat"}, "the quick brown fox jumps over the lazy dog", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewStopper(tx.Tok, c.stops)
			n := 0
			for _, id := range ids {
				n++
				if s.Add(id) {
					break
				}
			}
			if got := s.Text(); got != c.text || s.Stopped() != c.stopped {
				t.Errorf("text %q stopped %v, want %q %v", got, s.Stopped(), c.text, c.stopped)
			}
			if c.stopped && n == len(ids) && c.name != "absent" {
				t.Error("Add did not report the stop before the end")
			}
		})
	}
}
