package sandbox

import (
	"fmt"
	"math/big"
	"strings"
	"unicode"
)

// CompareStdout compares a program's output with the expected output exactly as the official LiveCodeBench
// checker does: strip both, split on "\n", strip each line; the line counts must match; equal lines pass,
// otherwise both lines are split on whitespace and every token must parse as a decimal and the token lists
// must be equal as exact decimals (Python's Decimal: "1.0" == "1", no epsilon). It returns why it failed.
func CompareStdout(got, want string) (bool, string) {
	g, w := strippedLines(got), strippedLines(want)
	if len(g) != len(w) {
		return false, fmt.Sprintf("mismatched output length: %d lines, expected %d", len(g), len(w))
	}
	for i := range g {
		if g[i] == w[i] {
			continue
		}
		gt, wt := pyFields(g[i]), pyFields(w[i])
		fail := fmt.Sprintf("wrong answer at line %d: %q != %q", i, truncate(g[i], 100), truncate(w[i], 100))
		if len(gt) != len(wt) {
			return false, fail // unequal Decimal lists, or a token that does not parse: wrong either way
		}
		for j := range gt {
			a, okA := parseDecimal(gt[j])
			b, okB := parseDecimal(wt[j])
			if !okA || !okB || !a.equal(b) {
				return false, fail
			}
		}
	}
	return true, ""
}

// isPySpace reports whether r is whitespace for Python's str.split() and str.strip().
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

func strippedLines(s string) []string {
	s = strings.TrimFunc(s, isPySpace)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimFunc(l, isPySpace)
	}
	return lines
}

func pyFields(s string) []string { return strings.FieldsFunc(s, isPySpace) }

// decimal is an exact decimal in canonical form: value = (-1)^neg * digits * 10^exp, digits without leading or
// trailing zeros ("" for zero); inf and nan are Python's special values.
type decimal struct {
	neg, inf, nan bool
	digits        string
	exp           *big.Int
}

func (a decimal) equal(b decimal) bool {
	if a.nan || b.nan {
		return false // NaN is equal to nothing (sNaN raises in Python; either way not a pass)
	}
	if a.inf || b.inf {
		return a.inf && b.inf && a.neg == b.neg
	}
	if a.digits == "" || b.digits == "" {
		return a.digits == b.digits // zero; -0 == 0
	}
	return a.neg == b.neg && a.digits == b.digits && a.exp.Cmp(b.exp) == 0
}

// parseDecimal parses a token as CPython's decimal.Decimal constructor does: every underscore is dropped,
// Unicode decimal digits count as their ASCII digit, then: optional sign, digits with an optional point (".5", "5."),
// optional exponent, or Inf, Infinity, NaN, sNaN (any case; NaN may carry digits).
func parseDecimal(tok string) (decimal, bool) {
	var d decimal
	var sb strings.Builder
	for _, r := range tok {
		switch {
		case r == '_':
		case r < 0x80:
			sb.WriteByte(byte(r))
		case unicode.IsDigit(r):
			sb.WriteByte(byte('0' + digitValue(r)))
		default:
			return d, false
		}
	}
	s := sb.String()
	if s == "" {
		return d, false
	}
	if s[0] == '+' || s[0] == '-' {
		d.neg = s[0] == '-'
		s = s[1:]
	}
	low := strings.ToLower(s)
	switch {
	case low == "inf" || low == "infinity":
		d.inf = true
		return d, true
	case strings.HasPrefix(low, "nan") || strings.HasPrefix(low, "snan"):
		if isDigits(strings.TrimPrefix(strings.TrimPrefix(low, "s"), "nan")) {
			d.nan = true
			return d, true
		}
		return d, false
	}
	mant, expPart := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, expPart = s[:i], s[i+1:]
	}
	intPart, frac := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, frac = mant[:i], mant[i+1:]
	}
	if intPart == "" && frac == "" || !isDigits(intPart) || !isDigits(frac) {
		return d, false
	}
	exp := new(big.Int)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e := expPart
		if e != "" && (e[0] == '+' || e[0] == '-') {
			e = e[1:]
		}
		if e == "" || !isDigits(e) {
			return d, false
		}
		exp.SetString(expPart, 10)
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	exp.Sub(exp, big.NewInt(int64(len(frac))))
	trimmed := strings.TrimRight(digits, "0")
	exp.Add(exp, big.NewInt(int64(len(digits)-len(trimmed))))
	d.digits, d.exp = trimmed, exp
	return d, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// digitValue is the value of a Unicode decimal digit (category Nd comes in runs of ten starting at zero).
func digitValue(r rune) int {
	start := r
	for unicode.IsDigit(start - 1) {
		start--
	}
	return int(r-start) % 10
}
