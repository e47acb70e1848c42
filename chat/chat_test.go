package chat

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/snapeval/snapeval/chat/jinja"
	"github.com/snapeval/snapeval/llm"
)

// TestSharedRenders renders the templates of snapeval's validation data (testdata/shared, copied from
// ../shared/data/chat_templates) and compares them with the renders that data holds.
func TestSharedRenders(t *testing.T) {
	for _, name := range []string{"Qwen-Qwen2.5-7B-Instruct", "meta-llama-Llama-3.1-8B-Instruct", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B"} {
		text, err := os.ReadFile(filepath.Join("testdata", "shared", name+".jinja"))
		if err != nil {
			t.Fatal(err)
		}
		var renders []struct {
			Messages            []llm.Message `json:"messages"`
			AddGenerationPrompt bool          `json:"add_generation_prompt"`
			BOS                 string        `json:"bos_token"`
			EOS                 string        `json:"eos_token"`
			DateString          string        `json:"date_string"`
			Rendered            string        `json:"rendered"`
		}
		readJSON(t, filepath.Join("testdata", "shared", name+".renders.json"), &renders)
		if len(renders) == 0 {
			t.Fatalf("%s: no renders", name)
		}
		for i, r := range renders {
			tmpl, err := New(name, string(text), map[string]any{"bos_token": r.BOS, "eos_token": r.EOS})
			if err != nil {
				t.Fatal(err)
			}
			got, err := tmpl.Render(Conversation{Messages: Messages(r.Messages), AddGenerationPrompt: r.AddGenerationPrompt,
				Vars: map[string]any{"date_string": r.DateString}})
			if err != nil {
				t.Fatalf("%s[%d]: %v", name, i, err)
			}
			if got != r.Rendered {
				t.Errorf("%s[%d]:\n got  %q\n want %q", name, i, got, r.Rendered)
			}
		}
	}
}

// TestStyles renders the cases the six hand-written styles that the built-in templates replace were
// tested with; the built-ins must render them byte-identically.
func TestStyles(t *testing.T) {
	user := []llm.Message{{Role: "user", Content: "  Hi\n"}}
	tests := []struct {
		name  string
		style string
		msgs  []llm.Message
		gen   bool
		vars  map[string]any
		want  string
	}{
		{"r1 default thinks", "deepseek-r1", user, true, nil,
			"<｜begin▁of▁sentence｜><｜User｜>  Hi\n<｜Assistant｜><think>\n"},
		{"r1 last system wins", "deepseek-r1", []llm.Message{{Role: "system", Content: "A"}, {Role: "user", Content: "u"}, {Role: "system", Content: "B"}}, false, nil,
			"<｜begin▁of▁sentence｜>B<｜User｜>u"},
		{"r1 tool outputs", "deepseek-r1", []llm.Message{{Role: "user", Content: "u"}, {Role: "tool", Content: "1"}, {Role: "tool", Content: "2"}, {Role: "assistant", Content: "a"}}, true, nil,
			"<｜begin▁of▁sentence｜><｜User｜>u<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>1<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>2<｜tool▁output▁end｜><｜tool▁outputs▁end｜>a<｜end▁of▁sentence｜><｜Assistant｜><think>\n"},
		{"r1 drops earlier reasoning", "deepseek-r1", []llm.Message{{Role: "user", Content: "u"}, {Role: "assistant", Content: "<think>a</think>b</think>c"}}, false, nil,
			"<｜begin▁of▁sentence｜><｜User｜>u<｜Assistant｜>c<｜end▁of▁sentence｜>"},
		{"chatml no default system", "chatml", user, true, nil,
			"<|im_start|>user\n  Hi\n<|im_end|>\n<|im_start|>assistant\n"},
		{"chatml tool is a plain turn", "chatml", []llm.Message{{Role: "tool", Content: "a"}}, false, nil,
			"<|im_start|>tool\na<|im_end|>\n"},
		{"smollm2 default system", "smollm2", user, false, nil,
			"<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\n  Hi\n<|im_end|>\n"},
		{"qwen default system", "qwen2.5", user, true, nil,
			"<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n  Hi\n<|im_end|>\n<|im_start|>assistant\n"},
		{"qwen tool responses grouped", "qwen2.5", []llm.Message{{Role: "system", Content: "S"}, {Role: "tool", Content: "a"}, {Role: "tool", Content: "b"}}, false, nil,
			"<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<tool_response>\na\n</tool_response>\n<tool_response>\nb\n</tool_response><|im_end|>\n"},
		{"smollm2 tool is a plain turn", "smollm2", []llm.Message{{Role: "system", Content: "S"}, {Role: "tool", Content: "a"}}, false, nil,
			"<|im_start|>system\nS<|im_end|>\n<|im_start|>tool\na<|im_end|>\n"},
		{"llama3 trims, no system block", "llama3", user, true, nil,
			"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"llama3.1 default date", "llama3.1", user, false, nil,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"},
		{"llama3.1 date, trimmed system, tool as json", "llama3.1", []llm.Message{{Role: "system", Content: " S\x1c"}, {Role: "tool", Content: "x\"y\n"}}, false, map[string]any{"date_string": "1 Jan 2025"},
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 1 Jan 2025\n\nS<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n\"x\\\"y\\n\"<|eot_id|>"},
	}
	for _, tc := range tests {
		tmpl, err := Builtin(tc.style, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tmpl.Render(Conversation{Messages: Messages(tc.msgs), AddGenerationPrompt: tc.gen, Vars: tc.vars})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s:\n got  %q\n want %q", tc.name, got, tc.want)
		}
	}
	if _, err := Builtin("nope", nil); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown style: %v", err)
	}
	b, err := Builtin("llama3", map[string]any{"bos_token": "<s>"})
	if err != nil || b.Tokens["bos_token"] != "<s>" || b.Tokens["eos_token"] != "<|eot_id|>" {
		t.Errorf("the model's tokens override a built-in's: %v %v", b.Tokens, err)
	}
}

