package main

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
)

// tokenizeCmd encodes stdin with a tokenizer.json, or decodes ids read from stdin.
var tokenizeCmd = &cobra.Command{
	Use:   "tokenize --tokenizer FILE [--decode]",
	Short: "Encode stdin with a tokenizer.json (prints {\"ids\": [...]}), or decode ids (prints {\"text\": ...})",
	Long: `tokenize reads the whole of stdin verbatim and encodes it like Hugging Face
encode(text, add_special_tokens=False) (--special adds the post-processor's tokens, e.g. BOS).
Special tokens written in the text are matched as single tokens.
With --decode, stdin holds token ids (a JSON array, or separated by commas/whitespace) and the
output is decode(ids, skip_special_tokens=False) (--skip-special to drop special tokens).`,
	Args: cobra.NoArgs,
	RunE: runTokenize,
}

var tokenizeFlags struct {
	file        string
	decode      bool
	special     bool
	skipSpecial bool
}

func init() {
	f := tokenizeCmd.Flags()
	f.StringVar(&tokenizeFlags.file, "tokenizer", "", "path to a Hugging Face tokenizer.json (required)")
	f.BoolVar(&tokenizeFlags.decode, "decode", false, "decode token ids from stdin instead of encoding text")
	f.BoolVar(&tokenizeFlags.special, "special", false, "when encoding, add the post-processor's special tokens (add_special_tokens=True)")
	f.BoolVar(&tokenizeFlags.skipSpecial, "skip-special", false, "when decoding, drop special tokens (skip_special_tokens=True)")
	rootCmd.AddCommand(tokenizeCmd)
}

func runTokenize(cmd *cobra.Command, _ []string) error {
	fl := tokenizeFlags
	if fl.file == "" {
		return usageErrorf("tokenize: --tokenizer FILE is required")
	}
	if fl.decode && fl.special {
		return usageErrorf("tokenize: --special applies to encoding, not --decode")
	}
	if !fl.decode && fl.skipSpecial {
		return usageErrorf("tokenize: --skip-special applies to --decode only")
	}
	tok, err := tokenizer.Load(fl.file)
	if err != nil {
		return err
	}
	in, err := io.ReadAll(cmd.InOrStdin())
	if err != nil {
		return err
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetEscapeHTML(false) // keep "<|im_start|>" readable
	if !fl.decode {
		encode := tok.Encode
		if fl.special {
			encode = tok.EncodeWithSpecial
		}
		ids := encode(string(in))
		return enc.Encode(struct {
			IDs []int `json:"ids"`
		}{IDs: ids})
	}
	ids, err := tokenizer.ParseIDs(string(in))
	if err != nil {
		return usageErrorf("tokenize: stdin: %w", err)
	}
	if err := tok.CheckIDs(ids); err != nil {
		return usageErrorf("tokenize: %v", err)
	}
	decode := tok.Decode
	if fl.skipSpecial {
		decode = tok.DecodeSkipSpecial
	}
	text := decode(ids)
	return enc.Encode(struct {
		Text string `json:"text"`
	}{Text: text})
}
