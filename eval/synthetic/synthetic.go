// Package synthetic is snapeval's built-in long-context suite (benchmark "synth"): needle retrieval (single,
// multi-key, multi-value, multi-query), variable tracking and common-word extraction in the manner of RULER's task
// families, generated deterministically from (split, seed, task, length, index) on a haystack of our own generated
// sentences. It is not RULER: the official benchmark, generated as NVIDIA/RULER's scripts do, is "ruler"
// (package eval/ruler).
//
// Prompts are raw text for a base model (no chat template) and end with the question, so a SnapKV observation
// window at the end of the prompt holds the question. Grading follows RULER: each expected value is looked up in the
// output, the score is the recall of expected values and the item is correct when all are found.
package synthetic

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/snapeval/snapeval/llm"
)

// Task names.
const (
	TaskNIAHSingle     = "niah_single"
	TaskNIAHMultiKey   = "niah_multikey"
	TaskNIAHMultiValue = "niah_multivalue"
	TaskNIAHMultiQuery = "niah_multiquery"
	TaskVT             = "vt"
	TaskCWE            = "cwe"
)

// Tasks lists every task in canonical order.
var Tasks = []string{TaskNIAHSingle, TaskNIAHMultiKey, TaskNIAHMultiValue, TaskNIAHMultiQuery, TaskVT, TaskCWE}

// Splits. Items of different splits come from disjoint random streams (the split is hashed into every item's seed).
const (
	SplitEval  = "eval"
	SplitTrain = "train"
)

// DefaultCharsPerToken is the length rule used when no tokenizer is given: one token per 4 bytes of prompt text.
// The prompts are plain ASCII English, for which 4 bytes a token is the usual estimate for BPE tokenizers.
const DefaultCharsPerToken = 4.0

// minLength is the smallest supported target length: below it the template alone does not fit.
const minLength = 128

// Sample is one generated item: the prompt, the expected values and the completion a model should produce.
type Sample struct {
	ID     string `json:"id"`
	Split  string `json:"split"`
	Task   string `json:"task"`
	Length int    `json:"length"`
	Index  int    `json:"index"`
	Prompt string `json:"prompt"`
	// Answers are the expected values; grading is the recall of these in the output.
	Answers []string `json:"answers"`
	// Answer is the completion a model is trained to produce (leading space, values joined by ", " or " ").
	Answer string `json:"answer"`
	// MaxNew is enough new tokens for the answer under the suite's own tokenizer, with room to spare.
	MaxNew int `json:"max_new"`
	// PromptUnits is the measured prompt length: tokens when a tokenizer was given, else bytes/CharsPerToken rounded up.
	PromptUnits int `json:"prompt_units"`
}

// Config selects what to generate.
type Config struct {
	Split   string
	Seed    uint64
	Tasks   []string
	Lengths []int
	// N is the number of items per task and length.
	N int
	// Tok measures prompt lengths in tokens; nil means bytes / CharsPerToken.
	Tok llm.Tokenizer
	// CharsPerToken is the nil-tokenizer length rule (0 means DefaultCharsPerToken).
	CharsPerToken float64
}

// Validate checks a Config and fills in defaults.
func (c *Config) Validate() error {
	if c.Split != SplitEval && c.Split != SplitTrain {
		return fmt.Errorf("synthetic: split %q: want %q or %q", c.Split, SplitEval, SplitTrain)
	}
	if len(c.Tasks) == 0 {
		return fmt.Errorf("synthetic: no tasks")
	}
	for _, t := range c.Tasks {
		if !slices.Contains(Tasks, t) {
			return fmt.Errorf("synthetic: unknown task %q (known: %s)", t, strings.Join(Tasks, ","))
		}
	}
	if len(c.Lengths) == 0 {
		return fmt.Errorf("synthetic: no lengths")
	}
	for _, l := range c.Lengths {
		if l < minLength || l > 1<<20 {
			return fmt.Errorf("synthetic: length %d out of range [%d, %d]", l, minLength, 1<<20)
		}
	}
	if c.N <= 0 {
		return fmt.Errorf("synthetic: n = %d, want > 0", c.N)
	}
	if c.CharsPerToken == 0 {
		c.CharsPerToken = DefaultCharsPerToken
	}
	if c.CharsPerToken < 0.5 || c.CharsPerToken > 64 || math.IsNaN(c.CharsPerToken) {
		return fmt.Errorf("synthetic: chars_per_token %v out of range [0.5, 64]", c.CharsPerToken)
	}
	return nil
}

// ItemID is the stable, readable ID of one item, e.g. "niah_single/1024/007".
func ItemID(task string, length, index int) string {
	return fmt.Sprintf("%s/%d/%03d", task, length, index)
}

// itemRNG derives the random stream of one item from (split, seed, task, length, index).
func itemRNG(split string, seed uint64, task string, length, index int) *rand.Rand {
	h := sha256.Sum256(fmt.Appendf(nil, "snapeval/ruler|%s|%d|%s|%d|%d", split, seed, task, length, index))
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(h[0:8]), binary.LittleEndian.Uint64(h[8:16])))
}

// counter measures text in units: tokens with a tokenizer, else bytes (budgets are converted accordingly).
type counter struct {
	tok llm.Tokenizer
	cpt float64
}

func (c counter) units(s string) int {
	if c.tok != nil {
		return len(c.tok.Encode(s))
	}
	return len(s)
}

// budget converts a target length in tokens to units.
func (c counter) budget(tokens int) int {
	if c.tok != nil {
		return tokens
	}
	return int(float64(tokens) * c.cpt)
}

// tokens converts units to (estimated) tokens.
func (c counter) tokens(units int) int {
	if c.tok != nil {
		return units
	}
	return int(math.Ceil(float64(units) / c.cpt))
}

// GenerateOne generates one item.
func GenerateOne(cfg Config, task string, length, index int) (Sample, error) {
	if err := cfg.Validate(); err != nil {
		return Sample{}, err
	}
	if !slices.Contains(Tasks, task) {
		return Sample{}, fmt.Errorf("synthetic: unknown task %q", task)
	}
	if length < minLength {
		return Sample{}, fmt.Errorf("synthetic: length %d below %d", length, minLength)
	}
	r := itemRNG(cfg.Split, cfg.Seed, task, length, index)
	c := counter{tok: cfg.Tok, cpt: cfg.CharsPerToken}
	var s Sample
	var err error
	switch task {
	case TaskCWE:
		s, err = genCWE(r, c, length)
	default:
		s, err = genNeedles(r, c, task, length)
	}
	if err != nil {
		return Sample{}, fmt.Errorf("synthetic: %s: %w", ItemID(task, length, index), err)
	}
	s.ID = ItemID(task, length, index)
	s.Split = cfg.Split
	s.Task = task
	s.Length = length
	s.Index = index
	return s, nil
}

// Generate generates every item of cfg, ordered by index, then task, then length.
func Generate(cfg Config) ([]Sample, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	out := make([]Sample, 0, len(cfg.Tasks)*len(cfg.Lengths)*cfg.N)
	// Index-major order: the first items cover every task and length, so `snapeval run --limit N` takes a
	// balanced subset of the suite.
	for i := range cfg.N {
		for _, t := range cfg.Tasks {
			for _, l := range cfg.Lengths {
				s, err := GenerateOne(cfg, t, l, i)
				if err != nil {
					return nil, err
				}
				out = append(out, s)
			}
		}
	}
	return out, nil
}
