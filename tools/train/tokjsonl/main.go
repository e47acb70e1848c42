// Command tokjsonl tokenizes synthgen JSONL rows with a Hugging Face tokenizer.json (snapeval's Go tokenizer, the
// same one the cpu backend uses), so that CPU experiments in tools/train need no Python tokenizers package. Each
// output line is {"id","task","length","answers","prompt_ids","answer_ids"}; the ids are encode(text) without
// special tokens, as the training script uses them.
//
//	go run ./tools/train/tokjsonl -tokenizer models/snaptiny/tokenizer.json < rows.jsonl > rows.tok.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
)

type row struct {
	ID      string   `json:"id"`
	Task    string   `json:"task"`
	Length  int      `json:"length"`
	Prompt  string   `json:"prompt"`
	Answer  string   `json:"answer"`
	Answers []string `json:"answers"`
}

type out struct {
	ID        string   `json:"id"`
	Task      string   `json:"task"`
	Length    int      `json:"length"`
	Answers   []string `json:"answers"`
	Answer    string   `json:"answer"`
	PromptIDs []int    `json:"prompt_ids"`
	AnswerIDs []int    `json:"answer_ids"`
}

func main() {
	path := flag.String("tokenizer", "models/snaptiny/tokenizer.json", "tokenizer.json")
	flag.Parse()
	if err := run(*path); err != nil {
		fmt.Fprintln(os.Stderr, "tokjsonl:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	tok, err := tokenizer.Load(path)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	w := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(w)
	line := 0
	for sc.Scan() {
		line++
		var r row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("stdin line %d: %v", line, err)
		}
		o := out{ID: r.ID, Task: r.Task, Length: r.Length, Answers: r.Answers, Answer: r.Answer,
			PromptIDs: tok.Encode(r.Prompt), AnswerIDs: tok.Encode(r.Answer)}
		if err := enc.Encode(o); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("stdin line %d: %v", line+1, err)
	}
	return w.Flush()
}
