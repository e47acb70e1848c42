package jinja_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapeval/snapeval/chat/jinja"
)

// FuzzParse parses and renders arbitrary templates (chat templates are outside input): no panic, no
// runaway, and every failure is one of the engine's error types with a position in the template.
func FuzzParse(f *testing.F) {
	var snippets []struct {
		Template string `json:"template"`
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "snippets.json")); err == nil {
		json.Unmarshal(b, &snippets)
	}
	for _, s := range snippets {
		f.Add(s.Template)
	}
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "templates", "*.jinja"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}")
	f.Add("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}")
	f.Add("{{ 'x' * 100000000 }}")
	msg := jinja.NewDict()
	msg.Set("role", "user")
	msg.Set("content", "hi")
	vars := map[string]any{"messages": []any{msg}, "add_generation_prompt": true, "bos_token": "<s>"}
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := jinja.Parse("fuzz", src)
		if err != nil {
			var se *jinja.SyntaxError
			var ue *jinja.UnsupportedError
			switch {
			case errors.As(err, &se):
				if se.Line < 1 || se.Col < 1 {
					t.Fatalf("syntax error without a position: %v", err)
				}
			case errors.As(err, &ue):
				if ue.Line < 1 || ue.Construct == "" {
					t.Fatalf("unsupported error without a position or construct: %v", err)
				}
			default:
				t.Fatalf("parse error of type %T: %v", err, err)
			}
			return
		}
		out, err := tmpl.Render(vars, jinja.Options{Now: func() time.Time { return time.Unix(0, 0) }, MaxOutput: 1 << 16, MaxSteps: 20000})
		if err != nil {
			var re *jinja.Error
			if !errors.As(err, &re) || re.Kind == "" {
				t.Fatalf("render error of type %T: %v", err, err)
			}
			return
		}
		if len(out) > 1<<16 {
			t.Fatalf("output of %d bytes passed the budget", len(out))
		}
	})
}
