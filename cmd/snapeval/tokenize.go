package main

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
)

// tokenizeOptions are the flags of `snapeval tokenize`.
type tokenizeOptions struct {
	File        string
	Decode      bool
	Special     bool
	SkipSpecial bool
}

func init() {
	o := &tokenizeOptions{}
	cmd := &cobra.Command{
		Use:   "tokenize --tokenizer FILE [--decode]",
		Short: "Encode stdin with a tokenizer.json (prints {\"ids\": [...]}), or decode ids (prints {\"text\": ...})",
		Long: `tokenize reads the whole of stdin verbatim and encodes it like Hugging Face
encode(text, add_special_tokens=False) (--special adds the post-processor's tokens, e.g. BOS).
Special tokens written in the text are matched as single tokens.
With --decode, stdin holds token ids (a JSON array, or separated by commas/whitespace) and the
output is decode(ids, skip_special_tokens=False) (--skip-special to drop special tokens).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTokenize(o, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.File, "tokenizer", "", "path to a Hugging Face tokenizer.json (required)")
	f.BoolVar(&o.Decode, "decode", false, "decode token ids from stdin instead of encoding text")
	f.BoolVar(&o.Special, "special", false, "when encoding, add the post-processor's special tokens (add_special_tokens=True)")
	f.BoolVar(&o.SkipSpecial, "skip-special", false, "when decoding, drop special tokens (skip_special_tokens=True)")
	rootCmd.AddCommand(cmd)
}

// runTokenize encodes stdin (or decodes the ids on stdin) and prints one JSON object on stdout.
func runTokenize(fl *tokenizeOptions, stdin io.Reader, stdout io.Writer) error {
	if fl.File == "" {
		return usageErrorf("tokenize: --tokenizer FILE is required")
	}
	if fl.Decode && fl.Special {
		return usageErrorf("tokenize: --special applies to encoding, not --decode")
	}
	if !fl.Decode && fl.SkipSpecial {
		return usageErrorf("tokenize: --skip-special applies to --decode only")
	}
	tok, err := tokenizer.Load(fl.File)
	if err != nil {
		return err
	}
	in, err := io.ReadAll(stdin)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false) // keep "<|im_start|>" readable
	if !fl.Decode {
		encode := tok.Encode
		if fl.Special {
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
		return usageErrorf("tokenize: %w", err)
	}
	decode := tok.Decode
	if fl.SkipSpecial {
		decode = tok.DecodeSkipSpecial
	}
	text := decode(ids)
	return enc.Encode(struct {
		Text string `json:"text"`
	}{Text: text})
}
