package jinja

import "fmt"

// Error is an error raised while rendering. Kind names the Python exception transformers' Jinja2 raises in
// the same place: TemplateError for the template's own raise_exception(message), UndefinedError,
// TypeError, ValueError, SecurityError, ZeroDivisionError, ...
type Error struct {
	Kind string
	Msg  string
	// Line is the template line being rendered (0 when unknown).
	Line int
}

// KindRaise is the Kind of an error the template raised itself with raise_exception.
const KindRaise = "TemplateError"

func (e *Error) Error() string {
	if e.Kind == KindRaise {
		if e.Line > 0 {
			return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
		}
		return e.Msg
	}
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Kind, e.Msg)
	}
	return e.Kind + ": " + e.Msg
}

// Raised reports whether the template raised e itself (raise_exception); Msg is then its message.
func (e *Error) Raised() bool { return e.Kind == KindRaise }

// SyntaxError is a template that does not parse (Jinja2's TemplateSyntaxError).
type SyntaxError struct {
	// Name names the template (a file name, or "chat_template").
	Name      string
	Line, Col int
	Msg       string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s:%d:%d: template syntax error: %s", e.Name, e.Line, e.Col, e.Msg)
}

// UnsupportedError is a template that uses a Jinja construct this engine does not implement (Jinja2 would
// render it). Construct names it: "{% include %}", "filter urlize", ...
type UnsupportedError struct {
	Name      string
	Line, Col int
	Construct string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("%s:%d:%d: unsupported Jinja construct: %s", e.Name, e.Line, e.Col, e.Construct)
}

func typeErrorf(format string, args ...any) error {
	return &Error{Kind: "TypeError", Msg: fmt.Sprintf(format, args...)}
}

func valueErrorf(format string, args ...any) error {
	return &Error{Kind: "ValueError", Msg: fmt.Sprintf(format, args...)}
}

func errorf(kind, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}
