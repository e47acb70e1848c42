package longbench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
	"github.com/snapeval/snapeval/eval"
)

// officialTok is a tokenizer of testdata/tokenizers (see the README there) and what pred.py's tokenizer does with it.
type officialTok struct {
	name string
	// bos is the token the post-processor puts before every encode(text) ("" when it adds none).
	bos string
	// special is special-token text a document may contain, which the official decode drops.
	special string
	// cleanUp is tokenizer_config.json's clean_up_tokenization_spaces.
	cleanUp bool
}

var officialToks = []officialTok{
	{name: "llama3", bos: "<|begin_of_text|>", special: "<|eot_id|>", cleanUp: true}, // Llama-3.x
	{name: "chatml", special: "<|im_end|>"},                                          // Qwen2.5
}

func loadTok(t *testing.T, name string) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(filepath.Join("testdata", "tokenizers", name, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// longRow is a LongBench-v2 row whose document holds special-token text and the spaces before punctuation that
// transformers' clean_up_tokenization deletes, spread over its whole length.
func longRow(special string, paragraphs int) Row {
	var doc strings.Builder
	for i := range paragraphs {
		fmt.Fprintf(&doc, "Paragraph %d : the ledger 's entry is %d . It is n't late , is it ? ", i, i*7)
		if i%4 == 0 {
			doc.WriteString(special + " ")
		}
	}
	return Row{ID: "long", Difficulty: "hard", Length: "long", Answer: "B", Question: "Which entry is late ?",
		ChoiceA: "0", ChoiceB: "7", ChoiceC: "14", ChoiceD: "none", Context: doc.String()}
}

// official is pred.py's query_llm truncation written out with the tokenizer's primitives, independently of
// Truncate:
//
//	input_ids = tokenizer.encode(prompt)
//	if len(input_ids) > max_len:
//	    input_ids = input_ids[:max_len//2] + input_ids[-max_len//2:]
//	    prompt = tokenizer.decode(input_ids, skip_special_tokens=True)
func official(t *testing.T, tok *tokenizer.Tokenizer, ot officialTok, prompt string, maxLen int) (string, []int, bool) {
	t.Helper()
	// tokenizer.encode(prompt): add_special_tokens=True puts the post-processor's BOS (if any) before the text's ids.
	var inputIDs []int
	if ot.bos != "" {
		id, ok := tok.TokenID(ot.bos)
		if !ok {
			t.Fatalf("%s: no %s", ot.name, ot.bos)
		}
		inputIDs = append(inputIDs, id)
	}
	inputIDs = append(inputIDs, tok.Encode(prompt)...)
	if len(inputIDs) <= maxLen {
		return prompt, inputIDs, false
	}
	// input_ids[:max_len//2]: max_len//2 ids. input_ids[-max_len//2:]: Python parses -max_len//2 as (-max_len)//2,
	// floored, so the tail keeps ceil(max_len/2) = (max_len+1)/2 ids.
	kept := slices.Concat(inputIDs[:maxLen/2], inputIDs[len(inputIDs)-(maxLen+1)/2:])
	// decode(..., skip_special_tokens=True): special tokens are not decoded ...
	var text []int
	for _, id := range kept {
		if !tok.IsSpecial(id) {
			text = append(text, id)
		}
	}
	s := tok.Decode(text)
	// ... and with clean_up_tokenization_spaces, transformers' clean_up_tokenization runs on the text.
	if ot.cleanUp {
		s = strings.ReplaceAll(s, " .", ".")
		s = strings.ReplaceAll(s, " ?", "?")
		s = strings.ReplaceAll(s, " !", "!")
		s = strings.ReplaceAll(s, " ,", ",")
		s = strings.ReplaceAll(s, " ' ", "'")
		s = strings.ReplaceAll(s, " n't", "n't")
		s = strings.ReplaceAll(s, " 'm", "'m")
		s = strings.ReplaceAll(s, " 's", "'s")
		s = strings.ReplaceAll(s, " 've", "'ve")
		s = strings.ReplaceAll(s, " 're", "'re")
	}
	return s, inputIDs, true
}

// TestTruncateOfficial checks LongBench-v2 items whose prompts exceed max_len against pred.py's construction, for a
// tokenizer whose post-processor adds BOS (Llama-3 style, clean_up_tokenization_spaces true) and one that adds
// nothing (Qwen2.5 style, clean-up false), at odd and even max_len and at the edges of the decision to truncate.
func TestTruncateOfficial(t *testing.T) {
	for _, ot := range officialToks {
		tok := loadTok(t, ot.name)
		row := longRow(ot.special, 120)
		tmpl, _ := Template(Mode0Shot)
		full := Render(tmpl, row)
		body := len(tok.Encode(full)) // the ids of the text alone (add_special_tokens=False)
		if body < 1000 {
			t.Fatalf("%s: the prompt has only %d tokens", ot.name, body)
		}
		hasBOS := ot.bos != ""
		tests := []struct {
			name     string
			maxLen   int
			truncate bool
		}{
			{"odd", 301, true},
			{"even", 300, true},
			{"two", 2, true},
			// The text alone fits exactly: the BOS that encode adds tips it over for Llama-3.
			{"body fits", body, hasBOS},
			{"body plus BOS fits", body + 1, false},
			{"one short of body", body - 1, true},
		}
		for _, tc := range tests {
			t.Run(ot.name+"/"+tc.name, func(t *testing.T) {
				want, inputIDs, wantCut := official(t, tok, ot, full, tc.maxLen)
				if wantCut != tc.truncate {
					t.Fatalf("the official script truncates = %v, the test expects %v", wantCut, tc.truncate)
				}
				got, before, after := Truncate(tok, full, tc.maxLen)
				if before != len(inputIDs) {
					t.Errorf("tokens before = %d, want %d (encode with special tokens)", before, len(inputIDs))
				}
				if got != want {
					t.Fatalf("truncated prompt differs from pred.py's:\n--- got (%d bytes)\n%.300s\n--- want (%d bytes)\n%.300s",
						len(got), got, len(want), want)
				}
				if !wantCut {
					if got != full || after != before {
						t.Errorf("a prompt of max_len tokens or fewer must come back untouched (after %d)", after)
					}
					return
				}
				if after != tc.maxLen {
					t.Errorf("kept %d ids, want max_len %d", after, tc.maxLen)
				}
				if strings.Contains(got, ot.special) || (hasBOS && strings.Contains(got, ot.bos)) {
					t.Errorf("special-token text survived the decode")
				}
				if tc.maxLen > 100 && strings.Contains(got, " .") == ot.cleanUp {
					t.Errorf("clean_up_tokenization_spaces=%v, but \" .\" present = %v", ot.cleanUp, !ot.cleanUp)
				}
				if hasBOS && inputIDs[0] != mustID(t, tok, ot.bos) {
					t.Errorf("encode does not start with %s", ot.bos)
				}
			})
		}
		// Not truncated, not decoded: the special-token text of the document stays.
		if got, _, _ := Truncate(tok, full, body+1); !strings.Contains(got, ot.special) {
			t.Errorf("%s: an untruncated prompt lost its special-token text", ot.name)
		}
	}
}

func mustID(t *testing.T, tok *tokenizer.Tokenizer, s string) int {
	t.Helper()
	id, ok := tok.TokenID(s)
	if !ok {
		t.Fatalf("no token %q", s)
	}
	return id
}

// TestItemsTruncateOfficially runs the same through the benchmark: data file, max_len option, items, requests, and
// the CoT answer pass, which pred.py truncates like every query.
func TestItemsTruncateOfficially(t *testing.T) {
	for _, ot := range officialToks {
		t.Run(ot.name, func(t *testing.T) {
			tok := loadTok(t, ot.name)
			row := longRow(ot.special, 60)
			short := Row{ID: "short", Difficulty: "easy", Length: "short", Answer: "A", Question: "Q ?", ChoiceA: "a",
				ChoiceB: "b", ChoiceC: "c", ChoiceD: "d", Context: "A short text " + ot.special + " ."}
			dir := t.TempDir()
			raw, _ := json.Marshal([]Row{row, short})
			file := filepath.Join(dir, "data.json")
			if err := os.WriteFile(file, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, mode := range []string{Mode0Shot, Mode0ShotCoT} {
				b, err := New(eval.BenchOptions{Files: []string{file}, Options: map[string]string{"max_len": "257", "mode": mode}})
				if err != nil {
					t.Fatal(err)
				}
				items, err := b.Items(context.Background(), tok)
				if err != nil {
					t.Fatal(err)
				}
				tmpl, _ := Template(mode)
				for i, r := range []Row{row, short} {
					want, ids, cut := official(t, tok, ot, Render(tmpl, r), 257)
					req, err := b.Request(items[i])
					if err != nil {
						t.Fatal(err)
					}
					if got := req.Messages[0].Content; got != want {
						t.Errorf("%s %s: the request differs from pred.py's prompt", mode, r.ID)
					}
					tr, ok := items[i].Data.(eval.Truncated).Truncation()
					kept := len(ids)
					if cut {
						kept = 257
					}
					if !ok || tr.Truncated != cut || tr.TokensBefore != len(ids) || tr.TokensAfter != kept {
						t.Errorf("%s %s: truncation %+v (ok %v), want cut %v, %d -> %d", mode, r.ID, tr, ok, cut, len(ids), kept)
					}
				}
				if mode != Mode0ShotCoT {
					continue
				}
				// A reasoning long enough to push the answer pass over max_len is cut like any query.
				reasoning := strings.Repeat("The ledger 's entry is late . ", 80)
				req, ok, err := b.FollowUp(items[1], reasoning)
				if err != nil || !ok {
					t.Fatal(ok, err)
				}
				want, _, cut := official(t, tok, ot, RenderCoTAnswer(short, strings.TrimSpace(reasoning)), 257)
				if !cut || req.Messages[0].Content != want {
					t.Errorf("the answer pass is not truncated as pred.py truncates it (cut %v)", cut)
				}
			}
		})
	}
}

// TestTruncateGolden pins a truncated prompt of each tokenizer (go test -update rewrites them).
func TestTruncateGolden(t *testing.T) {
	for _, ot := range officialToks {
		tok := loadTok(t, ot.name)
		tmpl, _ := Template(Mode0Shot)
		got, before, after := Truncate(tok, Render(tmpl, longRow(ot.special, 40)), 201)
		golden(t, "truncate_"+ot.name+"_201.golden", fmt.Appendf(nil, "tokens %d -> %d\n%s", before, after, got))
	}
}