func TestLoad(t *testing.T) {
	cfg := func(fields string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("{" + fields + "}")}
	}
	tokens := `"bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>", "pad_token": null, "unk_token": "",
		"additional_special_tokens": ["<a>", {"content": "<b>"}]`
	tests := []struct {
		name       string
		files      fstest.MapFS
		choice     Choice
		wantSource string
		wantText   string
		wantErr    string
	}{
		{"string in config", fstest.MapFS{"m/tokenizer_config.json": cfg(`"chat_template": "A", ` + tokens)}, Choice{},
			"tokenizer_config.json", "A", ""},
		{"jinja file wins", fstest.MapFS{"m/tokenizer_config.json": cfg(`"chat_template": "A"`), "m/chat_template.jinja": {Data: []byte("B")}}, Choice{},
			"chat_template.jinja", "B", ""},
		{"jinja file alone", fstest.MapFS{"m/chat_template.jinja": {Data: []byte("B")}}, Choice{}, "chat_template.jinja", "B", ""},
		{"named default", fstest.MapFS{"m/tokenizer_config.json": cfg(`"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]`)}, Choice{},
			"tokenizer_config.json (template default)", "D", ""},
		{"named by choice", fstest.MapFS{"m/tokenizer_config.json": cfg(`"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]`)}, Choice{Name: "tool_use"},
			"tokenizer_config.json (template tool_use)", "T", ""},
		{"tool_use for tools", fstest.MapFS{"m/tokenizer_config.json": cfg(`"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]`)}, Choice{Tools: true},
			"tokenizer_config.json (template tool_use)", "T", ""},
		{"jinja file replaces the default entry", fstest.MapFS{"m/tokenizer_config.json": cfg(`"chat_template": [{"name": "rag", "template": "R"}, {"name": "default", "template": "D"}]`), "m/chat_template.jinja": {Data: []byte("J")}}, Choice{},
			"chat_template.jinja", "J", ""},
		{"additional templates", fstest.MapFS{"m/chat_template.jinja": {Data: []byte("J")}, "m/additional_chat_templates/rag.jinja": {Data: []byte("R")}}, Choice{Name: "rag"},
			"additional_chat_templates/rag.jinja", "R", ""},
		{"no default", fstest.MapFS{"m/tokenizer_config.json": cfg(`"chat_template": [{"name": "rag", "template": "R"}, {"name": "tool_use", "template": "T"}]`)}, Choice{},
			"", "", `none named "default": choose one by name (rag, tool_use)`},
		{"unknown name", fstest.MapFS{"m/chat_template.jinja": {Data: []byte("J")}}, Choice{Name: "x"}, "", "", `no chat template named "x" (it has: default)`},
		{"none", fstest.MapFS{"m/tokenizer_config.json": cfg(`"eos_token": "</s>"`)}, Choice{}, "", "", "no chat template"},
		{"bad list", fstest.MapFS{"m/tokenizer_config.json": cfg(`"chat_template": [{"name": "x"}]`)}, Choice{}, "", "", "chat_template[0]"},
		{"bad token", fstest.MapFS{"m/tokenizer_config.json": cfg(`"chat_template": "A", "bos_token": 3`)}, Choice{}, "", "", "field bos_token"},
		{"not json", fstest.MapFS{"m/tokenizer_config.json": {Data: []byte("{")}}, Choice{}, "", "", "tokenizer_config.json"},
		{"does not parse", fstest.MapFS{"m/chat_template.jinja": {Data: []byte("a\n{% if %}")}}, Choice{}, "", "", "chat_template.jinja:2:7"},
	}
	for _, tc := range tests {
		tmpl, err := Load(tc.files, "m", tc.choice)
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
		if tmpl.Source != tc.wantSource || tmpl.Text != tc.wantText {
			t.Errorf("%s: got %s %q, want %s %q", tc.name, tmpl.Source, tmpl.Text, tc.wantSource, tc.wantText)
		}
	}
	if _, err := Load(fstest.MapFS{}, "m", Choice{}); !errors.Is(err, ErrNoTemplate) {
		t.Errorf("empty directory: %v, want ErrNoTemplate", err)
	}
	tmpl, err := Load(fstest.MapFS{"m/tokenizer_config.json": cfg(`"chat_template": "{{ bos_token }}|{{ eos_token }}|{{ pad_token is defined }}|{{ unk_token is defined }}|{{ additional_special_tokens }}", ` + tokens),
		"m/special_tokens_map.json": cfg(`"eos_token": {"content": "<eos>"}`)}, "m", Choice{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Render(Conversation{})
	if want := "<s>|<eos>|False|False|['<a>', '<b>']"; err != nil || got != want {
		t.Errorf("special tokens: %q %v, want %q", got, err, want)
	}
}

func TestFromTokenizerConfig(t *testing.T) {
	tmpl, err := FromTokenizerConfig([]byte(`{"chat_template": [{"name": "default", "template": "{{ messages|length }}{{ x }}"}], "bos_token": "<b>"}`), "cfg.json", Choice{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Render(Conversation{Messages: []any{jinja.NewDict()}, Vars: map[string]any{"x": "!"}})
	if err != nil || got != "1!" {
		t.Errorf("got %q %v", got, err)
	}
	if tmpl.Source != "cfg.json" || len(tmpl.SHA256) != 64 {
		t.Errorf("source %q sha %q", tmpl.Source, tmpl.SHA256)
	}
	if _, err := FromTokenizerConfig([]byte(`{}`), "cfg.json", Choice{}); !errors.Is(err, ErrNoTemplate) || !strings.Contains(err.Error(), "cfg.json") {
		t.Errorf("no template: %v", err)
	}
}

// TestRefused checks that a template's raise_exception becomes a RefusedError naming the template and
// carrying its message.
func TestRefused(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("testdata", "templates", "google-gemma-2-2b-it.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := New("gemma-2-2b-it chat_template.jinja", string(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tmpl.Render(Conversation{Messages: Messages([]llm.Message{{Role: "system", Content: "s"}, {Role: "user", Content: "u"}})})
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Message != "System role not supported" ||
		err.Error() != "the chat template (gemma-2-2b-it chat_template.jinja) refuses the conversation: System role not supported" {
		t.Errorf("got %v", err)
	}
	broken, err := New("broken.jinja", "ok\n{{ messages[0] + 1 }}", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = broken.Render(Conversation{Messages: []any{"m"}})
	if err == nil || errors.As(err, &refused) || err.Error() != `chat template (broken.jinja): line 2: TypeError: can only concatenate str (not "int") to str` {
		t.Errorf("a failing template: %v", err)
	}
	if _, err := tmpl.Render(Conversation{Vars: map[string]any{"messages": 1}}); err == nil || !strings.Contains(err.Error(), "messages") {
		t.Errorf("reserved variable: %v", err)
	}
}

func TestClock(t *testing.T) {
	tmpl, err := New("t", "{{ strftime_now('%d %b %Y') }}", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !tmpl.Uses("strftime_now") || tmpl.Uses("date_string") {
		t.Error("Uses")
	}
	tmpl.Now = func() time.Time { return time.Date(2025, 3, 7, 0, 0, 0, 0, time.UTC) }
	if got, err := tmpl.Render(Conversation{}); err != nil || got != "07 Mar 2025" {
		t.Errorf("got %q %v", got, err)
	}
}

func TestParseConversation(t *testing.T) {
	c, err := ParseConversation([]byte(`{"messages": [{"role": "user", "content": "hi", "z": 1, "a": 2}], "add_generation_prompt": true,
		"tools": [{"name": "f"}], "documents": null, "vars": {"date_string": "26 Jul 2024", "enable_thinking": false}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Messages) != 1 || !c.AddGenerationPrompt || len(c.Tools) != 1 || c.Documents != nil || c.Vars["enable_thinking"] != false {
		t.Errorf("got %+v", c)
	}
	tmpl, _ := New("t", "{{ messages[0]|tojson }}", nil)
	if got, _ := tmpl.Render(c); got != `{"role": "user", "content": "hi", "z": 1, "a": 2}` {
		t.Errorf("key order lost: %s", got)
	}
	for _, tc := range []struct{ in, want string }{
		{`[]`, "want a JSON object"},
		{`{"messages": {}}`, "field messages: want a list"},
		{`{"messages": ["x"]}`, "field messages[0]: want an object"},
		{`{"messages": [], "add_generation_prompt": 1}`, "field add_generation_prompt"},
		{`{"messages": [], "vars": []}`, "field vars: want an object"},
		{`{"messages": [], "extra": 1}`, `unknown field "extra"`},
		{`{"add_generation_prompt": true}`, "field messages is required"},
		{`{"messages": [}`, "conversation: JSON"},
		{`{"messages": []} x`, "unexpected data"},
	} {
		if _, err := ParseConversation([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestParseVar(t *testing.T) {
	for in, want := range map[string]string{"false": "false", "3": "3", `"x y"`: `"x y"`, "26 Jul 2024": `"26 Jul 2024"`, `[1, "a"]`: `[1, "a"]`, `{"a": 1}`: `{"a": 1}`, "": `""`} {
		tmpl, _ := New("t", "{{ v|tojson }}", nil)
		got, err := tmpl.Render(Conversation{Vars: map[string]any{"v": ParseVar(in)}})
		if err != nil || got != want {
			t.Errorf("ParseVar(%q) renders %s %v, want %s", in, got, err, want)
		}
	}
}

// BenchmarkRender renders a multi-turn conversation with tools through Qwen3's template (macros, loops
// over the messages, string methods, tojson), the per-request cost of a chat prompt on the CPU backend.
func BenchmarkRender(b *testing.B) {
	text, err := os.ReadFile(filepath.Join("testdata", "templates", "Qwen-Qwen3-0.6B.jinja"))
	if err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "conversations.json"))
	if err != nil {
		b.Fatal(err)
	}
	v, err := jinja.FromJSON(raw)
	if err != nil {
		b.Fatal(err)
	}
	var conv Conversation
	for _, c := range v.([]any) {
		d := c.(*jinja.Dict)
		if name, _ := d.Get("name"); name == "tool-call-string-arguments" {
			msgs, _ := d.Get("messages")
			tools, _ := d.Get("tools")
			conv = Conversation{Messages: msgs.([]any), Tools: tools.([]any), AddGenerationPrompt: true}
		}
	}
	tmpl, err := New("qwen3", string(text), map[string]any{"eos_token": "<|im_end|>"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tmpl.Render(conv); err != nil {
			b.Fatal(err)
		}
	}
}
