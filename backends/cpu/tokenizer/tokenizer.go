// Package tokenizer implements Hugging Face tokenizer.json byte-level BPE tokenizers (Qwen2/2.5,
// DeepSeek-R1-Distill, Llama-3.x, SmolLM2, GPT-2 style) in pure Go, producing the same ids as the
// tokenizers library.
//
// Encoding follows tokenizers step by step: added tokens are cut out first (leftmost-longest;
// lstrip, rstrip, single_word and normalized honoured), the normalizer (NFC, NFD, NFKC, NFKD,
// Lowercase, Sequence) runs on the rest, then the pre-tokenizer (Sequence, Split, Digits,
// ByteLevel) and BPE with merges by rank (pair or "a b" form, ignore_merges, a pre-token cache).
// Split regexes run on github.com/dlclark/regexp2 (backtracking, lookahead), except the
// Qwen2, Llama-3 and GPT-2 patterns, which a hand-written scanner matches far faster (FuzzScanner
// checks it against regexp2). Unsupported components (Metaspace, WordPiece, Unigram, Replace, ...)
// are rejected by Parse with an error naming the field.
//
// Chat messages are rendered into text by package chat (the model's own Jinja chat template). A
// rendered prompt already holds its special tokens: encode it with Encode, not EncodeWithSpecial.
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/snapeval/snapeval/llm"
)

// Tokenizer is a loaded tokenizer.json. It is safe for concurrent use.
type Tokenizer struct {
	name string

	normalize normalizer   // nil: none
	pre       preTokenizer // nil: the whole text is one pre-token
	// deferredByteMap: the pre-tokenizer emits raw pieces that Encode maps to byte-level runes.
	deferredByteMap bool
	model           *bpe
	post            template

	// byteLevelDecoder is true for the ByteLevel decoder; false joins tokens with spaces (no decoder).
	byteLevelDecoder bool

	added         []*addedToken
	rawAdded      *addedMatcher // tokens with normalized=false, matched on the raw text
	normAdded     *addedMatcher // tokens with normalized=true, matched on the normalized text
	addedByID     map[int]*addedToken
	addedByString map[string]*addedToken

	idToToken []string // model vocabulary by id ("" for holes)
	idBytes   [][]byte // decoded bytes by id (ByteLevel decoder only)
	vocabSize int

	// cleanUpSpaces is tokenizer_config.json's clean_up_tokenization_spaces (see WithConfig).
	cleanUpSpaces bool
}

var _ llm.SpecialTokenizer = (*Tokenizer)(nil)

// Load reads a tokenizer.json file, and the tokenizer_config.json beside it when there is one (see WithConfig).
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	return t.loadSiblingConfig(path)
}

// Parse builds a Tokenizer from the contents of a tokenizer.json; name (usually the file path)
// prefixes every error.
func Parse(data []byte, name string) (*Tokenizer, error) {
	t, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", name, err)
	}
	t.name = name
	return t, nil
}

func parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if f.Model == nil {
		return nil, errors.New("missing \"model\"")
	}
	t := &Tokenizer{addedByID: map[int]*addedToken{}, addedByString: map[string]*addedToken{}}
	var err error
	if t.model, err = parseModel(f.Model); err != nil {
		return nil, err
	}
	if t.normalize, err = parseNormalizer(f.Normalizer, "normalizer"); err != nil {
		return nil, err
	}
	if t.pre, err = parsePreTokenizer(f.PreTokenizer, "pre_tokenizer"); err != nil {
		return nil, err
	}
	if bl := lastByteLevel(t.pre); bl != nil {
		bl.deferMap = true
		t.deferredByteMap = true
	}
	if t.post, err = parsePostProcessor(f.PostProcessor, "post_processor"); err != nil {
		return nil, err
	}
	if !isNull(f.Decoder) {
		typ, err := componentType(f.Decoder, "decoder")
		if err != nil {
			return nil, err
		}
		if typ != "ByteLevel" {
			return nil, fmt.Errorf("decoder: unsupported type %q (supported: ByteLevel)", typ)
		}
		t.byteLevelDecoder = true
	}

	maxID := -1
	for tok, id := range t.model.vocab {
		if id < 0 {
			return nil, fmt.Errorf("model.vocab[%q]: negative id %d", tok, id)
		}
		maxID = max(maxID, id)
	}
	for i, a := range f.AddedTokens {
		if a.ID == nil {
			return nil, fmt.Errorf("added_tokens[%d]: missing \"id\"", i)
		}
		if *a.ID < 0 {
			return nil, fmt.Errorf("added_tokens[%d]: negative id %d", i, *a.ID)
		}
		if a.Content == "" {
			return nil, fmt.Errorf("added_tokens[%d]: empty \"content\"", i)
		}
		tok := &addedToken{id: *a.ID, content: a.Content, singleWord: a.SingleWord, lstrip: a.LStrip,
			rstrip: a.RStrip, normalized: a.Normalized, special: a.Special}
		t.added = append(t.added, tok)
		t.addedByID[tok.id] = tok
		t.addedByString[tok.content] = tok
		maxID = max(maxID, tok.id)
	}
	if maxID > 1<<24 {
		return nil, fmt.Errorf("token id %d is implausibly large", maxID)
	}
	t.vocabSize = maxID + 1
	t.idToToken = make([]string, t.vocabSize)
	for tok, id := range t.model.vocab {
		t.idToToken[id] = tok
	}

	if t.byteLevelDecoder {
		t.idBytes = make([][]byte, t.vocabSize)
		for id, tok := range t.idToToken {
			if tok != "" {
				t.idBytes[id] = appendByteLevelDecoded(nil, tok)
			}
		}
		for _, a := range t.added {
			t.idBytes[a.id] = appendByteLevelDecoded(nil, a.content)
		}
	}

	var raw, normed []*addedToken
	for _, a := range t.added {
		if a.normalized {
			normed = append(normed, a)
		} else {
			raw = append(raw, a)
		}
	}
	t.rawAdded = newAddedMatcher(raw, func(a *addedToken) string { return a.content })
	t.normAdded = newAddedMatcher(normed, func(a *addedToken) string {
		if t.normalize != nil {
			return t.normalize(a.content)
		}
		return a.content
	})
	// Refused last, so that a malformed component is named first. A tokenizer that encodes text to nothing would
	// make every prompt sized in tokens grow without end.
	if len(t.model.vocab) == 0 {
		return nil, errors.New("model.vocab: empty (such a tokenizer encodes every text to no tokens)")
	}
	if probe := "The quick brown fox, 42."; len(t.Encode(probe)) == 0 {
		return nil, fmt.Errorf("unusable: it encodes %q to no tokens", probe)
	}
	return t, nil
}

// parseModel checks and indexes the BPE model.
func parseModel(mj *modelJSON) (*bpe, error) {
	if mj.Type != "" && mj.Type != "BPE" {
		return nil, fmt.Errorf("model.type: unsupported %q (only BPE)", mj.Type)
	}
	if mj.Vocab == nil {
		return nil, errors.New("model.vocab: missing")
	}

	if mj.ContinuingSubwordPrefix != nil && *mj.ContinuingSubwordPrefix != "" {
		return nil, errors.New("model.continuing_subword_prefix: not supported")
	}
	if mj.EndOfWordSuffix != nil && *mj.EndOfWordSuffix != "" {
		return nil, errors.New("model.end_of_word_suffix: not supported")
	}
	m := &bpe{
		vocab:        mj.Vocab,
		merges:       make(map[uint64]mergeInfo, len(mj.Merges)),
		unkID:        -1,
		fuseUnk:      mj.FuseUnk,
		byteFallback: mj.ByteFallback,
		ignoreMerges: mj.IgnoreMerges,
		cache:        map[string][]int{},
	}
	if mj.UnkToken != nil {
		id, ok := mj.Vocab[*mj.UnkToken]
		if !ok {
			return nil, fmt.Errorf("model.unk_token: %q is not in the vocabulary", *mj.UnkToken)
		}
		m.unkID = id
	}
	for i, raw := range mj.Merges {
		a, b, err := parseMerge(raw, i)
		if err != nil {
			return nil, err
		}
		ia, ok := mj.Vocab[a]
		if !ok {
			return nil, fmt.Errorf("model.merges[%d]: token %q is not in the vocabulary", i, a)
		}
		ib, ok := mj.Vocab[b]
		if !ok {
			return nil, fmt.Errorf("model.merges[%d]: token %q is not in the vocabulary", i, b)
		}
		inew, ok := mj.Vocab[a+b]
		if !ok {
			return nil, fmt.Errorf("model.merges[%d]: merged token %q is not in the vocabulary", i, a+b)
		}
		key := pairKey(ia, ib)
		if _, dup := m.merges[key]; !dup { // the first (lowest) rank wins
			m.merges[key] = mergeInfo{rank: int32(i), newID: int32(inew)}
		}
	}
	return m, nil
}

// Name is the name the tokenizer was parsed under (usually its file path).
func (t *Tokenizer) Name() string { return t.name }

