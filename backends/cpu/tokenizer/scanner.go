package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The split patterns of the common byte-level tokenizers, which scanMatcher implements by hand
// (regexp2 runs them at well under 1 MB/s). FuzzScanner checks each against regexp2.
const (
	// qwen2Pattern is the Split regex of Qwen2/2.5 and DeepSeek-R1-Distill-Qwen: single digits.
	qwen2Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// llama3Pattern is the Split regex of Llama-3.x: digits in groups of up to three.
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// scanMatcher is a hand-written matcher for one of the known patterns.
type scanMatcher struct {
	// gpt2 selects gpt2Pattern; otherwise maxDigits is 1 (Qwen2) or 3 (Llama-3).
	gpt2      bool
	maxDigits int
}

// knownMatcher returns a scanMatcher when pattern is one of the known ones.
func knownMatcher(pattern string) (matcher, bool) {
	switch pattern {
	case gpt2Pattern:
		return &scanMatcher{gpt2: true}, true
	case qwen2Pattern:
		return &scanMatcher{maxDigits: 1}, true
	case llama3Pattern:
		return &scanMatcher{maxDigits: 3}, true
	}
	return nil, false
}

// Rune classes of the patterns: \p{L}, \p{N}, \s (Unicode White_Space, as regexp2 has it).
const (
	clsOther = iota
	clsLetter
	clsNumber
	clsSpace
)

var asciiClass [128]uint8

func init() {
	for r := rune(0); r < 128; r++ {
		asciiClass[r] = classOfSlow(r)
	}
}

func classOfSlow(r rune) uint8 {
	switch {
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	case unicode.IsSpace(r):
		return clsSpace
	}
	return clsOther
}

func classOf(r rune) uint8 {
	if r < 128 {
		return asciiClass[r]
	}
	return classOfSlow(r)
}

// at decodes the rune at byte offset i of s (RuneError, 0 past the end).
func at(s string, i int) (rune, int) {
	if i >= len(s) {
		return utf8.RuneError, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

func (m *scanMatcher) find(s string, yield func(start, end int)) {
	for i := 0; i < len(s); {
		n := m.matchAt(s, i)
		yield(i, i+n)
		i += n
	}
}

// contraction returns the length of 's|'t|'re|'ve|'m|'ll|'d at i (0 if none), ASCII case-folded when fold.
func contraction(s string, i int, fold bool) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return 0
	}
	lower := func(c byte) byte {
		if fold && c >= 'A' && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	switch lower(s[i+1]) {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if i+2 < len(s) && lower(s[i+2]) == 'e' {
			return 3
		}
	case 'l':
		if i+2 < len(s) && lower(s[i+2]) == 'l' {
			return 3
		}
	}
	return 0
}

// run returns the end of the run of runes of class cls starting at j.
func run(s string, j int, cls uint8) int {
	for j < len(s) {
		r, size := at(s, j)
		if classOf(r) != cls {
			break
		}
		j += size
	}
	return j
}

// matchAt returns the length (> 0) of the match starting at byte i of s (i < len(s)); the patterns
// match every position, so there are no gaps.
func (m *scanMatcher) matchAt(s string, i int) int {
	if n := contraction(s, i, !m.gpt2); n > 0 {
		return n
	}
	r0, size0 := at(s, i)
	c0 := classOf(r0)
	r1, size1 := at(s, i+size0)
	c1 := classOf(r1)
	if size1 == 0 {
		c1 = 255 // no next rune
	}
	if m.gpt2 {
		// ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+'
		j := i
		cls := c0
		if r0 == ' ' && (c1 == clsLetter || c1 == clsNumber || c1 == clsOther) {
			j, cls = i+size0, c1
		}
		if cls != clsSpace {
			return run(s, j, cls) - i
		}
		return whitespace(s, i, false)
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c0 == clsLetter {
		return run(s, i, clsLetter) - i
	}
	if r0 != '\r' && r0 != '\n' && c0 != clsNumber && c1 == clsLetter {
		return run(s, i+size0, clsLetter) - i
	}
	// \p{N}{1,max}
	if c0 == clsNumber {
		j := i
		for k := 0; k < m.maxDigits && j < len(s); k++ {
			r, size := at(s, j)
			if classOf(r) != clsNumber {
				break
			}
			j += size
		}
		return j - i
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	j := -1
	if c0 == clsOther {
		j = i
	} else if r0 == ' ' && c1 == clsOther {
		j = i + size0
	}
	if j >= 0 {
		j = run(s, j, clsOther)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j - i
	}
	return whitespace(s, i, true)
}

// whitespace matches at a whitespace rune: '\s*[\r\n]+' (when newlines), then '\s+(?!\S)', then '\s+'.
func whitespace(s string, i int, newlines bool) int {
	end := i
	lastNL := -1
	lastStart := i // start of the last rune of the run
	for end < len(s) {
		r, size := at(s, end)
		if classOf(r) != clsSpace {
			break
		}
		if r == '\r' || r == '\n' {
			lastNL = end
		}
		lastStart = end
		end += size
	}
	if newlines && lastNL >= 0 {
		return lastNL + 1 - i
	}
	if end == len(s) || lastStart == i {
		return end - i // at the end of the text, or a single space before non-space ('\s+')
	}
	return lastStart - i // leave the last space to go with what follows
}
