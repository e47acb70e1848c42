package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// styles are the conformance fixture folders copied from ../shared/conformance/tokenizers.
var styles = []string{"chatml", "llama3", "gpt2"}

type tokCase struct {
	Text    string `json:"text"`
	IDs     []int  `json:"ids"`
	Decoded string `json:"decoded"`
}

func loadFixture(t testing.TB, style string) *Tokenizer {
	t.Helper()
	tok, err := Load(filepath.Join("testdata", style, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func loadCases(t testing.TB, style, file string) []tokCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", style, file))
	if err != nil {
		t.Fatal(err)
	}
	var cases []tokCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatalf("%s/%s: no cases", style, file)
	}
	return cases
}

// TestConformance checks every fixture case: ids exact and decoded text exact.
func TestConformance(t *testing.T) {
	for _, style := range styles {
		tok := loadFixture(t, style)
		for _, file := range []string{"cases.json", "cases_corpus.json"} {
			for i, c := range loadCases(t, style, file) {
				got := tok.Encode(c.Text)
				if !slices.Equal(got, c.IDs) {
					t.Errorf("%s/%s[%d] Encode(%q)\n got  %v\n want %v", style, file, i, c.Text, got, c.IDs)
				}
				if dec := tok.Decode(c.IDs); dec != c.Decoded {
					t.Errorf("%s/%s[%d] Decode = %q, want %q", style, file, i, dec, c.Decoded)
				}
			}
		}
	}
}

// TestConformanceShared runs the same check on ../shared when present, so a stale copy in testdata is noticed.
func TestConformanceShared(t *testing.T) {
	root := filepath.Join("..", "..", "..", "..", "shared", "conformance", "tokenizers")
	if _, err := os.Stat(root); err != nil {
		t.Skip("../shared absent")
	}
	for _, style := range styles {
		for _, file := range []string{"tokenizer.json", "cases.json", "cases_corpus.json"} {
			a, err := os.ReadFile(filepath.Join(root, style, file))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join("testdata", style, file))
			if err != nil {
				t.Fatal(err)
			}
			if string(a) != string(b) {
				t.Errorf("testdata/%s/%s differs from ../shared: refresh the copy", style, file)
			}
		}
	}
}

func TestSpecialTokensInText(t *testing.T) {
	tok := loadFixture(t, "chatml")
	start, _ := tok.TokenID("<|im_start|>")
	end, _ := tok.TokenID("<|im_end|>")
	ids := tok.Encode("<|im_start|>user\nhi<|im_end|>")
	if ids[0] != start || ids[len(ids)-1] != end {
		t.Fatalf("special tokens not matched whole: %v", ids)
	}
	if got := tok.DecodeSkipSpecial(ids); got != "user\nhi" {
		t.Errorf("DecodeSkipSpecial = %q", got)
	}
	if got := tok.Decode(ids); got != "<|im_start|>user\nhi<|im_end|>" {
		t.Errorf("Decode = %q", got)
	}
	// A broken special token is ordinary text.
	if ids := tok.Encode("<|im_sta"); slices.Contains(ids, start) {
		t.Errorf("partial special token matched: %v", ids)
	}
}

func TestTokenIDAndVocab(t *testing.T) {
	tests := []struct {
		style, token string
		id           int
		size         int
	}{
		{"chatml", "<|endoftext|>", 0, 1200},
		{"llama3", "<|eot_id|>", 4, 1500},
		{"gpt2", "<|im_end|>", 2, 1000},
	}
	for _, tc := range tests {
		tok := loadFixture(t, tc.style)
		id, ok := tok.TokenID(tc.token)
		if !ok || id != tc.id {
			t.Errorf("%s TokenID(%q) = %d, %v; want %d", tc.style, tc.token, id, ok, tc.id)
		}
		if tok.VocabSize() != tc.size {
			t.Errorf("%s VocabSize = %d, want %d", tc.style, tok.VocabSize(), tc.size)
		}
		if !tok.IsSpecial(tc.id) {
			t.Errorf("%s: %q not special", tc.style, tc.token)
		}
		if _, ok := tok.TokenID("definitely-not-a-token"); ok {
			t.Errorf("%s: unknown token found", tc.style)
		}
	}
}

