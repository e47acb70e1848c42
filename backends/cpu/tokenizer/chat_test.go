package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/llm"
)

type render struct {
	Messages            []llm.Message `json:"messages"`
	AddGenerationPrompt bool          `json:"add_generation_prompt"`
	DateString          string        `json:"date_string"`
	Rendered            string        `json:"rendered"`
}

// TestRenderChatMatchesTransformers checks the built-in renderers byte for byte against renders of the
// models' own Jinja templates by transformers (testdata/chat_templates, copied from ../shared/data).
func TestRenderChatMatchesTransformers(t *testing.T) {
	tests := []struct {
		file  string
		style string
		opts  ChatOptions
	}{
		{"Qwen-Qwen2.5-7B-Instruct.renders.json", StyleQwen25, ChatOptions{}},
		{"meta-llama-Llama-3.1-8B-Instruct.renders.json", StyleLlama31, ChatOptions{}},
		// This copy of the R1-Distill template has an enable_thinking switch; undefined, it closes the
		// think block, which NoThinking reproduces.
		{"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.renders.json", StyleDeepSeekR1, ChatOptions{NoThinking: true}},
	}
	for _, tc := range tests {
		data, err := os.ReadFile(filepath.Join("testdata", "chat_templates", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		var renders []render
		if err := json.Unmarshal(data, &renders); err != nil {
			t.Fatal(err)
		}
		if len(renders) == 0 {
			t.Fatalf("%s: no renders", tc.file)
		}
		for i, r := range renders {
			opts := tc.opts
			opts.DateString = r.DateString
			got, err := RenderChat(tc.style, r.Messages, r.AddGenerationPrompt, opts)
			if err != nil {
				t.Fatalf("%s[%d]: %v", tc.file, i, err)
			}
			if got != r.Rendered {
				t.Errorf("%s[%d]:\n got  %q\n want %q", tc.file, i, got, r.Rendered)
			}
		}
	}
}

func TestRenderChatCases(t *testing.T) {
	user := []llm.Message{{Role: "user", Content: "  Hi\n"}}
	tests := []struct {
		name  string
		style string
		msgs  []llm.Message
		gen   bool
		opts  ChatOptions
		want  string
	}{
		{"r1 default thinks", StyleDeepSeekR1, user, true, ChatOptions{},
			"<｜begin▁of▁sentence｜><｜User｜>  Hi\n<｜Assistant｜><think>\n"},
		{"r1 last system wins", StyleDeepSeekR1, []llm.Message{{Role: "system", Content: "A"}, {Role: "user", Content: "u"}, {Role: "system", Content: "B"}}, false, ChatOptions{},
			"<｜begin▁of▁sentence｜>B<｜User｜>u"},
		{"r1 tool outputs", StyleDeepSeekR1, []llm.Message{{Role: "user", Content: "u"}, {Role: "tool", Content: "1"}, {Role: "tool", Content: "2"}, {Role: "assistant", Content: "a"}}, true, ChatOptions{},
			"<｜begin▁of▁sentence｜><｜User｜>u<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>1<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>2<｜tool▁output▁end｜><｜tool▁outputs▁end｜>a<｜end▁of▁sentence｜><｜Assistant｜><think>\n"},
		{"chatml no default system", StyleChatML, user, true, ChatOptions{},
			"<|im_start|>user\n  Hi\n<|im_end|>\n<|im_start|>assistant\n"},
		{"smollm2 default system", StyleSmolLM2, user, false, ChatOptions{},
			"<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\n  Hi\n<|im_end|>\n"},
		{"qwen custom default system", StyleQwen25, user, false, ChatOptions{DefaultSystem: "S"},
			"<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n  Hi\n<|im_end|>\n"},
		{"qwen tool responses grouped", StyleQwen25, []llm.Message{{Role: "system", Content: "S"}, {Role: "tool", Content: "a"}, {Role: "tool", Content: "b"}}, false, ChatOptions{},
			"<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<tool_response>\na\n</tool_response>\n<tool_response>\nb\n</tool_response><|im_end|>\n"},
		{"smollm2 tool is a plain turn", StyleSmolLM2, []llm.Message{{Role: "system", Content: "S"}, {Role: "tool", Content: "a"}}, false, ChatOptions{},
			"<|im_start|>system\nS<|im_end|>\n<|im_start|>tool\na<|im_end|>\n"},
		{"llama3 trims, no system block", StyleLlama3, user, true, ChatOptions{},
			"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"llama3.1 date, trimmed system, tool as json", StyleLlama31, []llm.Message{{Role: "system", Content: " S\x1c"}, {Role: "tool", Content: "x\"y\n"}}, false, ChatOptions{DateString: "1 Jan 2025"},
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 1 Jan 2025\n\nS<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n\"x\\\"y\\n\"<|eot_id|>"},
	}
	for _, tc := range tests {
		got, err := RenderChat(tc.style, tc.msgs, tc.gen, tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s:\n got  %q\n want %q", tc.name, got, tc.want)
		}
	}
}

func TestRenderChatErrors(t *testing.T) {
	if _, err := RenderChat("nope", []llm.Message{{Role: "user"}}, true, ChatOptions{}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown style: %v", err)
	}
	if _, err := RenderChat(StyleQwen25, nil, true, ChatOptions{}); err == nil {
		t.Error("no messages: no error")
	}
	if _, err := RenderChat(StyleLlama31, []llm.Message{{Role: "robot", Content: "x"}}, true, ChatOptions{}); err == nil || !strings.Contains(err.Error(), "robot") {
		t.Errorf("bad role: %v", err)
	}
}

func TestDetectStyle(t *testing.T) {
	tmpl := func(name string) string {
		data, err := os.ReadFile(filepath.Join("testdata", "chat_templates", name))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]string{"chat_template": string(data)})
		return string(b)
	}
	tests := []struct {
		name, cfg, want string
	}{
		{"qwen2.5 template", tmpl("Qwen-Qwen2.5-7B-Instruct.jinja"), StyleQwen25},
		{"llama3.1 template", tmpl("meta-llama-Llama-3.1-8B-Instruct.jinja"), StyleLlama31},
		{"r1 template", tmpl("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"), StyleDeepSeekR1},
		{"llama3 template", `{"chat_template": "{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>{% endfor %}"}`, StyleLlama3},
		{"smollm2 template", `{"chat_template": "<|im_start|>system\nYou are a helpful AI assistant named SmolLM"}`, StyleSmolLM2},
		{"named templates", `{"chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "<|im_start|>"}]}`, StyleChatML},
		{"no template, chatml tokens", `{"eos_token": "<|im_end|>", "added_tokens_decoder": {"1": {"content": "<|im_start|>"}}}`, StyleChatML},
		{"no template, llama tokens", `{"eos_token": {"content": "<|eot_id|>"}}`, StyleLlama3},
		{"no template, r1 tokens", `{"bos_token": "<｜begin▁of▁sentence｜>"}`, StyleDeepSeekR1},
		{"unknown template", `{"chat_template": "[INST] {{ m }} [/INST]", "eos_token": "<|im_end|>"}`, ""},
		{"not json", `{`, ""},
		{"empty", `{}`, ""},
	}
	for _, tc := range tests {
		if got := DetectStyle([]byte(tc.cfg)); got != tc.want {
			t.Errorf("%s: DetectStyle = %q, want %q", tc.name, got, tc.want)
		}
	}
}
