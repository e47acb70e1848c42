package synthetic

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/snapeval/snapeval/eval"
)

// Verdicts of Score.
const (
	VerdictPass     = "pass"
	VerdictPartial  = "partial"
	VerdictWrong    = "wrong_answer"
	VerdictNoAnswer = "no_answer"
)

// Score grades an output against the expected values as RULER's string_match_all does, with one tightening:
// a value counts as found when it occurs in the output case-insensitively and is not glued to a letter or digit
// on either side (so "12345" is not found inside "123456"). Score is the recall of the values, Correct is true when
// all are found, and Extracted lists the found values in expected order, joined by ", ".
func Score(answers []string, output string) eval.Grade {
	low := strings.ToLower(output)
	var found []string
	for _, a := range answers {
		if a != "" && containsWord(low, strings.ToLower(a)) {
			found = append(found, a)
		}
	}
	g := eval.Grade{Extracted: strings.Join(found, ", ")}
	if len(answers) > 0 {
		g.Score = float64(len(found)) / float64(len(answers))
	}
	g.Correct = len(answers) > 0 && len(found) == len(answers)
	switch {
	case g.Correct:
		g.Verdict = VerdictPass
	case strings.TrimSpace(output) == "":
		g.Verdict = VerdictNoAnswer
	case len(found) > 0:
		g.Verdict = VerdictPartial
	default:
		g.Verdict = VerdictWrong
	}
	if !g.Correct {
		g.Detail = "expected " + strings.Join(answers, ", ")
	}
	return g
}

// containsWord reports whether needle occurs in s with no letter or digit right before or after it.
func containsWord(s, needle string) bool {
	for off := 0; off <= len(s)-len(needle); {
		i := strings.Index(s[off:], needle)
		if i < 0 {
			return false
		}
		start, end := off+i, off+i+len(needle)
		before, _ := utf8.DecodeLastRuneInString(s[:start])
		after, _ := utf8.DecodeRuneInString(s[end:])
		if (start == 0 || !isAlnum(before)) && (end == len(s) || !isAlnum(after)) {
			return true
		}
		_, size := utf8.DecodeRuneInString(s[start:])
		off = start + size
	}
	return false
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
