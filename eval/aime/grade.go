package aime

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/snapeval/snapeval/eval"
)

// Grading modes. ModeDefault is the protocol of docs/benchmarks.md §3; the others are named so that reports can say
// which grader produced a number.
const (
	// ModeDefault: last \boxed{}/\fbox{} with balanced braces, normalised, integer compare (leading zeros ignored).
	ModeDefault = "default"
	// ModeQwen adds Qwen2.5-Math's percentage rule: a numeric answer equal to gold, gold/100 or gold*100 (relative
	// tolerance 1e-4) is accepted, so 2.04 and 20400 pass for gold 204.
	ModeQwen = "qwen"
	// ModeLenient falls back, when there is no box, to "the answer is X" and then to the last number of the output.
	ModeLenient = "lenient"
)

// Verdicts.
const (
	VerdictCorrect  = "correct"
	VerdictWrong    = "wrong_answer"
	VerdictNoAnswer = "no_answer"
)

// Grader grades AIME outputs in one mode.
type Grader struct{ Mode string }

// NewGrader checks the mode name.
func NewGrader(mode string) (Grader, error) {
	switch mode {
	case "", ModeDefault:
		return Grader{Mode: ModeDefault}, nil
	case ModeQwen, ModeLenient:
		return Grader{Mode: mode}, nil
	}
	return Grader{}, fmt.Errorf("aime: unknown grader mode %q (known: default, qwen, lenient)", mode)
}

// LastBoxed returns the content of the last \boxed{...} or \fbox{...} whose braces balance (nested braces kept),
// and whether one was found. A box cut off by a truncated output is skipped in favour of an earlier complete one.
func LastBoxed(s string) (string, bool) {
	type hit struct{ at, open int }
	var hits []hit
	for _, cmd := range []string{`\boxed`, `\fbox`} {
		for i := 0; ; {
			j := strings.Index(s[i:], cmd)
			if j < 0 {
				break
			}
			at := i + j
			k := at + len(cmd)
			for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
				k++
			}
			if k < len(s) && s[k] == '{' {
				hits = append(hits, hit{at, k})
			}
			i = at + len(cmd)
		}
	}
	best := -1
	content := ""
	for _, h := range hits {
		if h.at <= best {
			continue
		}
		if c, ok := braced(s, h.open); ok {
			best, content = h.at, c
		}
	}
	return content, best >= 0
}

// braced returns the text inside the balanced braces opening at s[open] == '{'.
func braced(s string, open int) (string, bool) {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // skip escaped characters such as \{ and \}
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return s[open+1 : i], true
			}
		}
	}
	return "", false
}

var (
	thousandsRe = regexp.MustCompile(`^[+-]?\d{1,3}(,\d{3})+$`)
	trailZeroRe = regexp.MustCompile(`^([+-]?\d+)\.0+$`)
	integerRe   = regexp.MustCompile(`^[+-]?\d+$`)
	answerIsRe  = regexp.MustCompile(`(?i)answer is[:\s]*\$*\s*([+-]?\d[\d,]*(?:\.\d+)?)`)
	numberRe    = regexp.MustCompile(`[+-]?\d[\d,]*(?:\.\d+)?`)
)

// Normalize cleans an extracted answer: \text{...} units removed (their content kept when nothing else is
// left), \left/\right, $, spaces and LaTeX thin spaces dropped, thousands commas removed (only in a
// well-formed 1,234,567 pattern, so "2,3" stays two answers), a trailing .0… removed.
func Normalize(s string) string {
	s = stripText(s)
	// LaTeX thousands separators "1\,000" and "1{,}000" become "1,000" for the comma rule below.
	s = strings.ReplaceAll(s, `{,}`, ",")
	s = strings.ReplaceAll(s, `\,`, ",")
	for _, r := range []string{`\left`, `\right`, `\!`, `\;`, `\:`, `\ `, "$", " ", "\t", "\n", "\r"} {
		s = strings.ReplaceAll(s, r, "")
	}
	if thousandsRe.MatchString(s) {
		s = strings.ReplaceAll(s, ",", "")
	}
	if m := trailZeroRe.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	return s
}

