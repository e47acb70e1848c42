package longbench1

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds the few Python str operations the official metrics rely on, with Python's semantics
// (code points, Unicode whitespace, Unicode \w and \d), so that the metrics see the text Python sees.

// isPySpace is Python's str.isspace() for one character: what str.split(), str.strip() and \s treat as
// whitespace.
func isPySpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, 0x85, 0xa0, 0x1680,
		0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
		0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return false
}

// pySplit is Python's str.split() with no argument: the runs of non-whitespace.
func pySplit(s string) []string { return strings.FieldsFunc(s, isPySpace) }

// pyLower is Python's str.lower(): the full Unicode lower-case mapping, with U+0130 (İ) becoming "i̇" and a
// capital sigma becoming the final form ς where Python's Final_Sigma rule says so.
func pyLower(s string) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch r {
		case 0x130:
			b.WriteString("i\u0307")
		case 0x3a3:
			if finalSigma(s, i) {
				b.WriteRune(0x3c2)
			} else {
				b.WriteRune(0x3c3)
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma is Python's Final_Sigma test for the capital sigma at byte i: preceded by a cased letter (skipping
// case-ignorable characters) and not followed by one.
func finalSigma(s string, i int) bool {
	j := i
	before := false
	for j > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:j])
		j -= size
		if caseIgnorable(r) {
			continue
		}
		before = cased(r)
		break
	}
	if !before {
		return false
	}
	j = i + utf8.RuneLen(0x3a3)
	for j < len(s) {
		r, size := utf8.DecodeRuneInString(s[j:])
		j += size
		if caseIgnorable(r) {
			continue
		}
		return !cased(r)
	}
	return true
}

func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
}

func caseIgnorable(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) ||
		r == '\'' || r == '.' || r == ':' || r == '^' || r == '`' || r == 0xb7 || r == 0x2019
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isPyWord is Python's \w for str patterns: alphanumeric characters and the underscore.
func isPyWord(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r)
}

// isPyDigit is Python's \d for str patterns: any Unicode decimal digit (category Nd).
func isPyDigit(r rune) bool { return unicode.IsDigit(r) }

// findDigitRuns is re.findall(r"\d+", s).
func findDigitRuns(s string) []string {
	var out []string
	start := -1
	for i, r := range s {
		switch {
		case isPyDigit(r) && start < 0:
			start = i
		case !isPyDigit(r) && start >= 0:
			out = append(out, s[start:i])
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// asciiPunct is Python's string.punctuation.
const asciiPunct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// firstLine is the official truncation for trec, triviaqa, samsum and lsht: prediction.lstrip('\n').split('\n')[0].
func firstLine(s string) string {
	s = strings.TrimLeft(s, "\n")
	line, _, _ := strings.Cut(s, "\n")
	return line
}
