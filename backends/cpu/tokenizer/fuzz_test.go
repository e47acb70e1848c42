package tokenizer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// minimal is a small valid tokenizer.json the parse tests mutate.
const minimal = `{"added_tokens":[{"id":3,"content":"<s>","special":true}],
"normalizer":null,
"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},
"decoder":{"type":"ByteLevel"},
"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"not json", `{"model": `, "invalid JSON"},
		{"no model", `{"added_tokens": []}`, `missing "model"`},
		{"wrong model type", `{"model":{"type":"WordPiece","vocab":{}}}`, `model.type: unsupported "WordPiece"`},
		{"no vocab", `{"model":{"type":"BPE","merges":[]}}`, "model.vocab: missing"},
		{"merge not two", `{"model":{"vocab":{"a":0},"merges":["a b c"]}}`, "model.merges[0]"},
		{"merge bad pair", `{"model":{"vocab":{"a":0},"merges":[["a"]]}}`, "model.merges[0]: want 2 tokens"},
		{"merge bad type", `{"model":{"vocab":{"a":0},"merges":[7]}}`, "model.merges[0]"},
		{"merge unknown", `{"model":{"vocab":{"a":0,"b":1},"merges":[["a","c"]]}}`, `model.merges[0]: token "c" is not in the vocabulary`},
		{"merge result unknown", `{"model":{"vocab":{"a":0,"b":1},"merges":["a b"]}}`, `merged token "ab"`},
		{"negative id", `{"model":{"vocab":{"a":-1},"merges":[]}}`, "negative id"},
		{"bad normalizer", `{"normalizer":{"type":"Strip"},"model":{"vocab":{},"merges":[]}}`, `normalizer: unsupported normalizer type "Strip"`},
		{"bad nested normalizer", `{"normalizer":{"type":"Sequence","normalizers":[{"type":"X"}]},"model":{"vocab":{},"merges":[]}}`, "normalizer.normalizers[0]"},
		{"bad pre-tokenizer", `{"pre_tokenizer":{"type":"Metaspace"},"model":{"vocab":{},"merges":[]}}`, `pre_tokenizer: unsupported pre-tokenizer type "Metaspace"`},
		{"bad regex", `{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"(a"},"behavior":"Isolated"}]},"model":{"vocab":{},"merges":[]}}`, "pre_tokenizer.pretokenizers[0].pattern"},
		{"bad behavior", `{"pre_tokenizer":{"type":"Split","pattern":{"String":" "},"behavior":"Sideways"},"model":{"vocab":{},"merges":[]}}`, `behavior: unknown "Sideways"`},
		{"bad decoder", `{"decoder":{"type":"WordPiece"},"model":{"vocab":{},"merges":[]}}`, `decoder: unsupported type "WordPiece"`},
		{"added token without id", `{"added_tokens":[{"content":"x"}],"model":{"vocab":{},"merges":[]}}`, `added_tokens[0]: missing "id"`},
		{"bad template", `{"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>"}},{"Sequence":{"id":"A"}}],"special_tokens":{}},"model":{"vocab":{},"merges":[]}}`, `special token "<s>" missing`},
		{"unk not in vocab", `{"model":{"vocab":{},"merges":[],"unk_token":"<unk>"}}`, "model.unk_token"},
		{"empty vocab", `{"model":{"type":"BPE","vocab":{},"merges":[]}}`, "model.vocab: empty"},
		{"empty vocab, added tokens only", `{"added_tokens":[{"id":0,"content":"<s>","special":true}],"model":{"type":"BPE","vocab":{},"merges":[]}}`, "model.vocab: empty"},
		{"encodes nothing", `{"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},"model":{"type":"BPE","vocab":{"<0x00>":0},"merges":[]}}`, "encodes \"The quick brown fox, 42.\" to no tokens"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.data), "x.json")
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "tokenizer x.json: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want it to name x.json and contain %q", tc.name, err, tc.want)
		}
	}
	if _, err := Load(filepath.Join("testdata", "missing.json")); err == nil {
		t.Error("Load of a missing file: no error")
	}
}

func TestParseMinimal(t *testing.T) {
	tok, err := Parse([]byte(minimal), "minimal")
	if err != nil {
		t.Fatal(err)
	}
	// "ab" merges; "<s>" is special; "c" is not in the vocabulary and has no unk: dropped.
	if got := tok.Encode("ab<s>ac"); len(got) != 3 || got[0] != 2 || got[1] != 3 || got[2] != 0 {
		t.Errorf("Encode = %v, want [2 3 0]", got)
	}
	if got := tok.DecodeSkipSpecial([]int{2, 3, 0, 99}); got != "aba" {
		t.Errorf("DecodeSkipSpecial = %q", got)
	}
}

// FuzzParse: no input may panic Parse or a parsed tokenizer; errors name the file.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(`{"model":{"vocab":{"a":0},"merges":[["a","a"]]}}`))
	f.Add([]byte(`{"model":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"model":{"vocab":{"a":0,"b":1,"ab":2},"merges":["a b"],"ignore_merges":true,"byte_fallback":true},` +
		`"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":false},` +
		`{"type":"Split","pattern":{"String":"b"},"behavior":"MergedWithNext","invert":true}]},` +
		`"post_processor":{"type":"RobertaProcessing","cls":["a",0],"sep":["b",1]}}`))
	for _, style := range styles {
		data, err := os.ReadFile(filepath.Join("testdata", style, "tokenizer.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data[:len(data)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data, "fuzz.json")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "tokenizer fuzz.json: ") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		ids := tok.EncodeWithSpecial("ab 12 <s> ünï\n\n x")
		_ = tok.Decode(append(ids, -1, 1<<30))
	})
}

