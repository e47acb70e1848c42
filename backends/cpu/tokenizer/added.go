package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	id         int
	content    string
	singleWord bool
	lstrip     bool
	rstrip     bool
	normalized bool
	special    bool
}

// addedMatcher finds added tokens in text, leftmost-longest, as the aho-corasick automaton of
// tokenizers' AddedVocabulary does.
type addedMatcher struct {
	tokens []*addedToken
	// byContent maps the matched form of each token to it; first holds the possible first bytes.
	byContent map[string]*addedToken
	first     [256]bool
	lengths   []int // distinct content lengths, longest first
}

// newAddedMatcher builds a matcher for toks; form returns the text to match for a token.
func newAddedMatcher(toks []*addedToken, form func(*addedToken) string) *addedMatcher {
	m := &addedMatcher{tokens: toks, byContent: map[string]*addedToken{}}
	seen := map[int]bool{}
	for _, t := range toks {
		c := form(t)
		if c == "" {
			continue
		}
		if _, dup := m.byContent[c]; !dup {
			m.byContent[c] = t
		}
		m.first[c[0]] = true
		if !seen[len(c)] {
			seen[len(c)] = true
			m.lengths = append(m.lengths, len(c))
		}
	}
	// Longest first, so the first hit at a position is the longest.
	for i := 1; i < len(m.lengths); i++ {
		for j := i; j > 0 && m.lengths[j] > m.lengths[j-1]; j-- {
			m.lengths[j], m.lengths[j-1] = m.lengths[j-1], m.lengths[j]
		}
	}
	return m
}

// segment is a piece of the input: either an added token (tok != nil) or text still to tokenize.
type segment struct {
	text string
	tok  *addedToken
}

// split cuts s into text segments and added-token segments, appending them to dst.
func (m *addedMatcher) split(dst []segment, s string) []segment {
	if m == nil || len(m.byContent) == 0 || s == "" {
		return append(dst, segment{text: s})
	}
	startOffset := 0
	for i := 0; i < len(s); {
		if !m.first[s[i]] {
			i++
			continue
		}
		var tok *addedToken
		var n int
		for _, l := range m.lengths {
			if i+l <= len(s) {
				if t, ok := m.byContent[s[i:i+l]]; ok {
					tok, n = t, l
					break
				}
			}
		}
		if tok == nil {
			i++
			continue
		}
		start, stop := i, i+n
		i = stop // the automaton resumes after the match, whether it is used or not
		if start < startOffset {
			continue // overlaps a previous token widened by rstrip
		}
		if tok.singleWord {
			startSpace := start == 0 || !endsWithWord(s[:start])
			stopSpace := stop == len(s) || !startsWithWord(s[stop:])
			if !startSpace || !stopSpace {
				continue
			}
		}
		if tok.lstrip {
			newStart := len(strings.TrimRightFunc(s[:start], unicode.IsSpace))
			start = max(newStart, startOffset)
		}
		if tok.rstrip {
			rest := s[stop:]
			stop += len(rest) - len(strings.TrimLeftFunc(rest, unicode.IsSpace))
			i = stop
		}
		if startOffset < start {
			dst = append(dst, segment{text: s[startOffset:start]})
		}
		dst = append(dst, segment{text: s[start:stop], tok: tok})
		startOffset = stop
	}
	if startOffset < len(s) {
		dst = append(dst, segment{text: s[startOffset:]})
	}
	return dst
}

func isWordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) }

func endsWithWord(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return isWordRune(r)
}

func startsWithWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return isWordRune(r)
}
