package tokenizer

import (
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// gpt2Pattern is the regex the ByteLevel pre-tokenizer uses when use_regex is true.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// preTokenizer splits one piece of text into smaller pieces and passes each non-empty one to emit.
type preTokenizer interface {
	apply(piece string, emit func(string))
}

// span is a half-open byte range of a piece and whether the split pattern matched it.
type span struct {
	start, end int
	match      bool
}

// splitBehavior is what a Split does with the matched spans (tokenizers' SplitDelimiterBehavior).
type splitBehavior int

const (
	behaviorRemoved splitBehavior = iota
	behaviorIsolated
	behaviorMergedWithPrevious
	behaviorMergedWithNext
	behaviorContiguous
)

var behaviorNames = map[string]splitBehavior{
	"Removed":            behaviorRemoved,
	"Isolated":           behaviorIsolated,
	"MergedWithPrevious": behaviorMergedWithPrevious,
	"MergedWithNext":     behaviorMergedWithNext,
	"Contiguous":         behaviorContiguous,
}

// matcher finds the non-overlapping matches of a pattern in s, left to right, as byte offsets.
type matcher interface {
	find(s string, yield func(start, end int))
}

// regexMatcher matches with regexp2, whose backtracking semantics (lookahead, leftmost-first
// alternation) are those of the Oniguruma engine Hugging Face tokenizers uses.
type regexMatcher struct {
	re *regexp2.Regexp
}

func newRegexMatcher(pattern string) (*regexMatcher, error) {
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		return nil, err
	}
	return &regexMatcher{re: re}, nil
}

func (m *regexMatcher) find(s string, yield func(start, end int)) {
	runes := []rune(s)
	match, err := m.re.FindRunesMatch(runes)
	// Convert rune indices to byte offsets by walking s once; []rune(s) turns each invalid byte
	// into one U+FFFD, as utf8.DecodeRuneInString does, so the two walks agree.
	bytePos, runePos := 0, 0
	advance := func(to int) int {
		for runePos < to {
			_, size := utf8.DecodeRuneInString(s[bytePos:])
			bytePos += size
			runePos++
		}
		return bytePos
	}
	for err == nil && match != nil {
		start := advance(match.Index)
		end := advance(match.Index + match.Length)
		yield(start, end)
		match, err = m.re.FindNextMatch(match)
	}
}

// funcMatcher matches single runes for which fn is true.
type funcMatcher func(rune) bool

func (f funcMatcher) find(s string, yield func(start, end int)) {
	for i, r := range s {
		if f(r) {
			yield(i, i+utf8.RuneLen(r))
		}
	}
}

// splitPre is the Split pre-tokenizer (and Digits, which is a Split on numeric runes).
type splitPre struct {
	m        matcher
	behavior splitBehavior
	invert   bool
}

func (p *splitPre) apply(piece string, emit func(string)) {
	if piece == "" {
		return
	}
	if p.behavior == behaviorIsolated && !p.invert {
		// Every match and every gap is its own piece: stream them.
		prev := 0
		p.m.find(piece, func(start, end int) {
			if prev != start {
				emit(piece[prev:start])
			}
			if end > start {
				emit(piece[start:end])
			}
			prev = end
		})
		if prev != len(piece) {
			emit(piece[prev:])
		}
		return
	}
	var spans []span
	prev := 0
	p.m.find(piece, func(start, end int) {
		if prev != start {
			spans = append(spans, span{prev, start, false})
		}
		spans = append(spans, span{start, end, true})
		prev = end
	})
	if prev != len(piece) {
		spans = append(spans, span{prev, len(piece), false})
	}
	if p.invert {
		for i := range spans {
			spans[i].match = !spans[i].match
		}
	}
	for _, sp := range applyBehavior(spans, p.behavior) {
		if sp.end > sp.start {
			emit(piece[sp.start:sp.end])
		}
	}
}

// applyBehavior merges or drops matched spans as tokenizers' SplitDelimiterBehavior does.
func applyBehavior(spans []span, b splitBehavior) []span {
	switch b {
	case behaviorIsolated:
		return spans
	case behaviorRemoved:
		out := spans[:0]
		for _, s := range spans {
			if !s.match {
				out = append(out, s)
			}
		}
		return out
	case behaviorMergedWithPrevious:
		var out []span
		prevMatch := false
		for _, s := range spans {
			if s.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].end = s.end
			} else {
				out = append(out, s)
			}
			prevMatch = s.match
		}
		return out
	case behaviorMergedWithNext:
		var rev []span
		prevMatch := false
		for i := len(spans) - 1; i >= 0; i-- {
			s := spans[i]
			if s.match && !prevMatch && len(rev) > 0 {
				rev[len(rev)-1].start = s.start
			} else {
				rev = append(rev, s)
			}
			prevMatch = s.match
		}
		for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
			rev[i], rev[j] = rev[j], rev[i]
		}
		return rev
	case behaviorContiguous:
		var out []span
		prevMatch := false
		for i, s := range spans {
			if i > 0 && s.match == prevMatch {
				out[len(out)-1].end = s.end
			} else {
				out = append(out, s)
			}
			prevMatch = s.match
		}
		return out
	}
	return spans
}