// FuzzRoundTrip: Decode(Encode(s)) gives back s (NFC-normalized where the tokenizer normalizes)
// for valid UTF-8 without special tokens, on every fixture tokenizer.
func FuzzRoundTrip(f *testing.F) {
	toks := map[string]*Tokenizer{}
	for _, style := range styles {
		toks[style] = loadFixture(f, style)
		for _, c := range loadCases(f, style, "cases_corpus.json") {
			f.Add(c.Text)
		}
	}
	f.Add("école\u0301 e\u0301 \x00\x1f\u2028 \r\n\t  \u00a0x")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.Contains(s, "<|") {
			return
		}
		for style, tok := range toks {
			want := s
			if style == "chatml" {
				want = norm.NFC.String(s)
			}
			if got := tok.Decode(tok.Encode(s)); got != want {
				t.Errorf("%s: Decode(Encode(%q)) = %q", style, s, got)
			}
		}
	})
}

// benchText is ~1 MB of mixed text: English-like words, numbers, code, whitespace runs, CJK, emoji.
func benchText() string {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"the", "model", "cache", "attention", "token", "of", "and", "to", "in", "is",
		"compression", "SnapStream", "Ünïcode", "naïve", "東京", "日本語", "🙂", "🚀", "Привет",
		"def", "return", "x**2", "(a, b)", "{", "}", "\\boxed{42}", "3.14159", "2024", "1234567"}
	seps := []string{" ", " ", " ", " ", ", ", ". ", "\n", "\n\n", "  ", "\t", "    "}
	var sb strings.Builder
	for sb.Len() < 1<<20 {
		sb.WriteString(words[r.IntN(len(words))])
		sb.WriteString(seps[r.IntN(len(seps))])
	}
	return sb.String()
}

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// reportCPU adds MB per CPU-second, which stays meaningful on a loaded machine where MB/s (wall) does not.
func reportCPU(b *testing.B, bytes int, cpu0 float64) {
	if d := cpuSeconds() - cpu0; d > 0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/1e6/d, "MB/cpu-s")
	}
}

// BenchmarkEncode measures encode throughput (MB/s) on ~1 MB of text with each fixture tokenizer.
// The pre-token cache is warm after the first iteration, as it is in a long run.
func BenchmarkEncode(b *testing.B) {
	text := benchText()
	for _, style := range styles {
		tok := loadFixture(b, style)
		b.Run(style, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			cpu0 := cpuSeconds()
			for b.Loop() {
				tok.Encode(text)
			}
			reportCPU(b, len(text), cpu0)
		})
	}
}

// BenchmarkEncodeCold is BenchmarkEncode with an empty pre-token cache at every iteration.
func BenchmarkEncodeCold(b *testing.B) {
	text := benchText()
	for _, style := range styles {
		tok := loadFixture(b, style)
		b.Run(style, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			cpu0 := cpuSeconds()
			for b.Loop() {
				tok.model.mu.Lock()
				clear(tok.model.cache)
				tok.model.mu.Unlock()
				tok.Encode(text)
			}
			reportCPU(b, len(text), cpu0)
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	text := benchText()
	tok := loadFixture(b, "llama3")
	ids := tok.Encode(text)
	b.SetBytes(int64(len(text)))
	cpu0 := cpuSeconds()
	for b.Loop() {
		tok.Decode(ids)
	}
	reportCPU(b, len(text), cpu0)
}

// TestKnownPatternsUseScanner makes sure the fixture tokenizers (real Qwen2/Llama-3/GPT-2 patterns) take the fast path.
func TestKnownPatternsUseScanner(t *testing.T) {
	for _, style := range styles {
		tok := loadFixture(t, style)
		found := false
		var walk func(p preTokenizer)
		walk = func(p preTokenizer) {
			switch p := p.(type) {
			case *sequencePre:
				for _, s := range p.steps {
					walk(s)
				}
			case *splitPre:
				_, ok := p.m.(*scanMatcher)
				found = found || ok
			case *byteLevelPre:
				if p.split != nil {
					_, ok := p.split.m.(*scanMatcher)
					found = found || ok
				}
			}
		}
		walk(tok.pre)
		if !found {
			t.Errorf("%s: the split pattern is not handled by the scanner", style)
		}
	}
}

// FuzzScanner checks the hand-written scanner against regexp2 on the same pattern.
func FuzzScanner(f *testing.F) {
	for _, style := range styles {
		for _, c := range loadCases(f, style, "cases.json") {
			f.Add(c.Text)
		}
		for _, c := range loadCases(f, style, "cases_corpus.json") {
			f.Add(c.Text)
		}
	}
	f.Add("'S 'Re 'LL 'x ' \t\r\n \n\n  \u00a0\u3000x 12345 ²³ a1b2 \x00\x1c\x85 \xff\xfe 'll")
	patterns := []string{gpt2Pattern, qwen2Pattern, llama3Pattern}
	var regexes []*regexMatcher
	var scanners []matcher
	for _, p := range patterns {
		re, err := newRegexMatcher(p)
		if err != nil {
			f.Fatal(err)
		}
		regexes = append(regexes, re)
		sc, _ := knownMatcher(p)
		scanners = append(scanners, sc)
	}
	collect := func(m matcher, s string) [][2]int {
		var out [][2]int
		m.find(s, func(a, b int) { out = append(out, [2]int{a, b}) })
		return out
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i := range patterns {
			want := collect(regexes[i], s)
			got := collect(scanners[i], s)
			if !slices.Equal(got, want) {
				t.Errorf("pattern %d on %q:\n scanner %v\n regexp2 %v", i, s, got, want)
			}
		}
	})
}