// Encode tokenizes text without adding special tokens (like encode(text, add_special_tokens=False)).
// Special and added tokens written in the text are matched as single tokens.
func (t *Tokenizer) Encode(text string) []int {
	ids := make([]int, 0, len(text)/3+4)
	var scratch []byte
	emit := func(piece string) {
		if t.deferredByteMap {
			scratch = appendByteLevelMapped(scratch[:0], piece)
			ids = t.model.encodeBytes(ids, scratch)
			return
		}
		ids = t.model.encode(ids, piece)
	}
	for _, s := range t.rawAdded.split(nil, text) {
		if s.tok != nil {
			ids = append(ids, s.tok.id)
			continue
		}
		txt := s.text
		if t.normalize != nil {
			txt = t.normalize(txt)
		}
		for _, s2 := range t.normAdded.split(nil, txt) {
			switch {
			case s2.tok != nil:
				ids = append(ids, s2.tok.id)
			case t.pre == nil:
				emit(s2.text)
			default:
				t.pre.apply(s2.text, emit)
			}
		}
	}
	return ids
}

// EncodeWithSpecial tokenizes text and adds the special tokens of the post-processor (for example
// Llama-3's <|begin_of_text|>), like encode(text, add_special_tokens=True).
func (t *Tokenizer) EncodeWithSpecial(text string) []int {
	body := t.Encode(text)
	ids := make([]int, 0, len(t.post.prefix)+len(body)+len(t.post.suffix))
	ids = append(ids, t.post.prefix...)
	ids = append(ids, body...)
	return append(ids, t.post.suffix...)
}

// Decode turns ids back into text, special tokens included (skip_special_tokens=False).
// Unknown ids are skipped; bytes that are not valid UTF-8 become U+FFFD.
func (t *Tokenizer) Decode(ids []int) string { return t.decode(ids, false) }

// DecodeSkipSpecial is Decode with skip_special_tokens=True.
func (t *Tokenizer) DecodeSkipSpecial(ids []int) string { return t.decode(ids, true) }

func (t *Tokenizer) decode(ids []int, skipSpecial bool) string {
	if !t.byteLevelDecoder {
		var toks []string
		for _, id := range ids {
			if tok, ok := t.token(id, skipSpecial); ok {
				toks = append(toks, tok)
			}
		}
		return strings.Join(toks, " ")
	}
	var buf []byte
	for _, id := range ids {
		buf = t.appendBytes(buf, id, skipSpecial)
	}
	return lossyUTF8(buf)
}

// token returns the string of id: an added token's content, else the vocabulary entry.
// ok is false for unknown ids and, when skipSpecial, for special tokens.
func (t *Tokenizer) token(id int, skipSpecial bool) (string, bool) {
	if a, ok := t.addedByID[id]; ok {
		if skipSpecial && a.special {
			return "", false
		}
		return a.content, true
	}
	if id < 0 || id >= len(t.idToToken) || t.idToToken[id] == "" {
		return "", false
	}
	return t.idToToken[id], true
}

// appendBytes appends the decoded bytes of one id (ByteLevel decoder).
func (t *Tokenizer) appendBytes(dst []byte, id int, skipSpecial bool) []byte {
	if id < 0 || id >= len(t.idBytes) || (skipSpecial && t.IsSpecial(id)) {
		return dst
	}
	return append(dst, t.idBytes[id]...)
}

// CheckIDs returns an error naming the first id that is not a token of the vocabulary (added tokens included):
// Decode skips such ids silently.
func (t *Tokenizer) CheckIDs(ids []int) error {
	for i, id := range ids {
		if _, ok := t.token(id, false); !ok {
			return fmt.Errorf("id %d (at index %d) is not in the vocabulary of %s (%d ids)", id, i, t.name, t.vocabSize)
		}
	}
	return nil
}

// TokenID returns the id of a token given in its vocabulary spelling (added tokens by content).
func (t *Tokenizer) TokenID(s string) (int, bool) {
	if a, ok := t.addedByString[s]; ok {
		return a.id, true
	}
	id, ok := t.model.vocab[s]
	return id, ok
}

// Token returns the vocabulary spelling of id (an added token's content for added tokens).
func (t *Tokenizer) Token(id int) (string, bool) { return t.token(id, false) }

// IsSpecial reports whether id is an added token marked special.
func (t *Tokenizer) IsSpecial(id int) bool {
	a, ok := t.addedByID[id]
	return ok && a.special
}

// VocabSize is the number of ids, added tokens included (the highest id plus one).
func (t *Tokenizer) VocabSize() int { return t.vocabSize }
