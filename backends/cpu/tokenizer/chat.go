package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/snapeval/snapeval/llm"
)

// Chat template styles understood by RenderChat.
const (
	// StyleChatML is plain ChatML (<|im_start|>role\n...<|im_end|>\n) with no default system prompt.
	StyleChatML = "chatml"
	// StyleQwen25 is Qwen2.5's ChatML: a default system prompt when the conversation has none.
	StyleQwen25 = "qwen2.5"
	// StyleSmolLM2 is SmolLM2-Instruct's ChatML with its default system prompt.
	StyleSmolLM2 = "smollm2"
	// StyleLlama3 is Llama-3(-Instruct): header blocks, no system block unless a system message is given.
	StyleLlama3 = "llama3"
	// StyleLlama31 is Llama-3.1(-Instruct): always a system block with "Cutting Knowledge Date".
	StyleLlama31 = "llama3.1"
	// StyleDeepSeekR1 is DeepSeek-R1 (and its Qwen/Llama distills): <｜User｜>/<｜Assistant｜>, "<think>\n" prompt.
	StyleDeepSeekR1 = "deepseek-r1"
)

// Styles lists the chat template styles RenderChat accepts.
func Styles() []string {
	return []string{StyleChatML, StyleQwen25, StyleSmolLM2, StyleLlama3, StyleLlama31, StyleDeepSeekR1}
}

// Default system prompts of the ChatML styles.
const (
	qwenDefaultSystem   = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
	smolDefaultSystem   = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
	llamaDefaultDate    = "26 Jul 2024"
	llamaBOS            = "<|begin_of_text|>"
	deepseekBOS         = "<｜begin▁of▁sentence｜>"
	deepseekEOS         = "<｜end▁of▁sentence｜>"
	deepseekUser        = "<｜User｜>"
	deepseekAssistant   = "<｜Assistant｜>"
	deepseekOutputsBeg  = "<｜tool▁outputs▁begin｜>"
	deepseekOutputsEnd  = "<｜tool▁outputs▁end｜>"
	deepseekOutputBeg   = "<｜tool▁output▁begin｜>"
	deepseekOutputEnd   = "<｜tool▁output▁end｜>"
	llamaHeader         = "<|start_header_id|>"
	llamaHeaderEnd      = "<|end_header_id|>\n\n"
	llamaEOT            = "<|eot_id|>"
	chatmlStart         = "<|im_start|>"
	chatmlEnd           = "<|im_end|>\n"
	llamaKnowledgeBlock = "Cutting Knowledge Date: December 2023\n"
)

// ChatOptions are the template variables RenderChat takes besides the messages.
type ChatOptions struct {
	// DateString is Llama-3.1's "Today Date" (default "26 Jul 2024", the template's own default).
	DateString string
	// DefaultSystem, when set, replaces the style's default system prompt for conversations without
	// a system message (ChatML styles; for plain ChatML it adds one).
	DefaultSystem string
	// NoThinking closes DeepSeek-R1's think block in the generation prompt ("<think>\n</think>"), as
	// templates with an enable_thinking switch do when it is off or undefined. By default the
	// generation prompt is the official "<｜Assistant｜><think>\n".
	NoThinking bool
}

// RenderChat renders msgs with a built-in chat template, byte for byte as transformers'
// apply_chat_template(tokenize=False) renders the model's own template (without tools).
// Roles are system, user, assistant and tool (Llama-3.x also accepts ipython).
func RenderChat(style string, msgs []llm.Message, addGenerationPrompt bool, opts ChatOptions) (string, error) {
	if len(msgs) == 0 {
		return "", fmt.Errorf("chat template %s: no messages", style)
	}
	switch style {
	case StyleChatML, StyleQwen25, StyleSmolLM2:
		return renderChatML(style, msgs, addGenerationPrompt, opts)
	case StyleLlama3, StyleLlama31:
		return renderLlama3(style, msgs, addGenerationPrompt, opts)
	case StyleDeepSeekR1:
		return renderDeepSeekR1(msgs, addGenerationPrompt, opts)
	}
	return "", fmt.Errorf("unknown chat template style %q (known: %s)", style, strings.Join(Styles(), ", "))
}

func checkRoles(style string, msgs []llm.Message, allowed ...string) error {
	for i, m := range msgs {
		ok := false
		for _, r := range allowed {
			ok = ok || m.Role == r
		}
		if !ok {
			return fmt.Errorf("chat template %s: message %d: unsupported role %q", style, i, m.Role)
		}
	}
	return nil
}