// byteLevelPre is the ByteLevel pre-tokenizer: optional prefix space, optional GPT-2 regex split,
// then every byte mapped to its printable rune.
type byteLevelPre struct {
	addPrefixSpace bool
	split          *splitPre // nil when use_regex is false
	// deferMap leaves the byte mapping to the caller (set when this is the last step, so that
	// Encode can map into a scratch buffer and skip the allocation for cached pre-tokens).
	deferMap bool
}

func (p *byteLevelPre) apply(piece string, emit func(string)) {
	if piece == "" {
		return
	}
	if p.addPrefixSpace && piece[0] != ' ' {
		piece = " " + piece
	}
	out := emit
	if !p.deferMap {
		out = func(s string) { emit(byteLevelMap(s)) }
	}
	if p.split == nil {
		out(piece)
		return
	}
	p.split.apply(piece, out)
}

// sequencePre applies pre-tokenizers one after the other, each to every piece of the previous.
type sequencePre struct {
	steps []preTokenizer
}

func (p *sequencePre) apply(piece string, emit func(string)) {
	// Chain the steps once per call: stage k feeds step k's pieces to stage k+1.
	next := emit
	for k := len(p.steps) - 1; k > 0; k-- {
		step, out := p.steps[k], next
		next = func(s string) { step.apply(s, out) }
	}
	if len(p.steps) == 0 {
		emit(piece)
		return
	}
	p.steps[0].apply(piece, next)
}

// lastByteLevel returns the ByteLevel step that runs last in p, if any.
func lastByteLevel(p preTokenizer) *byteLevelPre {
	switch p := p.(type) {
	case *byteLevelPre:
		return p
	case *sequencePre:
		if len(p.steps) > 0 {
			return lastByteLevel(p.steps[len(p.steps)-1])
		}
	}
	return nil
}

// preTokenizerJSON holds the fields of every supported pre-tokenizer type.
type preTokenizerJSON struct {
	Type    string `json:"type"`
	Pattern *struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	} `json:"pattern"`
	Behavior         string            `json:"behavior"`
	Invert           bool              `json:"invert"`
	IndividualDigits bool              `json:"individual_digits"`
	AddPrefixSpace   bool              `json:"add_prefix_space"`
	UseRegex         *bool             `json:"use_regex"`
	PreTokenizers    []json.RawMessage `json:"pretokenizers"`
}

// parsePreTokenizer builds the pre-tokenizer of a tokenizer.json "pre_tokenizer" object (nil when there is none).
func parsePreTokenizer(raw json.RawMessage, field string) (preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	var pj preTokenizerJSON
	if err := json.Unmarshal(raw, &pj); err != nil {
		return nil, fmt.Errorf("%s: %v", field, err)
	}
	switch pj.Type {
	case "Sequence":
		seq := &sequencePre{}
		for i, sub := range pj.PreTokenizers {
			p, err := parsePreTokenizer(sub, fmt.Sprintf("%s.pretokenizers[%d]", field, i))
			if err != nil {
				return nil, err
			}
			if p != nil {
				seq.steps = append(seq.steps, p)
			}
		}
		return seq, nil
	case "Split":
		if pj.Pattern == nil {
			return nil, fmt.Errorf("%s: Split without \"pattern\"", field)
		}
		var pattern string
		switch {
		case pj.Pattern.Regex != nil:
			pattern = *pj.Pattern.Regex
		case pj.Pattern.String != nil:
			pattern = regexp2.Escape(*pj.Pattern.String)
		default:
			return nil, fmt.Errorf("%s.pattern: want {\"Regex\": ...} or {\"String\": ...}", field)
		}
		b, ok := behaviorNames[pj.Behavior]
		if !ok {
			return nil, fmt.Errorf("%s.behavior: unknown %q", field, pj.Behavior)
		}
		m, err := compileMatcher(pattern)
		if err != nil {
			return nil, fmt.Errorf("%s.pattern: %v", field, err)
		}
		return &splitPre{m: m, behavior: b, invert: pj.Invert}, nil
	case "Digits":
		b := behaviorContiguous
		if pj.IndividualDigits {
			b = behaviorIsolated
		}
		return &splitPre{m: funcMatcher(unicode.IsNumber), behavior: b}, nil
	case "ByteLevel":
		p := &byteLevelPre{addPrefixSpace: pj.AddPrefixSpace}
		if pj.UseRegex == nil || *pj.UseRegex {
			m, err := compileMatcher(gpt2Pattern)
			if err != nil {
				return nil, err
			}
			p.split = &splitPre{m: m, behavior: behaviorIsolated}
		}
		return p, nil
	case "":
		return nil, fmt.Errorf("%s: missing \"type\"", field)
	}
	return nil, fmt.Errorf("%s: unsupported pre-tokenizer type %q (supported: Sequence, Split, Digits, ByteLevel)", field, pj.Type)
}

// compileMatcher returns a matcher for a Split regex: the hand-written scanner for the known
// patterns, regexp2 for any other.
func compileMatcher(pattern string) (matcher, error) {
	if m, ok := knownMatcher(pattern); ok {
		return m, nil
	}
	return newRegexMatcher(pattern)
}