// TestStreamDecoder feeds ids one at a time: no delta may end inside a UTF-8 character, and the
// deltas concatenate to Decode.
func TestStreamDecoder(t *testing.T) {
	texts := []string{
		"emoji 🙂🚀 mixed 😀x",
		"東京は日本の首都です。",
		"😶\u200d🌫️ 🦙 ﬁ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
		"Привет, мир! 안녕하세요",
		"<|im_start|>user\n東京 🙂<|im_end|>",
	}
	for _, style := range styles {
		tok := loadFixture(t, style)
		for _, text := range texts {
			ids := tok.Encode(text)
			for _, skip := range []bool{false, true} {
				d := tok.NewStreamDecoder()
				d.SkipSpecial = skip
				var sb strings.Builder
				held := false
				for _, id := range ids {
					delta := d.Add(id)
					if !utf8.ValidString(delta) || strings.ContainsRune(delta, utf8.RuneError) {
						t.Errorf("%s %q: delta %q is not whole characters", style, text, delta)
					}
					held = held || d.Pending()
					sb.WriteString(delta)
				}
				sb.WriteString(d.Flush())
				want := tok.Decode(ids)
				if skip {
					want = tok.DecodeSkipSpecial(ids)
				}
				if sb.String() != want {
					t.Errorf("%s %q skip=%v: stream %q, Decode %q", style, text, skip, sb.String(), want)
				}
				if !held && style != "llama3" {
					// The small fixture vocabularies split multi-byte characters across tokens.
					t.Errorf("%s %q: no character was ever split across tokens; the test proves nothing", style, text)
				}
			}
		}
	}
}

func TestStreamDecoderInvalidBytes(t *testing.T) {
	tok := loadFixture(t, "gpt2")
	// Byte-level tokens for the bytes E2 82 (an unfinished "€") then "A".
	var ids []int
	for _, b := range []byte{0xE2, 0x82, 'A', 0xF0, 0x9F} {
		id, ok := tok.TokenID(string(byteToRune[b]))
		if !ok {
			t.Fatalf("byte %x not in vocab", b)
		}
		ids = append(ids, id)
	}
	d := tok.NewStreamDecoder()
	var sb strings.Builder
	for _, id := range ids {
		sb.WriteString(d.Add(id))
	}
	if !d.Pending() {
		t.Error("trailing F0 9F should be held")
	}
	sb.WriteString(d.Flush())
	want := "\uFFFDA\uFFFD" // maximal subparts: E2 82 -> one U+FFFD, F0 9F -> one U+FFFD
	if sb.String() != want || tok.Decode(ids) != want {
		t.Errorf("stream %q, Decode %q, want %q", sb.String(), tok.Decode(ids), want)
	}
}

func TestLossyUTF8(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{[]byte("abc"), "abc"},
		{[]byte{0xE2, 0x82, 'A'}, "\uFFFDA"},
		{[]byte{0x80, 0x80}, "\uFFFD\uFFFD"},
		{[]byte{0xF0, 0x80, 0x80}, "\uFFFD\uFFFD\uFFFD"}, // F0 80 is never valid
		{[]byte{0xED, 0xA0, 0x80}, "\uFFFD\uFFFD\uFFFD"}, // surrogate
		{[]byte{0xF4, 0x8F, 0xBF}, "\uFFFD"},
		{[]byte{0xC0, 0xAF}, "\uFFFD\uFFFD"},
		{[]byte{0xE6, 0x9D, 0xB1, 0xFF}, "東\uFFFD"},
	}
	for _, tc := range tests {
		if got := lossyUTF8(tc.in); got != tc.want {
			t.Errorf("lossyUTF8(% x) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok := loadFixture(t, "llama3")
	cases := loadCases(t, "llama3", "cases_corpus.json")
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 5; r++ {
				for _, c := range cases {
					if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
						t.Errorf("concurrent Encode(%q) = %v", c.Text, got)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestCheckIDs: ids outside the vocabulary, or in a hole of it, are named; Decode would skip them silently.
func TestCheckIDs(t *testing.T) {
	tok := loadFixture(t, "chatml")
	if err := tok.CheckIDs([]int{0, 5, tok.VocabSize() - 1}); err != nil {
		t.Errorf("known ids: %v", err)
	}
	for _, ids := range [][]int{{1, tok.VocabSize()}, {-1}, {1 << 30}} {
		bad := ids[len(ids)-1]
		err := tok.CheckIDs(ids)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("id %d (at index %d)", bad, len(ids)-1)) {
			t.Errorf("CheckIDs(%v) = %v, want an error naming id %d", ids, err, bad)
		}
	}
}
