package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fixtureJSON returns a fixture tokenizer.json as a generic map, to derive variants from.
func fixtureJSON(t *testing.T, style string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", style, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func parseMap(t *testing.T, m map[string]any) *Tokenizer {
	t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(data, "variant")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestStringMerges: merges written as "a b" strings (most real files) encode like the pair form.
func TestStringMerges(t *testing.T) {
	for _, style := range styles {
		m := fixtureJSON(t, style)
		model := m["model"].(map[string]any)
		var merges []any
		for _, p := range model["merges"].([]any) {
			pair := p.([]any)
			merges = append(merges, pair[0].(string)+" "+pair[1].(string))
		}
		model["merges"] = merges
		tok := parseMap(t, m)
		for _, c := range loadCases(t, style, "cases_corpus.json") {
			if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
				t.Errorf("%s string merges: Encode(%q) = %v, want %v", style, c.Text, got, c.IDs)
			}
		}
	}
}

func TestIgnoreMerges(t *testing.T) {
	const base = `{"model":{"type":"BPE","ignore_merges":%s,"vocab":{"a":0,"b":1,"c":2,"bc":3,"abc":4},"merges":["b c"]}}`
	tests := []struct {
		ignore string
		want   []int
	}{
		{"false", []int{0, 3}}, // a + bc: no merge builds "abc"
		{"true", []int{4}},     // the whole pre-token is in the vocabulary
	}
	for _, tc := range tests {
		tok, err := Parse([]byte(replaceOnce(base, "%s", tc.ignore)), "ignore")
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Encode("abc"); !slices.Equal(got, tc.want) {
			t.Errorf("ignore_merges=%s: Encode(abc) = %v, want %v", tc.ignore, got, tc.want)
		}
	}
}

func replaceOnce(s, old, new string) string {
	i := 0
	for ; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}

// TestLlama31PostProcessor: real Llama-3.1 files add <|begin_of_text|> through Sequence[ByteLevel, TemplateProcessing].
func TestLlama31PostProcessor(t *testing.T) {
	m := fixtureJSON(t, "llama3")
	var pp any
	if err := json.Unmarshal([]byte(`{"type":"Sequence","processors":[
		{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},
		{"type":"TemplateProcessing",
		 "single":[{"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
		 "pair":[],
		 "special_tokens":{"<|begin_of_text|>":{"id":"<|begin_of_text|>","ids":[0],"tokens":["<|begin_of_text|>"]}}}]}`), &pp); err != nil {
		t.Fatal(err)
	}
	m["post_processor"] = pp
	tok := parseMap(t, m)
	body := tok.Encode("hello world")
	got := tok.EncodeWithSpecial("hello world")
	if want := append([]int{0}, body...); !slices.Equal(got, want) {
		t.Errorf("EncodeWithSpecial = %v, want %v", got, want)
	}
	if tok.DecodeSkipSpecial(got) != "hello world" {
		t.Errorf("DecodeSkipSpecial = %q", tok.DecodeSkipSpecial(got))
	}
}

// TestAddedTokenFlags covers lstrip, rstrip, single_word and normalized added tokens.
func TestAddedTokenFlags(t *testing.T) {
	m := fixtureJSON(t, "chatml")
	added := m["added_tokens"].([]any)
	add := func(id int, content string, flags map[string]bool) {
		tok := map[string]any{"id": id, "content": content, "special": false, "normalized": false,
			"lstrip": false, "rstrip": false, "single_word": false}
		for k, v := range flags {
			tok[k] = v
		}
		added = append(added, tok)
	}
	add(2000, "<mask>", map[string]bool{"lstrip": true, "special": true})
	add(2001, "<sep>", map[string]bool{"rstrip": true})
	add(2002, "cat", map[string]bool{"single_word": true})
	add(2003, "é!", map[string]bool{"normalized": true}) // matched after NFC
	m["added_tokens"] = added
	tok := parseMap(t, m)
	ids := func(s string) []int { return tok.Encode(s) }
	plain := func(s string) []int { return loadFixture(t, "chatml").Encode(s) }
	cat := func(parts ...[]int) []int { return slices.Concat(parts...) }

	tests := []struct {
		name string
		in   string
		want []int
	}{
		{"lstrip eats spaces before", "a  <mask>b", cat(plain("a"), []int{2000}, plain("b"))},
		{"rstrip eats spaces after", "a<sep>  b", cat(plain("a"), []int{2001}, plain("b"))},
		{"single word alone", "a cat b", cat(plain("a "), []int{2002}, plain(" b"))},
		{"single word inside a word", "concat", plain("concat")},
		{"normalized token after NFC", "xe\u0301!", cat(plain("x"), []int{2003})},
		{"non-normalized token is raw", "<sep>", []int{2001}},
	}
	for _, tc := range tests {
		if got := ids(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Encode(%q) = %v, want %v", tc.name, tc.in, got, tc.want)
		}
	}
	// Non-special added tokens survive skip_special_tokens; special ones do not.
	if got := tok.DecodeSkipSpecial([]int{2000, 2001}); got != "<sep>" {
		t.Errorf("DecodeSkipSpecial = %q, want <sep>", got)
	}
	if tok.VocabSize() != 2004 {
		t.Errorf("VocabSize = %d, want 2004", tok.VocabSize())
	}
}

// TestByteLevelRegexAndPrefixSpace covers ByteLevel(use_regex, add_prefix_space) without a Split.
func TestByteLevelRegexAndPrefixSpace(t *testing.T) {
	m := fixtureJSON(t, "gpt2")
	m["pre_tokenizer"] = map[string]any{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}
	tok := parseMap(t, m)
	ref := loadFixture(t, "gpt2")
	// add_prefix_space: "hello" encodes as " hello" does.
	if got, want := tok.Encode("hello world"), ref.Encode(" hello world"); !slices.Equal(got, want) {
		t.Errorf("add_prefix_space: %v, want %v", got, want)
	}
	if got, want := tok.Encode(" x"), ref.Encode(" x"); !slices.Equal(got, want) {
		t.Errorf("leading space kept once: %v, want %v", got, want)
	}
}

func TestSplitBehaviors(t *testing.T) {
	tests := []struct {
		behavior string
		invert   bool
		want     []string
	}{
		{"Isolated", false, []string{"a", "-", "b", "-", "-", "c"}},
		{"Removed", false, []string{"a", "b", "c"}},
		{"MergedWithPrevious", false, []string{"a-", "b-", "-", "c"}}, // tokenizers docs: "the-", "final-", "-", "countdown"
		{"MergedWithNext", false, []string{"a", "-b", "-", "-c"}},
		{"Contiguous", false, []string{"a", "-", "b", "--", "c"}},
		{"Removed", true, []string{"-", "-", "-"}},
	}
	for _, tc := range tests {
		p, err := parsePreTokenizer(json.RawMessage(`{"type":"Split","pattern":{"String":"-"},"behavior":"`+tc.behavior+`","invert":`+map[bool]string{true: "true", false: "false"}[tc.invert]+`}`), "pre_tokenizer")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		p.apply("a-b--c", func(s string) { got = append(got, s) })
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s invert=%v: %q, want %q", tc.behavior, tc.invert, got, tc.want)
		}
	}
}
