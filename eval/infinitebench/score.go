package infinitebench

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/snapeval/snapeval/internal/pytext"
)

// This file is src/compute_scores.py's get_score_one, task by task. Labels are what get_answer gives the scorer:
// the row's answer list (a string answer read as a one-element list), and [option, letter] for the
// multiple-choice tasks.

// firstIntMatch is first_int_match: the first non-empty piece of re.split("[^0-9]", pred) ("" if none).
func firstIntMatch(pred string) string {
	start := -1
	for i := 0; i < len(pred); i++ {
		d := pred[i] >= '0' && pred[i] <= '9'
		switch {
		case d && start < 0:
			start = i
		case !d && start >= 0:
			return pred[start:i]
		}
	}
	if start >= 0 {
		return pred[start:]
	}
	return ""
}

// replaceWithSpace replaces every character of chars in s with a space (str.replace, one by one).
func replaceWithSpace(s string, chars ...string) string {
	for _, c := range chars {
		s = strings.ReplaceAll(s, c, " ")
	}
	return s
}

// scorePasskey is get_score_one_passkey and get_score_one_number_string: label[0] == first_int_match(pred).
func scorePasskey(pred string, label []string) bool {
	return len(label) > 0 && label[0] == firstIntMatch(pred)
}

// scoreKVRetrieval is get_score_one_kv_retrieval: the label is one of the words of pred once \n : " ' . , ? ! { }
// are spaces.
func scoreKVRetrieval(pred, label string) bool {
	words := pytext.Split(replaceWithSpace(pred, "\n", ":", "\"", "'", ".", ",", "?", "!", "{", "}"))
	for _, w := range words {
		if w == label {
			return true
		}
	}
	return false
}

// scoreDialogue is get_score_one_longdialogue_qa_eng: label[0] is one of pred's upper-cased words (same
// separators as kv_retrieval).
func scoreDialogue(pred string, label []string) bool {
	if len(label) == 0 {
		return false
	}
	pred = pytext.Strip(pred)
	for _, w := range pytext.Split(replaceWithSpace(pred, "\n", ":", "\"", "'", ".", ",", "?", "!", "{", "}")) {
		if pytext.Upper(w) == label[0] {
			return true
		}
	}
	return false
}

// scoreChoice is get_score_one_longbook_choice_eng with label = [option text, letter].
func scoreChoice(pred string, label []string) bool {
	in := func(s string) bool {
		for _, l := range label {
			if s == l {
				return true
			}
		}
		return false
	}
	pred = pytext.Strip(pred)
	if pred == "" {
		return false
	}
	first, size := utf8.DecodeRuneInString(pred)
	if strings.ContainsRune("ABCD", first) {
		return in(pred[:size])
	}
	if in(pred) {
		return true
	}
	pred = replaceWithSpace(pred, "\n", "\"", "'", ".", ",", "?", "!", "{", "}")
	pred = collapseSpaces(pred)
	for _, prefix := range []string{"answer is:", "answer:", "answer is", "option is"} {
		idx := strings.Index(pred, prefix)
		if idx < 0 {
			continue
		}
		after, ok := afterPrefix(pred, idx+len(prefix))
		if !ok {
			return false
		}
		for _, s := range label {
			if strings.HasPrefix(after, s) {
				return true
			}
		}
		return false
	}
	for _, w := range pytext.Split(pred) {
		if strings.Contains("ABCD", w) { // Python's `word in "ABCD"` is a substring test
			return in(w)
		}
	}
	return false
}

// afterPrefix is pred[idx + len(prefix) + 1:] for a prefix ending at byte end: the text after the one
// character that follows the prefix; ok is false when nothing follows it (the scorers' "ends with this prefix").
func afterPrefix(pred string, end int) (string, bool) {
	if end >= len(pred) {
		return "", false
	}
	_, size := utf8.DecodeRuneInString(pred[end:])
	return pred[end+size:], true
}

// collapseSpaces is `while "  " in pred: pred = pred.replace("  ", " ")`.
func collapseSpaces(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}

