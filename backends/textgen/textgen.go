// Package textgen is the text side of generation that snapeval's local backends (cpu, torch) share, so that every
// engine sees the same prompt token ids and ends generation the same way: a checkpoint's tokenizer, EOS ids and chat
// template (Load, with ChatOptions), the request-to-prompt rendering (Text.Render) and the watcher that ends
// generation at the first stop string and trims it (Stopper).
package textgen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
	"github.com/snapeval/snapeval/chat"
	"github.com/snapeval/snapeval/chat/jinja"
	"github.com/snapeval/snapeval/llm"
)

// ChatOptions choose the chat template and its variables. By default the model's own template renders
// chat messages (chat_template.jinja, or tokenizer_config.json's chat_template: see package chat).
type ChatOptions struct {
	// Style replaces the model's template with a built-in one (chat.Styles).
	Style string
	// File replaces the model's template with a Jinja file.
	File string
	// Name picks one of the model's named templates ("" picks "default").
	Name string
	// Vars are extra template variables (enable_thinking, date_string, ...).
	Vars map[string]any
	// Now is strftime_now's clock; zero means the time the backend was opened, fixed for its life.
	Now time.Time
}

// ChatOptionKeys names the backend options ParseChatOption reads.
const ChatOptionKeys = "chat_style, chat_template, chat_template_name, chat_var.NAME, chat_now"

// ParseChatOption reads one backend option of the chat template into o: chat_style (a built-in template),
// chat_template (a Jinja file), chat_template_name (a named template of the model), chat_var.NAME (a template
// variable: JSON when the value parses as JSON, else the text) and chat_now (strftime_now's clock, RFC 3339 or
// YYYY-MM-DD). It returns false when k is not one of them.
func ParseChatOption(o *ChatOptions, k, v string) (bool, error) {
	if name, ok := strings.CutPrefix(k, "chat_var."); ok {
		if name == "" {
			return true, fmt.Errorf("option %s: a variable name is needed after chat_var.", k)
		}
		if o.Vars == nil {
			o.Vars = map[string]any{}
		}
		o.Vars[name] = chat.ParseVar(v)
		return true, nil
	}
	switch k {
	case "chat_style":
		o.Style = v
	case "chat_template":
		o.File = v
	case "chat_template_name":
		o.Name = v
	case "chat_now":
		t, err := parseNow(v)
		if err != nil {
			return true, fmt.Errorf("option %s=%q: %w", k, v, err)
		}
		o.Now = t
	default:
		return false, nil
	}
	return true, nil
}

// parseNow reads a chat_now clock: RFC 3339, or a date (midnight, local time).
func parseNow(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02", v, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("want RFC 3339 (2024-07-26T10:00:00Z) or a date (2024-07-26)")
	}
	return t, nil
}

// Text is a checkpoint's tokenizer, EOS ids and chat template.
type Text struct {
	Tok *tokenizer.Tokenizer
	// TokJSON is the tokenizer.json Tok was parsed from.
	TokJSON []byte
	// EOS are generation_config.json's eos_token_id, else config.json's.
	EOS []int
	// Name names the model in errors; Backend names the backend ("cpu backend").
	Name, Backend string
	chat          *chat.Template // nil when chat messages cannot be rendered (chatErr says why)
	chatErr       error
	chatVars      map[string]any
}

