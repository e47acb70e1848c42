package jinja_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/chat/jinja"
)

// TestUnsupported checks that the Jinja2 constructs this engine does not implement refuse the template at
// parse time with an error naming the construct and its position (Jinja2 would render them).
func TestUnsupported(t *testing.T) {
	tests := []struct{ template, construct, pos string }{
		{"{% include 'x.jinja' %}", "{% include %}", ":1:4:"},
		{"a\n{% extends 'base' %}", "{% extends %}", ":2:4:"},
		{"{% import 'm' as m %}", "{% import %}", ":1:4:"},
		{"{% from 'm' import x %}", "{% from %}", ":1:4:"},
		{"{% block b %}{% endblock %}", "{% block %}", ":1:4:"},
		{"{% autoescape true %}{% endautoescape %}", "{% autoescape %}", ":1:4:"},
		{"{% for x in y recursive %}{% endfor %}", "recursive for loops", ":1:15:"},
		{"{{ f(*args) }}", "*args and **kwargs in calls", ":1:6:"},
		{"{{ f(**kw) }}", "*args and **kwargs in calls", ":1:6:"},
		{"{{ xs|groupby('a') }}", "filter groupby", ":1:7:"},
		{"{% if x %}{{ s|wordwrap(10) }}{% endif %}", "filter wordwrap", ":1:16:"},
		{"{{ d|xmlattr }}", "filter xmlattr", ":1:6:"},
		{"{{ 1|random }}", "filter random", ":1:6:"},
		{"{{ '\\N{EM DASH}' }}", `\N{...} escapes in string literals`, ":1:4:"},
		{"{{ lipsum(2) }}", "the global lipsum (random text)", ":1:4:"},
	}
	for _, tc := range tests {
		_, err := jinja.Parse("t.jinja", tc.template)
		var ue *jinja.UnsupportedError
		if !errors.As(err, &ue) || ue.Construct != tc.construct || !strings.Contains(err.Error(), "t.jinja"+tc.pos) {
			t.Errorf("%q: error %v, want the unsupported construct %q at %s", tc.template, err, tc.construct, tc.pos)
		}
	}
}

// TestRenderLimits checks the bounds a template (outside input) cannot pass: output size, loop iterations and
// macro calls, recursion depth, integer range.
func TestRenderLimits(t *testing.T) {
	tests := []struct{ template, kind string }{
		{"{{ 'x' * 100 }}{{ 'y' * 100 }}", "MemoryError"},
		{"{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}", "TemplateRuntimeError"},
		{"{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "RecursionError"},
		{"{{ 2 ** 64 }}", "OverflowError"},
		{"{{ range(100001) }}", "OverflowError"},
	}
	for _, tc := range tests {
		tmpl, err := jinja.Parse("t", tc.template)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tmpl.Render(nil, jinja.Options{MaxOutput: 150, MaxSteps: 5000})
		var je *jinja.Error
		if !errors.As(err, &je) || je.Kind != tc.kind {
			t.Errorf("%q: error %v, want %s", tc.template, err, tc.kind)
		}
	}
}