// scoreCodeDebug is get_score_one_code_debug with label = [function name, letter].
func scoreCodeDebug(pred string, label []string) bool {
	if len(label) < 2 {
		return false
	}
	fn, letter := label[0], label[1]
	pred = pytext.Strip(pred)
	if head := firstRunes(pred, 2); head == letter+"." || head == letter+":" {
		return true
	}
	pred = pytext.Strip(pred)
	pred = replaceWithSpace(pred, "\n", "`", "'", "\"", "-", "*", "Option", "option")
	pred = collapseSpaces(pred)
	for _, prefix := range []string{"answer is:", "is:", "answer:", "correct option is:"} {
		idx := strings.Index(pred, prefix)
		if idx < 0 {
			continue
		}
		after, ok := afterPrefix(pred, idx+len(prefix))
		if !ok {
			return false
		}
		return strings.HasPrefix(after, letter) || strings.HasPrefix(after, fn)
	}
	return false
}

func firstRunes(s string, n int) string {
	i := 0
	for k := 0; k < n && i < len(s); k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}

// Number is a JSON number label with Python's int/float distinction (88 is an int, 88.0 a float).
type Number struct {
	Text    string
	IsFloat bool
}

var firstNumber = regexp.MustCompile(`\d+\.\d+|\d+`)

// scoreMathFind is get_score_one_math_find: the first number of pred (\d+\.\d+|\d+, Python's Unicode \d) equals
// label[0], compared as int for an int label and as float for a float label. Where the official scorer raises
// (int() of a decimal like "3.5" against an int label), the output scores 0.
func scoreMathFind(pred string, label []Number) bool {
	if len(label) == 0 {
		return false
	}
	m := findPyNumber(pred)
	if m == "" {
		return false
	}
	want := label[0]
	if want.IsFloat {
		got, err := strconv.ParseFloat(pytext.ASCIIDigits(m), 64)
		w, err2 := strconv.ParseFloat(want.Text, 64)
		return err == nil && err2 == nil && got == w
	}
	got, ok := pyInt(m)
	return ok && got == strings.TrimLeft(want.Text, "+")
}

// findPyNumber is re.search(r"\d+\.\d+|\d+", pred) with Python's Unicode \d.
func findPyNumber(s string) string {
	isD := func(r rune) bool { return unicode.IsDigit(r) }
	for i, r := range s {
		if !isD(r) {
			continue
		}
		j := i
		for j < len(s) {
			r2, size := utf8.DecodeRuneInString(s[j:])
			if !isD(r2) {
				break
			}
			j += size
		}
		if j < len(s) && s[j] == '.' {
			k := j + 1
			for k < len(s) {
				r2, size := utf8.DecodeRuneInString(s[k:])
				if !isD(r2) {
					break
				}
				k += size
			}
			if k > j+1 {
				return s[i:k]
			}
		}
		return s[i:j]
	}
	return ""
}

// pyInt is Python's int(s) for a decimal string: surrounding whitespace, an optional sign, digits (any Unicode
// decimal digit) with single underscores between them. It returns the canonical decimal ("-5", "12") and false
// where int() raises.
func pyInt(s string) (string, bool) {
	s = pytext.ASCIIDigits(pytext.Strip(s))
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return "", false
	}
	s = strings.ReplaceAll(s, "_", "")
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	s = strings.TrimLeft(s, "0")
	if s == "" {
		return "0", true
	}
	if neg {
		s = "-" + s
	}
	return s, true
}

// scoreCodeRun is get_score_one_code_run: the last word of pred (after \n . ` ' " : become spaces), read with
// int(), equals label[0].
func scoreCodeRun(pred string, label []Number) bool {
	if len(label) == 0 || label[0].IsFloat {
		return false
	}
	words := pytext.Split(replaceWithSpace(pytext.Strip(pred), "\n", ".", "`", "'", "\"", ":"))
	if len(words) == 0 {
		return false
	}
	got, ok := pyInt(words[len(words)-1])
	want, _ := pyInt(label[0].Text)
	return ok && got == want
}

// qaF1 is compute_scores.py's qa_f1_score: the best token F1 over the labels after normalize_answer.
func qaF1(pred string, labels []string) float64 {
	best := 0.0
	p := pytext.Split(pytext.NormalizeAnswer(pred))
	for _, l := range labels {
		best = math.Max(best, pytext.F1(p, pytext.Split(pytext.NormalizeAnswer(l))))
	}
	return best
}

// qaF1Zh is qa_f1_score_zh: the best character F1 over the labels after normalize_zh_answer.
func qaF1Zh(pred string, labels []string) float64 {
	best := 0.0
	p := strings.Split(pytext.NormalizeZhAnswer(pred), "")
	for _, l := range labels {
		best = math.Max(best, pytext.F1(p, strings.Split(pytext.NormalizeZhAnswer(l), "")))
	}
	return best
}