// Load reads config.json and generation_config.json (EOS), tokenizer.json and tokenizer_config.json, and the chat
// template o chooses, from directory dir of fsys; display is dir as errors name it.
func Load(fsys fs.FS, dir, display, name string, o ChatOptions, backend string) (*Text, error) {
	read := func(file string) ([]byte, error) { return fs.ReadFile(fsys, path.Join(dir, file)) }
	where := func(file string) string { return filepath.Join(display, file) }
	cfg, err := read("config.json")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", backend, err)
	}
	c, err := model.ParseGenerationConfig(where("config.json"), cfg)
	if err != nil {
		return nil, err
	}
	eos := c.EOS
	if b, err := read("generation_config.json"); err == nil {
		g, err := model.ParseGenerationConfig(where("generation_config.json"), b)
		if err != nil {
			return nil, err
		}
		if len(g.EOS) > 0 {
			eos = g.EOS
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	tokBytes, err := read("tokenizer.json")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", backend, err)
	}
	tok, err := tokenizer.Parse(tokBytes, where("tokenizer.json"))
	if err != nil {
		return nil, err
	}
	if b, err := read(tokenizer.ConfigFile); err == nil {
		if tok, err = tok.WithConfig(b, where(tokenizer.ConfigFile)); err != nil {
			return nil, err
		}
	}
	tmpl, chatErr := loadChatTemplate(fsys, dir, display, o)
	if chatErr != nil && (o.Style != "" || o.File != "") {
		return nil, fmt.Errorf("%s: %w", backend, chatErr)
	}
	if tmpl != nil {
		now := o.Now
		if now.IsZero() {
			now = time.Now()
		}
		tmpl.Now = func() time.Time { return now }
	}
	return &Text{Tok: tok, TokJSON: tokBytes, EOS: eos, Name: name, Backend: backend, chat: tmpl, chatErr: chatErr,
		chatVars: o.Vars}, nil
}

// loadChatTemplate finds the template that renders chat messages: a built-in style or a Jinja file when
// the options name one (an error is then fatal), else the model's own. A model without one, or with one
// this engine cannot render, still serves raw prompts: the error says why chat messages are refused.
func loadChatTemplate(fsys fs.FS, dir, display string, o ChatOptions) (*chat.Template, error) {
	switch {
	case o.Style != "" && o.File != "":
		return nil, errors.New("options chat_style and chat_template exclude each other")
	case o.Style != "":
		var tokens map[string]any
		if b, err := fs.ReadFile(fsys, path.Join(dir, "tokenizer_config.json")); err == nil {
			tokens, _ = chat.SpecialTokens(b, "tokenizer_config.json")
		}
		return chat.Builtin(o.Style, tokens)
	case o.File != "":
		text, err := os.ReadFile(o.File)
		if err != nil {
			return nil, fmt.Errorf("option chat_template: %w", err)
		}
		var tokens map[string]any
		if b, err := fs.ReadFile(fsys, path.Join(dir, "tokenizer_config.json")); err == nil {
			if tokens, err = chat.SpecialTokens(b, filepath.Join(display, "tokenizer_config.json")); err != nil {
				return nil, err
			}
		}
		return chat.New(o.File, string(text), tokens)
	}
	return chat.Load(fsys, dir, chat.Choice{Name: o.Name})
}

// ChatTemplate describes the template that renders chat messages (for the manifest), or says why there is none
// (chat.ErrNoTemplate when the model has no template; a parse or unsupported-construct error when this engine
// cannot render it).
func (t *Text) ChatTemplate() (llm.ChatTemplateInfo, error) {
	if t.chat == nil {
		return llm.ChatTemplateInfo{}, fmt.Errorf("model %s: %w", t.Name, t.chatErr)
	}
	info := llm.ChatTemplateInfo{Source: t.chat.Source, SHA256: t.chat.SHA256}
	if len(t.chatVars) > 0 {
		info.Vars = map[string]any{}
		for k, v := range t.chatVars {
			info.Vars[k] = jinja.ToGo(v)
		}
	}
	if t.chat.Uses("strftime_now") {
		info.Now = t.chat.Now().Format(time.RFC3339)
	}
	return info, nil
}

// RenderChat renders chat messages into the prompt text, with the generation prompt, as transformers'
// apply_chat_template(messages, add_generation_prompt=True, tokenize=False) does with the same template
// and variables.
func (t *Text) RenderChat(msgs []llm.Message) (string, error) {
	text, err := t.renderChat(msgs)
	if err != nil {
		return "", fmt.Errorf("%s: model %s: %w", t.Backend, t.Name, err)
	}
	return text, nil
}