// stripText removes \text{...} (and \textbf, \mathrm, \mbox) groups; when removing them leaves no digit,
// their contents are kept instead (\text{204} is 204, 204\text{ minutes} is 204).
func stripText(s string) string {
	removed, kept := s, s
	for _, cmd := range []string{`\text`, `\textbf`, `\mathrm`, `\mbox`} {
		removed = replaceGroups(removed, cmd, false)
		kept = replaceGroups(kept, cmd, true)
	}
	if strings.IndexFunc(removed, isDigit) >= 0 {
		return removed
	}
	return kept
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

func replaceGroups(s, cmd string, keep bool) string {
	var b strings.Builder
	for {
		i := strings.Index(s, cmd+"{")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		inner, ok := braced(s, i+len(cmd))
		if !ok {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		if keep {
			b.WriteString(inner)
		}
		s = s[i+len(cmd)+len(inner)+2:]
	}
}

// canonInt returns the integer in canonical form (no sign for zero, no leading zeros), or false.
func canonInt(s string) (string, bool) {
	if !integerRe.MatchString(s) {
		return "", false
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	s = strings.TrimLeft(s, "0")
	if s == "" {
		return "0", true
	}
	if neg {
		return "-" + s, true
	}
	return s, true
}

// CanonicalAnswer normalises a gold answer ("025" -> "25"); it fails for a non-integer.
func CanonicalAnswer(gold string) (string, error) {
	c, ok := canonInt(Normalize(gold))
	if !ok {
		return "", fmt.Errorf("gold answer %q is not an integer", gold)
	}
	return c, nil
}

// Extract returns the answer the mode reads from an output (normalised; canonical when an integer) and where
// it came from ("boxed", "answer_is", "last_number"), or "" when there is none.
func (g Grader) Extract(output string) (answer, source string) {
	if c, ok := LastBoxed(output); ok {
		return canon(Normalize(c)), "boxed"
	}
	if g.Mode != ModeLenient {
		return "", ""
	}
	if ms := answerIsRe.FindAllStringSubmatch(output, -1); ms != nil {
		return canon(Normalize(ms[len(ms)-1][1])), "answer_is"
	}
	if ms := numberRe.FindAllString(output, -1); ms != nil {
		return canon(Normalize(ms[len(ms)-1])), "last_number"
	}
	return "", ""
}

func canon(s string) string {
	if c, ok := canonInt(s); ok {
		return c
	}
	return s
}

// Grade grades one output against a canonical gold answer.
func (g Grader) Grade(output, gold string) eval.Grade {
	x, src := g.Extract(output)
	if x == "" {
		return eval.Grade{Verdict: VerdictNoAnswer, Detail: "no \\boxed{} answer"}
	}
	detail := "from " + src
	ok := false
	if xi, isInt := canonInt(x); isInt {
		ok = xi == gold
	} else {
		detail += "; not an integer"
	}
	if !ok && g.Mode == ModeQwen {
		if percentEqual(x, gold) {
			ok = true
			detail += "; accepted by the percentage rule"
		}
	}
	if ok {
		return eval.Grade{Extracted: x, Correct: true, Score: 1, Verdict: VerdictCorrect, Detail: detail}
	}
	return eval.Grade{Extracted: x, Verdict: VerdictWrong, Detail: detail + "; gold " + gold}
}

// percentEqual is Qwen2.5-Math's numeric comparison with include_percentage: the prediction may equal the
// reference, reference/100 or reference*100, within a relative tolerance of 1e-4.
func percentEqual(pred, gold string) bool {
	p, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSuffix(pred, `\%`), "%"), 64)
	if err != nil || math.IsNaN(p) || math.IsInf(p, 0) {
		return false
	}
	r, err := strconv.ParseFloat(gold, 64)
	if err != nil {
		return false
	}
	for _, ref := range []float64{r / 100, r, r * 100} {
		if math.Abs(p-ref) <= 1e-4*math.Max(math.Abs(p), math.Abs(ref)) {
			return true
		}
	}
	return false
}
