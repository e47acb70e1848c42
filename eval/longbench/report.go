package longbench

import (
	"fmt"
	"strings"

	"github.com/snapeval/snapeval/eval"
)

// Cell is the accuracy of one group of records.
type Cell struct {
	// Graded is the number of graded records (the official denominator); Errors the failed calls, kept apart.
	Graded, Errors int
	// Correct counts correct answers; NoAnswer the graded outputs with nothing extracted.
	Correct, NoAnswer int
	// Acc is the official accuracy in percent: Correct (plus 0.25 per NoAnswer when compensated) / Graded.
	Acc float64
	// AccAll counts every error as a wrong answer: Correct(+comp.) / (Graded + Errors). Never hidden in reports.
	AccAll float64
}

// Summary is the official LongBench-v2 breakdown of one policy's records.
type Summary struct {
	Policy      string
	Compensated bool
	Overall     Cell
	// ByDifficulty has keys easy and hard; ByLength short, medium and long.
	ByDifficulty map[string]Cell
	ByLength     map[string]Cell
}

// Summarize computes the official breakdown over the records of one policy (all records when policy is "").
// With compensated, an unanswered output counts 0.25 (the official "compensated" mode for guessing).
func Summarize(records []eval.Record, policy string, compensated bool) Summary {
	s := Summary{Policy: policy, Compensated: compensated, ByDifficulty: map[string]Cell{}, ByLength: map[string]Cell{}}
	type acc struct{ graded, errors, correct, noAns int }
	var all acc
	diff := map[string]*acc{"easy": {}, "hard": {}}
	length := map[string]*acc{"short": {}, "medium": {}, "long": {}}
	add := func(a *acc, r eval.Record) {
		if a == nil {
			return
		}
		switch {
		case r.IsError():
			a.errors++
		default:
			a.graded++
			if r.Correct {
				a.correct++
			} else if r.Extracted == "" {
				a.noAns++
			}
		}
	}
	for _, r := range records {
		if r.Bench != "" && r.Bench != Name {
			continue
		}
		if policy != "" && r.Policy != policy {
			continue
		}
		tags := ParseTags(r.Tags)
		add(&all, r)
		add(diff[tags["difficulty"]], r)
		add(length[tags["length"]], r)
	}
	cell := func(a acc) Cell {
		c := Cell{Graded: a.graded, Errors: a.errors, Correct: a.correct, NoAnswer: a.noAns}
		num := float64(a.correct)
		if compensated {
			num += 0.25 * float64(a.noAns)
		}
		if a.graded > 0 {
			c.Acc = 100 * num / float64(a.graded)
		}
		if a.graded+a.errors > 0 {
			c.AccAll = 100 * num / float64(a.graded+a.errors)
		}
		return c
	}
	s.Overall = cell(all)
	for k, v := range diff {
		s.ByDifficulty[k] = cell(*v)
	}
	for k, v := range length {
		s.ByLength[k] = cell(*v)
	}
	return s
}

// SummarizeByPolicy summarizes each policy found in records, sorted with "full" first.
func SummarizeByPolicy(records []eval.Record, compensated bool) []Summary {
	pols := eval.PoliciesOf(records, Name)
	out := make([]Summary, len(pols))
	for i, p := range pols {
		out[i] = Summarize(records, p, compensated)
	}
	return out
}

// ParseTags splits a Record.Tags string ("k=v;k=v") into a map.
func ParseTags(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// Header is the column header of Row, in the official order.
const Header = "| policy | overall | easy | hard | short | medium | long | graded | errors |"

// Row formats the summary as one Markdown table row, accuracies with one decimal as the official script prints.
func (s Summary) Row() string {
	return fmt.Sprintf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %d |",
		s.Policy, s.Overall.Acc, s.ByDifficulty["easy"].Acc, s.ByDifficulty["hard"].Acc,
		s.ByLength["short"].Acc, s.ByLength["medium"].Acc, s.ByLength["long"].Acc,
		s.Overall.Graded, s.Overall.Errors)
}
