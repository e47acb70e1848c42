// Package jinjatest compares renders of package jinja with golden renders by Python's Jinja2 (written by
// tools/chattemplates/render.py); the engine's and package chat's conformance tests share it.
package jinjatest

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/snapeval/snapeval/chat/jinja"
)

// Clock is the instant the golden renders' strftime_now reads (CLOCK in tools/chattemplates/render.py).
var Clock = time.Date(2024, 9, 5, 14, 7, 9, 0, time.Local)

// Golden is one render by Python's Jinja2: the output, or the exception it raised.
type Golden struct {
	Rendered  *string `json:"rendered"`
	Error     string  `json:"error"`
	ErrorType string  `json:"error_type"`
	ErrorLine int     `json:"error_line"`
}

// Check compares a render by package jinja with a golden one and describes the difference ("" if none).
// An engine error must be of the same kind as Jinja2's (a syntax error for TemplateSyntaxError, the
// same exception class otherwise); the message must match for the template's own raise_exception and for
// undefined and security errors, the line for syntax errors. An *jinja.UnsupportedError is always a
// difference: it names the construct the engine lacks.
func (g Golden) Check(got string, err error) string {
	var ue *jinja.UnsupportedError
	if errors.As(err, &ue) {
		return "this engine refuses the template: " + err.Error()
	}
	if g.Rendered != nil {
		if err != nil {
			return "Jinja2 renders, this engine fails: " + err.Error()
		}
		if got != *g.Rendered {
			return "renders differ:\n got  " + Quote(got) + "\n want " + Quote(*g.Rendered)
		}
		return ""
	}
	if err == nil {
		return "Jinja2 fails (" + g.ErrorType + ": " + g.Error + "), this engine renders " + Quote(got)
	}
	var se *jinja.SyntaxError
	var re *jinja.Error
	switch {
	case g.ErrorType == "TemplateSyntaxError" || g.ErrorType == "TemplateAssertionError" || g.ErrorType == "SyntaxError":
		if !errors.As(err, &se) {
			return "want a syntax error (" + g.Error + "), got " + err.Error()
		}
		if g.ErrorLine > 0 && se.Line != g.ErrorLine {
			return "syntax error on line " + strconv.Itoa(se.Line) + ", Jinja2 says line " + strconv.Itoa(g.ErrorLine) + ": " + err.Error()
		}
	case errors.As(err, &re):
		if re.Kind != g.ErrorType {
			return "want " + g.ErrorType + " (" + g.Error + "), got " + err.Error()
		}
		switch re.Kind {
		case jinja.KindRaise, "UndefinedError", "SecurityError":
			if re.Msg != g.Error {
				return "message differs:\n got  " + Quote(re.Msg) + "\n want " + Quote(g.Error)
			}
		}
	default:
		return "want " + g.ErrorType + " (" + g.Error + "), got " + err.Error()
	}
	return ""
}

// Quote writes s as a JSON string.
func Quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
