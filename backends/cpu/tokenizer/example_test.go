package tokenizer_test

import (
	"fmt"
	"log"

	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
	"github.com/snapeval/snapeval/chat"
	"github.com/snapeval/snapeval/llm"
)

// Render a conversation with the model's chat template, then encode it: the rendered text holds
// the special tokens itself, so it is encoded without adding any (as apply_chat_template does).
func Example() {
	tok, err := tokenizer.Load("testdata/chatml/tokenizer.json")
	if err != nil {
		log.Fatal(err)
	}
	tmpl, err := chat.Builtin("qwen2.5", nil)
	if err != nil {
		log.Fatal(err)
	}
	prompt, err := tmpl.Render(chat.Conversation{
		Messages:            chat.Messages([]llm.Message{{Role: "user", Content: "What is 2+2?"}}),
		AddGenerationPrompt: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	ids := tok.Encode(prompt)
	start, _ := tok.TokenID("<|im_start|>")
	fmt.Println(ids[0] == start, tok.Decode(ids) == prompt)

	// Stream generated ids back to text without splitting characters.
	d := tok.NewStreamDecoder()
	for _, id := range tok.Encode("東京 🙂") {
		fmt.Printf("%q ", d.Add(id))
	}
	fmt.Printf("%q\n", d.Flush())
	// Output:
	// true true
	// "" "" "東" "" "" "京" " " "" "" "" "🙂" ""
}