// renderChatML follows Qwen2.5's template (no tools), whose tool messages become a user turn of
// <tool_response> blocks; plain ChatML and SmolLM2 write every message, tool ones included, as
// <|im_start|>role\n...<|im_end|>\n, and differ from Qwen2.5 in the default system prompt.
func renderChatML(style string, msgs []llm.Message, gen bool, opts ChatOptions) (string, error) {
	if err := checkRoles(style, msgs, "system", "user", "assistant", "tool"); err != nil {
		return "", err
	}
	def := opts.DefaultSystem
	if def == "" {
		switch style {
		case StyleQwen25:
			def = qwenDefaultSystem
		case StyleSmolLM2:
			def = smolDefaultSystem
		}
	}
	var sb strings.Builder
	if msgs[0].Role == "system" {
		sb.WriteString(chatmlStart + "system\n" + msgs[0].Content + chatmlEnd)
	} else if def != "" {
		sb.WriteString(chatmlStart + "system\n" + def + chatmlEnd)
	}
	for i, m := range msgs {
		switch {
		case m.Role == "system" && i == 0:
			// already written
		case m.Role == "tool" && style == StyleQwen25:
			if i == 0 || msgs[i-1].Role != "tool" {
				sb.WriteString(chatmlStart + "user")
			}
			sb.WriteString("\n<tool_response>\n" + m.Content + "\n</tool_response>")
			if i == len(msgs)-1 || msgs[i+1].Role != "tool" {
				sb.WriteString(chatmlEnd)
			}
		default:
			sb.WriteString(chatmlStart + m.Role + "\n" + m.Content + chatmlEnd)
		}
	}
	if gen {
		sb.WriteString(chatmlStart + "assistant\n")
	}
	return sb.String(), nil
}

// renderLlama3 follows Meta's Llama-3 and Llama-3.1 templates (no tools).
func renderLlama3(style string, msgs []llm.Message, gen bool, opts ChatOptions) (string, error) {
	if err := checkRoles(style, msgs, "system", "user", "assistant", "tool", "ipython"); err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.WriteString(llamaBOS)
	if style == StyleLlama31 {
		system := ""
		if msgs[0].Role == "system" {
			system = pyStrip(msgs[0].Content)
			msgs = msgs[1:]
		}
		date := opts.DateString
		if date == "" {
			date = llamaDefaultDate
		}
		sb.WriteString(llamaHeader + "system" + llamaHeaderEnd + llamaKnowledgeBlock +
			"Today Date: " + date + "\n\n" + system + llamaEOT)
	}
	for _, m := range msgs {
		if style == StyleLlama31 && (m.Role == "tool" || m.Role == "ipython") {
			// The template writes tool output with tojson: a string becomes a JSON string literal.
			sb.WriteString(llamaHeader + "ipython" + llamaHeaderEnd + pyJSONString(m.Content) + llamaEOT)
			continue
		}
		sb.WriteString(llamaHeader + m.Role + llamaHeaderEnd + pyStrip(m.Content) + llamaEOT)
	}
	if gen {
		sb.WriteString(llamaHeader + "assistant" + llamaHeaderEnd)
	}
	return sb.String(), nil
}

// renderDeepSeekR1 follows DeepSeek-R1's template (no tool calls): the last system message goes
// right after BOS, earlier reasoning (up to the last "</think>") is dropped from assistant turns.
func renderDeepSeekR1(msgs []llm.Message, gen bool, opts ChatOptions) (string, error) {
	if err := checkRoles(StyleDeepSeekR1, msgs, "system", "user", "assistant", "tool"); err != nil {
		return "", err
	}
	system := ""
	for _, m := range msgs {
		if m.Role == "system" {
			system = m.Content
		}
	}
	var sb strings.Builder
	sb.WriteString(deepseekBOS + system)
	isTool, outputFirst := false, true
	for _, m := range msgs {
		switch m.Role {
		case "user":
			isTool = false
			sb.WriteString(deepseekUser + m.Content)
		case "assistant":
			if isTool {
				sb.WriteString(deepseekOutputsEnd + m.Content + deepseekEOS)
				isTool = false
				continue
			}
			content := m.Content
			if i := strings.LastIndex(content, "</think>"); i >= 0 {
				content = content[i+len("</think>"):]
			}
			sb.WriteString(deepseekAssistant + content + deepseekEOS)
		case "tool":
			isTool = true
			if outputFirst {
				sb.WriteString(deepseekOutputsBeg + deepseekOutputBeg + m.Content + deepseekOutputEnd)
				outputFirst = false
			} else {
				sb.WriteString("\n" + deepseekOutputBeg + m.Content + deepseekOutputEnd)
			}
		}
	}
	if isTool {
		sb.WriteString(deepseekOutputsEnd)
	}
	if gen && !isTool {
		sb.WriteString(deepseekAssistant + "<think>\n")
		if opts.NoThinking {
			sb.WriteString("</think>")
		}
	}
	return sb.String(), nil
}

