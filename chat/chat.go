// Package chat renders conversations into a model's prompt with the model's own chat template, byte for byte
// as transformers' apply_chat_template(tokenize=False) renders it (the engine is package chat/jinja).
//
// The template comes from the model's files as transformers finds it: chat_template.jinja beside
// tokenizer_config.json (it replaces the config's "default" template), named templates in
// additional_chat_templates/NAME.jinja, and the legacy chat_template field of tokenizer_config.json (a
// string, or a list of {name, template}). The template sees the variables apply_chat_template passes:
// the tokenizer's special tokens (bos_token, eos_token, ...), messages, tools, documents,
// add_generation_prompt, and the caller's extra variables (enable_thinking, date_string, ...).
//
// Six built-in templates (Styles) stand in for models that ship none: generic ChatML, and the templates of
// Qwen2.5, SmolLM2, Llama-3, Llama-3.1 and DeepSeek-R1, copied verbatim from those models.
package chat

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/snapeval/snapeval/chat/jinja"
	"github.com/snapeval/snapeval/llm"
)

// Template is a chat template ready to render conversations.
type Template struct {
	// Source says where the template came from: "chat_template.jinja", "tokenizer_config.json",
	// "tokenizer_config.json (template tool_use)", "built-in chatml", or a file name.
	Source string
	// Text is the template's source text.
	Text string
	// SHA256 is the hex SHA-256 of Text.
	SHA256 string
	// Tokens are the special-token variables (bos_token, eos_token, ..., additional_special_tokens) as
	// transformers' special_tokens_map holds them: only those set and non-empty.
	Tokens map[string]any
	// Now is strftime_now's clock (nil: time.Now).
	Now func() time.Time

	tmpl *jinja.Template
}

// ErrNoTemplate is returned by Load and FromTokenizerConfig when the model has no chat template.
var ErrNoTemplate = errors.New("no chat template")

// New parses a template's text. source names it in errors and in Template.Source.
func New(source, text string, tokens map[string]any) (*Template, error) {
	tmpl, err := jinja.Parse(source, text)
	if err != nil {
		return nil, err
	}
	if tokens == nil {
		tokens = map[string]any{}
	}
	sum := sha256.Sum256([]byte(text))
	return &Template{Source: source, Text: text, SHA256: hex.EncodeToString(sum[:]), Tokens: tokens, tmpl: tmpl}, nil
}

// Uses reports whether the template reads the variable or global name (for example strftime_now).
func (t *Template) Uses(name string) bool { return t.tmpl.Uses(name) }

//go:embed builtin/*.jinja
var builtins embed.FS

