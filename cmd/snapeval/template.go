package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/chat"
)

// templateOptions are the flags of `snapeval template`.
type templateOptions struct {
	TokenizerConfig string
	Model           string
	Template        string
	Style           string
	Name            string
	Now             string
	In              io.Reader
	Out             io.Writer
}

func init() {
	o := &templateOptions{}
	cmd := &cobra.Command{
		Use:   "template (--tokenizer-config FILE | --model DIR | --template FILE | --style STYLE)",
		Short: "Render a conversation (JSON on stdin) with a model's chat template, exactly as transformers does",
		Long: `template reads a conversation as JSON on stdin,
  {"messages": [...], "add_generation_prompt": true, "tools": [...], "vars": {"date_string": "26 Jul 2024"}}
and prints the prompt the model's chat template renders, byte for byte as transformers'
apply_chat_template(tokenize=False) renders it, with no added newline. The template is the model's own:
--model DIR finds it as transformers does (chat_template.jinja, else tokenizer_config.json's chat_template);
--tokenizer-config FILE reads it from a tokenizer_config.json. --template FILE renders a Jinja file and
--style a built-in template instead (with --model's or --tokenizer-config's special tokens, if given).
--name picks one of several named templates. strftime_now reads --now (default: the current time).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.In, o.Out = cmd.InOrStdin(), cmd.OutOrStdout()
			return runTemplate(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.TokenizerConfig, "tokenizer-config", "", "a tokenizer_config.json holding the chat template and special tokens")
	f.StringVar(&o.Model, "model", "", "a model directory (chat_template.jinja, tokenizer_config.json, ...)")
	f.StringVar(&o.Template, "template", "", "a Jinja chat template file to render instead of the model's")
	f.StringVar(&o.Style, "style", "", "a built-in template to render instead of the model's (chatml, qwen2.5, smollm2, llama3, llama3.1, deepseek-r1)")
	f.StringVar(&o.Name, "name", "", `the model's named template to use (default: "default", or "tool_use" when the conversation has tools)`)
	f.StringVar(&o.Now, "now", "", "strftime_now's clock: RFC 3339 or YYYY-MM-DD (default: now)")
	rootCmd.AddCommand(cmd)
}

func runTemplate(o *templateOptions) error {
	if o.TokenizerConfig != "" && o.Model != "" {
		return usageErrorf("template: give --tokenizer-config or --model, not both")
	}
	if o.Template != "" && o.Style != "" {
		return usageErrorf("template: give --template or --style, not both")
	}
	if o.TokenizerConfig == "" && o.Model == "" && o.Template == "" && o.Style == "" {
		return usageErrorf("template: give --tokenizer-config FILE, --model DIR, --template FILE or --style STYLE")
	}
	if o.Name != "" && (o.Template != "" || o.Style != "") {
		return usageErrorf("template: --name picks one of the model's templates; it does not apply to --template or --style")
	}
	now := time.Now()
	if o.Now != "" {
		t, err := time.Parse(time.RFC3339, o.Now)
		if err != nil {
			if t, err = time.ParseInLocation("2006-01-02", o.Now, time.Local); err != nil {
				return usageErrorf("template: --now %q: want RFC 3339 or YYYY-MM-DD", o.Now)
			}
		}
		now = t
	}
	in, err := io.ReadAll(o.In)
	if err != nil {
		return err
	}
	conv, err := chat.ParseConversation(in)
	if err != nil {
		return usageErrorf("template: stdin: %v", err)
	}
	tmpl, err := loadTemplate(o, chat.Choice{Name: o.Name, Tools: conv.Tools != nil})
	if err != nil {
		return err
	}
	tmpl.Now = func() time.Time { return now }
	text, err := tmpl.Render(conv)
	if err != nil {
		return err
	}
	_, err = io.WriteString(o.Out, text)
	return err
}

// loadTemplate finds the template the options ask for, with the special tokens of the model or config.
func loadTemplate(o *templateOptions, choice chat.Choice) (*chat.Template, error) {
	tokens := map[string]any{}
	var own *chat.Template
	var ownErr error
	switch {
	case o.TokenizerConfig != "":
		b, err := os.ReadFile(o.TokenizerConfig)
		if err != nil {
			return nil, err
		}
		if tokens, err = chat.SpecialTokens(b, o.TokenizerConfig); err != nil {
			return nil, err
		}
		own, ownErr = chat.FromTokenizerConfig(b, o.TokenizerConfig, choice)
	case o.Model != "":
		own, ownErr = chat.Load(os.DirFS(o.Model), ".", choice)
		if own != nil {
			tokens = own.Tokens
		} else if b, err := os.ReadFile(filepath.Join(o.Model, "tokenizer_config.json")); err == nil {
			if tokens, err = chat.SpecialTokens(b, filepath.Join(o.Model, "tokenizer_config.json")); err != nil {
				return nil, err
			}
		}
		if ownErr != nil {
			ownErr = fmt.Errorf("%s: %w", o.Model, ownErr)
		}
	}
	switch {
	case o.Style != "":
		return chat.Builtin(o.Style, tokens)
	case o.Template != "":
		b, err := os.ReadFile(o.Template)
		if err != nil {
			return nil, err
		}
		return chat.New(o.Template, string(b), tokens)
	}
	if errors.Is(ownErr, chat.ErrNoTemplate) {
		return nil, fmt.Errorf("%w (render with --template FILE or --style STYLE)", ownErr)
	}
	return own, ownErr
}
