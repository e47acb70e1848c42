package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/snapeval/snapeval/llm"
)

// requestError is a client mistake, answered with 400 and an OpenAI-style error body naming the field.
type requestError struct {
	param string
	msg   string
}

func (e *requestError) Error() string {
	if e.param == "" {
		return e.msg
	}
	return e.param + ": " + e.msg
}

func badf(param, format string, args ...any) error {
	return &requestError{param: param, msg: fmt.Sprintf(format, args...)}
}

// wireRequest is the body of /v1/chat/completions and /v1/completions. Fields snapeval cannot honour are
// rejected when set to a non-default value; other unknown fields are ignored, as OpenAI-compatible servers do.
type wireRequest struct {
	Model               string          `json:"model"`
	Messages            []wireMessage   `json:"messages"`
	Prompt              json.RawMessage `json:"prompt"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	TopK                *int            `json:"top_k"`
	Stop                json.RawMessage `json:"stop"`
	Seed                *int64          `json:"seed"`
	N                   *int            `json:"n"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	// Policy is the snapeval extension choosing the cache policy of this request.
	Policy string `json:"snapeval_policy"`
}

// wireMessage accepts content as a string or as an array of {"type":"text","text":...} parts.
type wireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

func (m wireMessage) text(i int) (string, error) {
	var s string
	if err := json.Unmarshal(m.Content, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return "", badf(fmt.Sprintf("messages[%d].content", i), "want a string or an array of text parts")
	}
	var b strings.Builder
	for j, p := range parts {
		if p.Type != "text" {
			return "", badf(fmt.Sprintf("messages[%d].content[%d].type", i, j), "only text parts are supported, got %q", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// toRequest validates w and converts it to an llm.Request (without Key and Policy). chat selects messages
// (true) or prompt (false); maxNewDefault fills a missing max_tokens.
func (w *wireRequest) toRequest(chat bool, maxNewDefault int) (llm.Request, error) {
	var req llm.Request
	if chat {
		if len(w.Prompt) > 0 {
			return req, badf("prompt", "not allowed in a chat completion; send messages")
		}
		if len(w.Messages) == 0 {
			return req, badf("messages", "at least one message is required")
		}
		for i, m := range w.Messages {
			role := m.Role
			switch role {
			case "system", "user", "assistant":
			case "developer":
				role = "system"
			default:
				return req, badf(fmt.Sprintf("messages[%d].role", i), "want system, user or assistant, got %q", m.Role)
			}
			text, err := m.text(i)
			if err != nil {
				return req, err
			}
			req.Messages = append(req.Messages, llm.Message{Role: role, Content: text})
		}
	} else {
		if len(w.Messages) > 0 {
			return req, badf("messages", "not allowed in a text completion; send prompt")
		}
		var p string
		if err := json.Unmarshal(w.Prompt, &p); err != nil {
			var ps []string
			if err := json.Unmarshal(w.Prompt, &ps); err != nil || len(ps) != 1 {
				return req, badf("prompt", "want a string (or an array of exactly one string)")
			}
			p = ps[0]
		}
		if p == "" {
			return req, badf("prompt", "must not be empty")
		}
		req.Prompt = p
	}
	s := llm.Sampling{Temperature: 1, MaxNew: maxNewDefault}
	switch {
	case w.MaxCompletionTokens != nil:
		s.MaxNew = *w.MaxCompletionTokens
		if s.MaxNew <= 0 {
			return req, badf("max_completion_tokens", "must be positive")
		}
	case w.MaxTokens != nil:
		s.MaxNew = *w.MaxTokens
		if s.MaxNew <= 0 {
			return req, badf("max_tokens", "must be positive")
		}
	}
	if w.Temperature != nil {
		s.Temperature = *w.Temperature
	}
	if w.TopP != nil {
		if *w.TopP == 0 {
			return req, badf("top_p", "0: want a number in (0, 1]")
		}
		s.TopP = *w.TopP
	}
	if w.TopK != nil {
		if *w.TopK < -1 {
			return req, badf("top_k", "must be -1, 0 (disabled) or positive")
		}
		s.TopK = max(*w.TopK, 0)
	}
	if err := s.Validate(); err != nil { // the ranges `snapeval run` checks too
		var fe *llm.FieldError
		if !errors.As(err, &fe) {
			return req, badf("", "%v", err)
		}
		return req, badf(fe.Field, "%v: want %s", fe.Value, fe.Want)
	}
	if w.Seed != nil {
		s.Seed = uint64(*w.Seed)
	}
	if len(w.Stop) > 0 && string(w.Stop) != "null" {
		var one string
		if err := json.Unmarshal(w.Stop, &one); err == nil {
			s.Stop = []string{one}
		} else if err := json.Unmarshal(w.Stop, &s.Stop); err != nil {
			return req, badf("stop", "want a string or an array of strings")
		}
		if len(s.Stop) > 4 {
			return req, badf("stop", "at most 4 stop sequences")
		}
		for i, st := range s.Stop {
			if st == "" {
				return req, badf(fmt.Sprintf("stop[%d]", i), "must not be empty")
			}
		}
	}
	if w.N != nil && *w.N != 1 {
		return req, badf("n", "only n=1 is supported")
	}
	req.Sampling = s
	return req, nil
}