// builtinTokens are the special tokens a built-in template needs when the model's tokenizer_config.json
// does not name them (the model's own tokens take precedence).
var builtinTokens = map[string]map[string]any{
	"chatml":      {},
	"qwen2.5":     {"eos_token": "<|im_end|>"},
	"smollm2":     {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
	"llama3":      {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
	"llama3.1":    {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
	"deepseek-r1": {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
}

// Styles lists the built-in templates.
func Styles() []string {
	return []string{"chatml", "qwen2.5", "smollm2", "llama3", "llama3.1", "deepseek-r1"}
}

// Builtin returns a built-in template; tokens (the model's special tokens, may be nil) override its
// defaults.
func Builtin(style string, tokens map[string]any) (*Template, error) {
	defaults, ok := builtinTokens[style]
	if !ok {
		return nil, fmt.Errorf("unknown chat template style %q (known: %s)", style, strings.Join(Styles(), ", "))
	}
	text, err := builtins.ReadFile("builtin/" + style + ".jinja")
	if err != nil {
		return nil, err
	}
	merged := map[string]any{}
	for k, v := range defaults {
		merged[k] = v
	}
	for k, v := range tokens {
		merged[k] = v
	}
	return New("built-in "+style, string(text), merged)
}

// specialTokenKeys are transformers' SPECIAL_TOKENS_ATTRIBUTES.
var specialTokenKeys = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token", "additional_special_tokens"}

// tokenText is a special token's text: a string, or an AddedToken object's "content".
func tokenText(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Content != nil {
		return *obj.Content, true
	}
	return "", false
}

// SpecialTokens reads the special-token variables from a tokenizer_config.json (or special_tokens_map.json):
// the strings (or AddedToken contents) of the keys that are set and non-empty.
func SpecialTokens(configJSON []byte, where string) (map[string]any, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(configJSON, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	out := map[string]any{}
	for _, k := range specialTokenKeys {
		raw, ok := cfg[k]
		if !ok || string(raw) == "null" {
			continue
		}
		if k == "additional_special_tokens" {
			var list []json.RawMessage
			if err := json.Unmarshal(raw, &list); err != nil {
				return nil, fmt.Errorf("%s: field %s: want a list of tokens", where, k)
			}
			var toks []any
			for i, r := range list {
				s, ok := tokenText(r)
				if !ok {
					return nil, fmt.Errorf("%s: field %s[%d]: want a string or an object with \"content\"", where, k, i)
				}
				toks = append(toks, s)
			}
			if len(toks) > 0 {
				out[k] = toks
			}
			continue
		}
		s, ok := tokenText(raw)
		if !ok {
			return nil, fmt.Errorf("%s: field %s: want a string or an object with \"content\"", where, k)
		}
		if s != "" {
			out[k] = s
		}
	}
	return out, nil
}

// namedTemplates reads tokenizer_config.json's chat_template: a string is the "default" template, a list
// of {name, template} names several.
func namedTemplates(configJSON []byte, where string) (map[string]string, error) {
	var cfg struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	if err := json.Unmarshal(configJSON, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	out := map[string]string{}
	raw := cfg.ChatTemplate
	if len(raw) == 0 || string(raw) == "null" {
		return out, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		out["default"] = s
		return out, nil
	}
	var list []struct {
		Name     *string `json:"name"`
		Template *string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%s: field chat_template: want a string or a list of {\"name\", \"template\"}", where)
	}
	for i, e := range list {
		if e.Name == nil || e.Template == nil {
			return nil, fmt.Errorf("%s: field chat_template[%d]: want {\"name\", \"template\"}", where, i)
		}
		out[*e.Name] = *e.Template
	}
	return out, nil
}

// pick chooses among named templates as transformers' get_chat_template does: the name asked for; else
// "tool_use" when there are tools and such a template; else "default".
func pick(templates map[string]string, sources map[string]string, choice Choice) (string, string, error) {
	name, tools := choice.Name, choice.Tools
	if len(templates) == 0 {
		return "", "", ErrNoTemplate
	}
	names := make([]string, 0, len(templates))
	for n := range templates {
		names = append(names, n)
	}
	sort.Strings(names)
	if name != "" {
		if t, ok := templates[name]; ok {
			return t, sources[name], nil
		}
		return "", "", fmt.Errorf("the model has no chat template named %q (it has: %s)", name, strings.Join(names, ", "))
	}
	if tools {
		if t, ok := templates["tool_use"]; ok {
			return t, sources["tool_use"], nil
		}
	}
	if t, ok := templates["default"]; ok {
		return t, sources["default"], nil
	}
	return "", "", fmt.Errorf("the model has several chat templates and none named \"default\": choose one by name (%s)", strings.Join(names, ", "))
}

// Choice selects one of a model's named chat templates as transformers' get_chat_template does.
type Choice struct {
	// Name asks for a template by name ("" picks "default").
	Name string
	// Tools picks the "tool_use" template, when the model has one and Name is "", as transformers does
	// for a conversation with tools.
	Tools bool
}

// FromTokenizerConfig returns the chat template of a tokenizer_config.json, with the config's special
// tokens. where names the file in errors.
func FromTokenizerConfig(configJSON []byte, where string, choice Choice) (*Template, error) {
	templates, err := namedTemplates(configJSON, where)
	if err != nil {
		return nil, err
	}
	tokens, err := SpecialTokens(configJSON, where)
	if err != nil {
		return nil, err
	}
	sources := map[string]string{}
	for n := range templates {
		sources[n] = sourceName(where, n, len(templates))
	}
	text, source, err := pick(templates, sources, choice)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return New(source, text, tokens)
}

func sourceName(file, name string, count int) string {
	if name == "default" && count == 1 {
		return file
	}
	return file + " (template " + name + ")"
}

// Load finds the chat template of the model in directory dir of fsys as transformers does:
// tokenizer_config.json's chat_template, replaced by chat_template.jinja when that file exists, plus the
// named templates in additional_chat_templates/. The special tokens come from tokenizer_config.json, then
// special_tokens_map.json. It returns ErrNoTemplate when the model has none.
func Load(fsys fs.FS, dir string, choice Choice) (*Template, error) {
	read := func(file string) ([]byte, error) { return fs.ReadFile(fsys, path.Join(dir, file)) }
	templates := map[string]string{}
	sources := map[string]string{}
	tokens := map[string]any{}
	cfg, err := read("tokenizer_config.json")
	switch {
	case err == nil:
		named, err := namedTemplates(cfg, "tokenizer_config.json")
		if err != nil {
			return nil, err
		}
		for n, t := range named {
			templates[n] = t
			sources[n] = sourceName("tokenizer_config.json", n, len(named))
		}
		if tokens, err = SpecialTokens(cfg, "tokenizer_config.json"); err != nil {
			return nil, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if stm, err := read("special_tokens_map.json"); err == nil {
		more, err := SpecialTokens(stm, "special_tokens_map.json")
		if err != nil {
			return nil, err
		}
		for k, v := range more {
			tokens[k] = v
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if text, err := read("chat_template.jinja"); err == nil {
		templates["default"] = string(text)
		sources["default"] = "chat_template.jinja"
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if entries, err := fs.ReadDir(fsys, path.Join(dir, "additional_chat_templates")); err == nil {
		for _, e := range entries {
			n, ok := strings.CutSuffix(e.Name(), ".jinja")
			if !ok || e.IsDir() {
				continue
			}
			text, err := read(path.Join("additional_chat_templates", e.Name()))
			if err != nil {
				return nil, err
			}
			templates[n] = string(text)
			sources[n] = "additional_chat_templates/" + e.Name()
		}
	}
	text, source, err := pick(templates, sources, choice)
	if err != nil {
		return nil, err
	}
	return New(source, text, tokens)
}

// Conversation is what a template renders.
type Conversation struct {
	// Messages are the chat turns as template values (see Messages and ParseConversation): objects with
	// role and content, and whatever else the template reads (tool_calls, reasoning_content, ...).
	Messages []any
	// AddGenerationPrompt ends the prompt with the opening of the assistant's turn.
	AddGenerationPrompt bool
	// Tools and Documents are the tool and document lists (nil: None).
	Tools, Documents []any
	// Vars are extra variables (enable_thinking, date_string, ...); they override the special tokens.
	Vars map[string]any
}

// Messages converts snapeval's messages into template values.
func Messages(msgs []llm.Message) []any {
	out := make([]any, len(msgs))
	for i, m := range msgs {
		d := jinja.NewDict()
		d.Set("role", m.Role)
		d.Set("content", m.Content)
		out[i] = d
	}
	return out
}

// reserved are the variables apply_chat_template passes itself.
var reserved = []string{"messages", "tools", "documents", "add_generation_prompt"}

// RefusedError is a conversation the template refused with raise_exception (Gemma's "System role not
// supported", Mistral's "conversation roles must alternate ...").
type RefusedError struct {
	Source  string
	Message string
}

func (e *RefusedError) Error() string {
	return "the chat template (" + e.Source + ") refuses the conversation: " + e.Message
}

// Render renders a conversation. A template that raises gives a *RefusedError; other failures name the
// template's source and line.
func (t *Template) Render(c Conversation) (string, error) {
	vars := map[string]any{}
	for k, v := range t.Tokens {
		vars[k] = v
	}
	for k, v := range c.Vars {
		for _, r := range reserved {
			if k == r {
				return "", fmt.Errorf("chat template variable %q is set by the conversation itself", k)
			}
		}
		vars[k] = v
	}
	msgs := c.Messages
	if msgs == nil {
		msgs = []any{}
	}
	vars["messages"] = msgs
	vars["tools"] = nilIfNone(c.Tools)
	vars["documents"] = nilIfNone(c.Documents)
	vars["add_generation_prompt"] = c.AddGenerationPrompt
	out, err := t.tmpl.Render(vars, jinja.Options{Now: t.Now})
	if err != nil {
		var je *jinja.Error
		if errors.As(err, &je) && je.Raised() {
			return "", &RefusedError{Source: t.Source, Message: je.Msg}
		}
		return "", fmt.Errorf("chat template (%s): %w", t.Source, err)
	}
	return out, nil
}

func nilIfNone(items []any) any {
	if items == nil {
		return nil
	}
	return items
}

// ParseVar reads a variable's value given as text (a flag or a YAML string): JSON when it parses as JSON
// (false, 3, "quoted", [1, 2], {"a": 1}), the text itself otherwise (26 Jul 2024).
func ParseVar(text string) any {
	if v, err := jinja.FromJSON([]byte(text)); err == nil {
		return v
	}
	return text
}

// ParseConversation reads a conversation as JSON: {"messages": [...], "add_generation_prompt": true,
// "tools": [...], "documents": [...], "vars": {...}}. Object keys keep their order (tojson writes them in
// it).
func ParseConversation(data []byte) (Conversation, error) {
	var c Conversation
	v, err := jinja.FromJSON(data)
	if err != nil {
		return c, fmt.Errorf("conversation: %w", err)
	}
	d, ok := v.(*jinja.Dict)
	if !ok {
		return c, fmt.Errorf("conversation: want a JSON object")
	}
	for _, k := range d.Keys() {
		key, _ := k.(string)
		val, _ := d.Get(k)
		switch key {
		case "messages", "tools", "documents":
			list, ok := val.([]any)
			if val == nil && key != "messages" {
				continue
			}
			if !ok {
				return c, fmt.Errorf("conversation: field %s: want a list", key)
			}
			switch key {
			case "messages":
				for i, m := range list {
					if _, ok := m.(*jinja.Dict); !ok {
						return c, fmt.Errorf("conversation: field messages[%d]: want an object", i)
					}
				}
				c.Messages = list
			case "tools":
				c.Tools = list
			default:
				c.Documents = list
			}
		case "add_generation_prompt":
			b, ok := val.(bool)
			if !ok {
				return c, fmt.Errorf("conversation: field add_generation_prompt: want true or false")
			}
			c.AddGenerationPrompt = b
		case "vars":
			vd, ok := val.(*jinja.Dict)
			if !ok {
				return c, fmt.Errorf("conversation: field vars: want an object")
			}
			c.Vars = map[string]any{}
			for _, vk := range vd.Keys() {
				vv, _ := vd.Get(vk)
				c.Vars[vk.(string)] = vv
			}
		default:
			return c, fmt.Errorf("conversation: unknown field %q (known: messages, add_generation_prompt, tools, documents, vars)", key)
		}
	}
	if c.Messages == nil {
		return c, fmt.Errorf("conversation: field messages is required")
	}
	return c, nil
}
