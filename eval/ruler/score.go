package ruler

import (
	"strings"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/internal/pytext"
)

// Postprocess is evaluate.py's postprocess_pred: strip, turn every control character U+0000..U+001F into a
// newline, strip again.
func Postprocess(pred string) string {
	pred = pyStrip(pred)
	pred = strings.Map(func(r rune) rune {
		if r <= 0x1f {
			return '\n'
		}
		return r
	}, pred)
	return pyStrip(pred)
}

// StringMatchAll is one sample's string_match_all: the share of references found in the prediction,
// case-insensitively, as substrings.
func StringMatchAll(pred string, refs []string) float64 {
	if len(refs) == 0 {
		return 0
	}
	p := pytext.Lower(pred)
	n := 0
	for _, r := range refs {
		if strings.Contains(p, pytext.Lower(r)) {
			n++
		}
	}
	return float64(n) / float64(len(refs))
}

// StringMatchPart is one sample's string_match_part: 1 when any reference is found in the prediction
// (case-insensitively, as a substring), else 0.
func StringMatchPart(pred string, refs []string) float64 {
	p := pytext.Lower(pred)
	for _, r := range refs {
		if strings.Contains(p, pytext.Lower(r)) {
			return 1
		}
	}
	return 0
}

// Verdicts.
const (
	VerdictPass     = "pass"
	VerdictPartial  = "partial"
	VerdictWrong    = "wrong_answer"
	VerdictNoAnswer = "no_answer"
)

// Score grades one output of a task as RULER's evaluate.py does (postprocess_pred, then the task family's
// metric); the score is the per-sample value RULER averages (x100 only in aggregates).
func Score(f Family, output string, refs []string) eval.Grade {
	pred := Postprocess(output)
	var s float64
	if families[f].MatchAll {
		s = StringMatchAll(pred, refs)
	} else {
		s = StringMatchPart(pred, refs)
	}
	g := eval.Grade{Extracted: pred, Score: s, Correct: s == 1}
	switch {
	case g.Correct:
		g.Verdict = VerdictPass
	case pred == "":
		g.Verdict = VerdictNoAnswer
	case s > 0:
		g.Verdict = VerdictPartial
	default:
		g.Verdict = VerdictWrong
	}
	if !g.Correct {
		g.Detail = "expected " + strings.Join(refs, " | ")
	}
	return g
}
