package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTemplateCommand renders conversations read from stdin with `snapeval template` and compares the
// output, byte for byte, with Jinja2's renders of the same templates (chat/testdata/renders).
func TestTemplateCommand(t *testing.T) {
	corpus := filepath.Join("..", "..", "chat", "testdata")
	gemma, err := os.ReadFile(filepath.Join(corpus, "templates", "google-gemma-2-2b-it.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	llama, err := os.ReadFile(filepath.Join(corpus, "templates", "meta-llama-Llama-3.2-3B-Instruct.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "tokenizer_config.json")
	cfg, _ := json.Marshal(map[string]any{"chat_template": string(llama), "bos_token": map[string]any{"content": "<|begin_of_text|>"}, "eos_token": "<|eot_id|>"})
	os.WriteFile(cfgFile, cfg, 0o644)
	model := filepath.Join(dir, "gemma")
	os.Mkdir(model, 0o755)
	os.WriteFile(filepath.Join(model, "chat_template.jinja"), gemma, 0o644)
	os.WriteFile(filepath.Join(model, "tokenizer_config.json"), []byte(`{"bos_token": "<bos>", "chat_template": "ignored"}`), 0o644)
	jinjaFile := filepath.Join(dir, "t.jinja")
	os.WriteFile(jinjaFile, []byte("{{ bos_token }}{{ messages[0].content }}|{{ tools|length }}"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)

	// The golden render of the date-string conversation with Llama-3.2 and of the user one with Gemma-2.
	golden := func(file, conv string) string {
		var g struct {
			Renders []struct {
				Conversation string `json:"conversation"`
				Rendered     string `json:"rendered"`
			} `json:"renders"`
		}
		b, err := os.ReadFile(filepath.Join(corpus, "renders", file))
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(b, &g)
		for _, r := range g.Renders {
			if r.Conversation == conv {
				return r.Rendered
			}
		}
		t.Fatalf("no golden %s %s", file, conv)
		return ""
	}
	dateConv := `{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What day is it?"}], "add_generation_prompt": true, "vars": {"date_string": "1 Jan 2025"}}`
	userConv := `{"messages": [{"role": "user", "content": "What is 2+2?"}], "add_generation_prompt": true}`
	tests := []struct {
		name    string
		opts    templateOptions
		stdin   string
		want    string
		wantErr string
	}{
		{"tokenizer config", templateOptions{TokenizerConfig: cfgFile}, dateConv, golden("meta-llama-Llama-3.2-3B-Instruct.json", "date-string"), ""},
		{"strftime clock", templateOptions{TokenizerConfig: cfgFile, Now: "2024-09-05T14:07:09Z"},
			`{"messages": [{"role": "user", "content": "What is 2+2?"}], "add_generation_prompt": true}`, golden("meta-llama-Llama-3.2-3B-Instruct.json", "user"), ""},
		{"model dir", templateOptions{Model: model}, userConv, golden("google-gemma-2-2b-it.json", "user"), ""},
		{"template file with model tokens", templateOptions{Model: model, Template: jinjaFile}, `{"messages": [{"role": "user", "content": "x"}], "tools": [{}]}`, "<bos>x|1", ""},
		{"style", templateOptions{Style: "chatml"}, userConv, "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", ""},
		{"refused", templateOptions{Model: model}, dateConv, "", "refuses the conversation: System role not supported"},
		{"no template", templateOptions{Model: empty}, userConv, "", "no chat template (render with --template FILE or --style STYLE)"},
		{"bad stdin", templateOptions{Style: "chatml"}, `{"messages": 1}`, "", "stdin: conversation: field messages: want a list"},
		{"no source", templateOptions{}, userConv, "", "give --tokenizer-config FILE"},
		{"both sources", templateOptions{Model: model, TokenizerConfig: cfgFile}, userConv, "", "not both"},
		{"bad now", templateOptions{Style: "chatml", Now: "soon"}, userConv, "", "--now"},
		{"name with style", templateOptions{Style: "chatml", Name: "x"}, userConv, "", "--name"},
		{"unknown name", templateOptions{Model: model, Name: "rag"}, userConv, "", `no chat template named "rag"`},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		o := tc.opts
		o.In, o.Out = strings.NewReader(tc.stdin), &out
		err := runTemplate(&o)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if out.String() != tc.want {
			t.Errorf("%s:\n got  %q\n want %q", tc.name, out.String(), tc.want)
		}
	}
}

// TestTemplateCLI runs the command through the CLI: flags wired, stdout exactly the prompt.
func TestTemplateCLI(t *testing.T) {
	cmd := cli(t, "template", "--style", "llama3")
	cmd.Stdin = strings.NewReader(`{"messages": [{"role": "user", "content": " Hi "}], "add_generation_prompt": false}`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}