func (t *Text) renderChat(msgs []llm.Message) (string, error) {
	if t.chat == nil {
		return "", fmt.Errorf("chat messages need a chat template: %w (set option chat_style or chat_template)", t.chatErr)
	}
	return t.chat.Render(chat.Conversation{Messages: chat.Messages(msgs), AddGenerationPrompt: true, Vars: t.chatVars})
}

// EncodePrompt tokenizes a request's prompt as Render does.
func (t *Text) EncodePrompt(req llm.Request) ([]int, error) {
	_, ids, err := t.Render(req)
	return ids, err
}

// Render returns what the model is fed for req: Messages rendered with the model's chat template (its special
// tokens written in the text) and encoded, or the raw Prompt with the tokenizer's post-processor tokens (BOS for
// llama) as transformers' encode(add_special_tokens=True) adds them. Errors wrap llm.ErrBadRequest.
func (t *Text) Render(req llm.Request) (string, []int, error) {
	switch {
	case len(req.Messages) > 0 && req.Prompt != "":
		return "", nil, badRequest{fmt.Errorf("%s: request %s sets both messages and prompt", t.Backend, req.Key)}
	case len(req.Messages) > 0:
		text, err := t.renderChat(req.Messages)
		if err != nil {
			return "", nil, badRequest{fmt.Errorf("%s: model %s: request %s: %w", t.Backend, t.Name, req.Key, err)}
		}
		return text, t.Tok.Encode(text), nil
	case req.Prompt != "":
		return req.Prompt, t.Tok.EncodeWithSpecial(req.Prompt), nil
	}
	return "", nil, badRequest{fmt.Errorf("%s: request %s has neither messages nor prompt", t.Backend, req.Key)}
}

// badRequest marks a request the model cannot be fed as the caller's mistake (llm.ErrBadRequest: a server
// answers 400), keeping the error's text.
type badRequest struct{ error }

func (e badRequest) Is(target error) bool { return target == llm.ErrBadRequest }
func (e badRequest) Unwrap() error        { return e.error }

// Stopper accumulates the decoded text of one sequence and ends generation at the first stop string, which is
// trimmed from the output (as OpenAI-compatible servers do). It is not safe for concurrent use.
type Stopper struct {
	dec   *tokenizer.StreamDecoder
	stops []string
	buf   strings.Builder
	cut   int // -1 until a stop string is found
}

// NewStopper watches for stops (empty strings are ignored); special tokens are left out of the text.
func NewStopper(tok *tokenizer.Tokenizer, stops []string) *Stopper {
	d := tok.NewStreamDecoder()
	d.SkipSpecial = true
	s := &Stopper{dec: d, cut: -1}
	for _, x := range stops {
		if x != "" {
			s.stops = append(s.stops, x)
		}
	}
	return s
}

// Add appends a generated token; it returns true when a stop string has ended the text.
func (s *Stopper) Add(tok int) bool {
	delta := s.dec.Add(tok)
	if delta == "" || len(s.stops) == 0 {
		s.buf.WriteString(delta)
		return false
	}
	old := s.buf.Len()
	s.buf.WriteString(delta)
	return s.search(old)
}

// search looks for a stop string ending in the text added after offset old.
func (s *Stopper) search(old int) bool {
	text := s.buf.String()
	best := -1
	for _, x := range s.stops {
		from := max(0, old-len(x)+1)
		if i := strings.Index(text[from:], x); i >= 0 && (best < 0 || from+i < best) {
			best = from + i
		}
	}
	if best >= 0 {
		s.cut = best
		return true
	}
	return false
}

// Stopped reports whether a stop string ended the text (so far, or in Text's final flush).
func (s *Stopper) Stopped() bool { return s.cut >= 0 }

// Text returns the generated text up to the first stop string, flushing bytes held for an incomplete character.
func (s *Stopper) Text() string {
	if s.cut >= 0 {
		return s.buf.String()[:s.cut]
	}
	old := s.buf.Len()
	s.buf.WriteString(s.dec.Flush())
	if len(s.stops) > 0 && s.search(old) {
		return s.buf.String()[:s.cut]
	}
	return s.buf.String()
}
