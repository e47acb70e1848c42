package livecodebench

import (
	"fmt"

	"github.com/snapeval/snapeval/llm"
)

// Official wording from lcb_runner/prompts/code_generation.py (LiveCodeBench at 28fef95e).
const (
	SystemMessage = "You are an expert Python programmer. You will be given a question (problem specification) and will generate a correct Python program that matches the specification and passes all tests."

	formatWithStarter    = "You will use the following starter code to write the solution to the problem and enclose your code within delimiters."
	formatWithoutStarter = "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT."
)

// Prompt styles.
const (
	// StyleChat is the official chat prompt (OpenAIChat, DeepSeekAPI, LLaMa3, ...): system + user turn.
	StyleChat = "chat"
	// StyleUser is the official single-user-turn prompt (OpenAIReasonPreview): system text, blank line, question.
	StyleUser = "user"
	// StyleR1 is the official DeepSeekR1 question template as one user turn with no system prompt (the chat
	// template adds the special tokens the official raw prompt spells out).
	StyleR1 = "r1"
)

// GenericQuestion is the official get_generic_question_template_answer.
func GenericQuestion(content, starter string) string {
	s := "### Question:\n" + content + "\n\n"
	if starter != "" {
		s += "### Format: " + formatWithStarter + "\n"
		s += "```python\n" + starter + "\n```\n\n"
	} else {
		s += "### Format: " + formatWithoutStarter + "\n"
		s += "```python\n# YOUR CODE HERE\n```\n\n"
	}
	return s + "### Answer: (use the provided format with backticks)\n\n"
}

// R1Question is the official get_deepseek_r1_question_template_answer without its special tokens.
func R1Question(content, starter string) string {
	s := "You will be given a question (problem specification) and will generate a correct Python program that matches the specification and passes all tests.\n\n"
	s += "Question: " + content + "\n\n"
	if starter != "" {
		s += formatWithStarter + "\n"
		s += "```python\n" + starter + "\n```\n\n"
	} else {
		s += formatWithoutStarter + "\n"
		s += "```python\n# YOUR CODE HERE\n```\n\n"
	}
	return s
}

// Messages renders a problem's prompt in a style.
func Messages(style, content, starter string) ([]llm.Message, error) {
	switch style {
	case StyleChat, "":
		return []llm.Message{{Role: "system", Content: SystemMessage}, {Role: "user", Content: GenericQuestion(content, starter)}}, nil
	case StyleUser:
		return []llm.Message{{Role: "user", Content: SystemMessage + "\n\n" + GenericQuestion(content, starter)}}, nil
	case StyleR1:
		return []llm.Message{{Role: "user", Content: R1Question(content, starter)}}, nil
	}
	return nil, fmt.Errorf("livecodebench: prompt style %q (want %s, %s or %s)", style, StyleChat, StyleUser, StyleR1)
}
