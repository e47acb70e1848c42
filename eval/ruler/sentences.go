package ruler

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// splitSentences splits whitespace-normalised text into sentences, standing in for NLTK's
// sent_tokenize (the Punkt model trained on English) that RULER runs on the essay haystack. Joined with single
// spaces, the sentences give the text back, so only where the boundaries fall matters: it decides at which
// sentence a needle is inserted.
//
// The rules are Punkt's first-pass decisions without its trained parameters: a boundary follows a token that
// ends in '.', '?' or '!' (closing quotes and brackets may follow), unless the token is a known abbreviation, a
// single-letter initial, an ellipsis, or a number followed by a lower-case word, or the next token starts with
// a lower-case letter. Punkt's learned abbreviation list and orthographic statistics make a few different
// decisions, so essay-haystack items (niah_single_2/3, niah_multikey_1, niah_multivalue, niah_multiquery) can place
// a needle one sentence away from where RULER puts it; docs/benchmarks.md says so.
func splitSentences(text string) []string {
	toks := strings.Split(text, " ")
	var out []string
	start := 0
	for i := 0; i < len(toks)-1; i++ {
		if isBoundary(toks[i], toks[i+1]) {
			out = append(out, strings.Join(toks[start:i+1], " "))
			start = i + 1
		}
	}
	if start < len(toks) {
		if s := strings.Join(toks[start:], " "); s != "" || len(out) == 0 {
			out = append(out, s)
		}
	}
	if len(out) == 1 && out[0] == "" {
		return nil
	}
	return out
}

// abbreviations are common English abbreviations that end in a period without ending a sentence.
var abbreviations = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "dr": true, "prof": true, "sr": true, "jr": true, "st": true, "vs": true,
	"etc": true, "e.g": true, "i.e": true, "inc": true, "ltd": true, "co": true, "corp": true, "u.s": true,
	"u.k": true, "no": true, "vol": true, "fig": true, "approx": true, "ca": true, "cf": true, "al": true,
	"jan": true, "feb": true, "mar": true, "apr": true, "jun": true, "jul": true, "aug": true, "sep": true,
	"sept": true, "oct": true, "nov": true, "dec": true, "mt": true, "gen": true, "gov": true, "rev": true,
}

func isBoundary(tok, next string) bool {
	core := strings.TrimRight(tok, "\"')]}’”")
	if core == "" || next == "" {
		return false
	}
	last, _ := utf8.DecodeLastRuneInString(core)
	if last != '.' && last != '?' && last != '!' {
		return false
	}
	first, _ := utf8.DecodeRuneInString(strings.TrimLeft(next, "\"'([{‘“"))
	if unicode.IsLower(first) {
		return false
	}
	if last != '.' {
		return true
	}
	if strings.HasSuffix(core, "..") {
		return false
	}
	word := strings.ToLower(strings.TrimLeft(strings.TrimSuffix(core, "."), "\"'([{‘“"))
	if abbreviations[word] {
		return false
	}
	if utf8.RuneCountInString(word) == 1 {
		r, _ := utf8.DecodeRuneInString(word)
		if unicode.IsLetter(r) {
			return false
		}
	}
	return true
}
