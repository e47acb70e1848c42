package llm

import (
	"errors"
	"math"
	"testing"
)

func TestSamplingValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     Sampling
		field string // "" when valid
	}{
		{"zero value", Sampling{}, ""},
		{"limits", Sampling{Temperature: 2, TopP: 1, TopK: 5, MaxNew: 9}, ""},
		{"negative temperature", Sampling{Temperature: -1}, "temperature"},
		{"temperature above 2", Sampling{Temperature: 2.5}, "temperature"},
		{"NaN temperature", Sampling{Temperature: math.NaN()}, "temperature"},
		{"top_p above 1", Sampling{TopP: 5}, "top_p"},
		{"negative top_p", Sampling{TopP: -0.1}, "top_p"},
		{"NaN top_p", Sampling{TopP: math.NaN()}, "top_p"},
		{"negative top_k", Sampling{TopK: -1}, "top_k"},
		{"negative max_new", Sampling{MaxNew: -1}, "max_new"},
	} {
		err := tc.s.Validate()
		var fe *FieldError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("%s: %v, want a FieldError on %s", tc.name, err, tc.field)
		}
	}
}