// pyIsSpace is Python's str.isspace for one rune (what Jinja's trim strips).
func pyIsSpace(r rune) bool {
	switch {
	case r >= '\t' && r <= '\r', r >= 0x1C && r <= 0x20, r == 0x85, r == 0xA0, r == 0x1680,
		r >= 0x2000 && r <= 0x200A, r == 0x2028, r == 0x2029, r == 0x202F, r == 0x205F, r == 0x3000:
		return true
	}
	return false
}

// pyStrip is Python's str.strip() (Jinja's trim filter).
func pyStrip(s string) string { return strings.TrimFunc(s, pyIsSpace) }

// pyJSONString is json.dumps(s, ensure_ascii=False), the tojson filter transformers installs.
func pyJSONString(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			sb.WriteString(`\"`)
		case '\\':
			sb.WriteString(`\\`)
		case '\n':
			sb.WriteString(`\n`)
		case '\r':
			sb.WriteString(`\r`)
		case '\t':
			sb.WriteString(`\t`)
		case '\b':
			sb.WriteString(`\b`)
		case '\f':
			sb.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&sb, `\u%04x`, r)
			} else {
				sb.WriteRune(r)
			}
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

// DetectStyle picks the chat template style of a model from its tokenizer_config.json: first from
// the chat_template text, then from the special token names. It returns "" when nothing matches.
func DetectStyle(tokenizerConfigJSON []byte) string {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(tokenizerConfigJSON, &cfg); err != nil {
		return ""
	}
	tmpl := chatTemplateText(cfg["chat_template"])
	switch {
	case strings.Contains(tmpl, deepseekAssistant):
		return StyleDeepSeekR1
	case strings.Contains(tmpl, llamaHeader) && strings.Contains(tmpl, "Cutting Knowledge Date"):
		return StyleLlama31
	case strings.Contains(tmpl, llamaHeader):
		return StyleLlama3
	case strings.Contains(tmpl, chatmlStart) && strings.Contains(tmpl, "You are Qwen"):
		return StyleQwen25
	case strings.Contains(tmpl, chatmlStart) && strings.Contains(tmpl, "SmolLM"):
		return StyleSmolLM2
	case strings.Contains(tmpl, chatmlStart):
		return StyleChatML
	case tmpl != "":
		return ""
	}
	// No template: fall back on the token names.
	names := tokenNames(cfg)
	switch {
	case names[deepseekBOS] || names[deepseekAssistant]:
		return StyleDeepSeekR1
	case names[llamaHeader] || names[llamaEOT]:
		return StyleLlama3
	case names[chatmlStart]:
		return StyleChatML
	}
	return ""
}

// chatTemplateText returns chat_template as one string: the string itself, or the "default" entry
// of a list of named templates (else the first).
func chatTemplateText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if json.Unmarshal(raw, &named) != nil || len(named) == 0 {
		return ""
	}
	for _, n := range named {
		if n.Name == "default" {
			return n.Template
		}
	}
	return named[0].Template
}

// tokenNames collects the special token strings a tokenizer_config.json names (bos/eos/... fields
// and added_tokens_decoder contents).
func tokenNames(cfg map[string]json.RawMessage) map[string]bool {
	names := map[string]bool{}
	add := func(raw json.RawMessage) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			names[s] = true
			return
		}
		var obj struct {
			Content string `json:"content"`
		}
		if json.Unmarshal(raw, &obj) == nil && obj.Content != "" {
			names[obj.Content] = true
		}
	}
	for _, k := range []string{"bos_token", "eos_token", "pad_token", "unk_token"} {
		if raw, ok := cfg[k]; ok {
			add(raw)
		}
	}
	var decoder map[string]json.RawMessage
	if json.Unmarshal(cfg["added_tokens_decoder"], &decoder) == nil {
		for _, raw := range decoder {
			add(raw)
		}
	}
	var extra []json.RawMessage
	if json.Unmarshal(cfg["additional_special_tokens"], &extra) == nil {
		for _, raw := range extra {
			add(raw)
		}
	}
	return names
}
