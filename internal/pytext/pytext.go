// Package pytext holds the Python str operations and the SQuAD-style answer normalization that the official
// scorers of LongBench and InfiniteBench are written in, with Python's semantics: code points, Unicode whitespace
// (str.isspace), Unicode \w and \d, str.lower's special cases, and collections.Counter token F1.
package pytext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// NormalizeAnswer is normalize_answer: lower case, drop string.punctuation, drop the articles a/an/the (as whole
// \w words), collapse whitespace.
func NormalizeAnswer(s string) string {
	s = Lower(s)
	s = strings.Map(func(r rune) rune {
		if r < 128 && strings.ContainsRune(Punctuation, r) {
			return -1
		}
		return r
	}, s)
	s = removeArticles(s)
	return strings.Join(Split(s), " ")
}

// removeArticles is re.sub(r"\b(a|an|the)\b", " ", s) with Python's Unicode \b: a match is a whole run of word
// characters equal to a, an or the.
func removeArticles(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	start := -1
	flush := func(end int) {
		switch w := s[start:end]; w {
		case "a", "an", "the":
			b.WriteByte(' ')
		default:
			b.WriteString(w)
		}
		start = -1
	}
	for i, r := range s {
		if IsWord(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			flush(i)
		}
		b.WriteRune(r)
	}
	if start >= 0 {
		flush(len(s))
	}
	return b.String()
}

// ChinesePunctuation is normalize_zh_answer's cn_punctuation.
const ChinesePunctuation = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."

// NormalizeZhAnswer is normalize_zh_answer: lower case, drop ASCII and Chinese punctuation, drop whitespace.
func NormalizeZhAnswer(s string) string {
	s = Lower(s)
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(Punctuation, r) || strings.ContainsRune(ChinesePunctuation, r) || IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// F1 is f1_score over token lists: the multiset overlap's harmonic mean of precision and recall.
func F1(pred, truth []string) float64 {
	counts := make(map[string]int, len(truth))
	for _, t := range truth {
		counts[t]++
	}
	same := 0
	for _, p := range pred {
		if counts[p] > 0 {
			counts[p]--
			same++
		}
	}
	if same == 0 {
		return 0
	}
	precision := 1.0 * float64(same) / float64(len(pred))
	recall := 1.0 * float64(same) / float64(len(truth))
	return (2 * precision * recall) / (precision + recall)
}

// IsSpace is Python's str.isspace() for one character: what str.split(), str.strip() and \s treat as
// whitespace.
func IsSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, 0x85, 0xa0, 0x1680,
		0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
		0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return false
}

// Split is Python's str.split() with no argument: the runs of non-whitespace.
func Split(s string) []string { return strings.FieldsFunc(s, IsSpace) }

// Lower is Python's str.lower(): the full Unicode lower-case mapping, with U+0130 (İ) becoming "i̇" and a
// capital sigma becoming the final form ς where Python's Final_Sigma rule says so.
func Lower(s string) string {
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

// IsWord is Python's \w for str patterns: alphanumeric characters and the underscore.
func IsWord(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r)
}

// IsDigit is Python's \d for str patterns: any Unicode decimal digit (category Nd).
func IsDigit(r rune) bool { return unicode.IsDigit(r) }

// DigitRuns is re.findall(r"\d+", s).
func DigitRuns(s string) []string {
	var out []string
	start := -1
	for i, r := range s {
		switch {
		case IsDigit(r) && start < 0:
			start = i
		case !IsDigit(r) && start >= 0:
			out = append(out, s[start:i])
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// Punctuation is Python's string.punctuation.
const Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// FirstLine is prediction.lstrip('\n').split('\n')[0] (LongBench's truncation for trec, triviaqa, samsum, lsht).
func FirstLine(s string) string {
	s = strings.TrimLeft(s, "\n")
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Strip is Python's str.strip(): leading and trailing Unicode whitespace removed.
func Strip(s string) string { return strings.TrimFunc(s, IsSpace) }

// Upper is Python's str.upper() for the characters whose upper case is one character (the others, such as ß,
// become their simple upper-case mapping).
func Upper(s string) string {
	if isASCII(s) {
		return strings.ToUpper(s)
	}
	return strings.Map(unicode.ToUpper, s)
}

// ASCIIDigits maps every Unicode decimal digit (category Nd) to its ASCII digit, as Python's int() and float()
// read them. Each Nd block is ten consecutive code points from its zero, and adjacent blocks follow each other,
// so a digit's value is its distance from the start of its run of digits, modulo 10.
func ASCIIDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 || !unicode.IsDigit(r) {
			return r
		}
		start := r
		for unicode.IsDigit(start - 1) {
			start--
		}
		return '0' + (r-start)%10
	}, s)
}
