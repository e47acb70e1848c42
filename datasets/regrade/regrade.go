// Package regrade re-grades model outputs produced elsewhere with exactly the runner's grader
// (the logic behind `snapeval grade`).
//
// Input is JSON lines: each line is one upstream dataset row (as the benchmark's RowParser reads it) plus a
// string field "output" holding the model's text. Output is JSON lines, one per input line, in order:
//
//	{"line":1,"id":"2024-I-1","extracted":"204","correct":true,"verdict":"correct","score":1,"detail":"..."}
//
// A line whose grading itself fails gets "verdict":"grader_error" and an "error" text; it is counted apart,
// never as a wrong answer.
package regrade

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/snapeval/snapeval/datasets"
	"github.com/snapeval/snapeval/eval"
)

// Line is one output line.
type Line struct {
	Line      int     `json:"line"`
	ID        string  `json:"id"`
	Extracted string  `json:"extracted"`
	Correct   bool    `json:"correct"`
	Verdict   string  `json:"verdict"`
	Score     float64 `json:"score"`
	Detail    string  `json:"detail,omitempty"`
	Error     string  `json:"error,omitempty"`
}

// Stats counts what was graded.
type Stats struct {
	Lines, Correct, GraderErrors int
	Score                        float64
}

// Accuracy is the mean score over graded lines, in percent.
func (s Stats) Accuracy() float64 {
	n := s.Lines - s.GraderErrors
	if n == 0 {
		return 0
	}
	return 100 * s.Score / float64(n)
}

// Run grades every line of r with bench (which must implement eval.RowParser) and writes results to w.
// Malformed input (bad JSON, a row the parser rejects, a missing "output") stops the run with an error
// naming the line.
func Run(ctx context.Context, bench eval.Benchmark, r io.Reader, w io.Writer) (Stats, error) {
	rp, ok := bench.(eval.RowParser)
	if !ok {
		return Stats{}, fmt.Errorf("benchmark %s cannot parse upstream rows, so it cannot re-grade", bench.Name())
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	var st Stats
	err := datasets.ReadJSONL(r, func(line int, raw []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var o struct {
			Output *string `json:"output"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			return fmt.Errorf("field output: %w", err)
		}
		if o.Output == nil {
			return fmt.Errorf("no \"output\" field")
		}
		item, err := rp.ParseRow(raw)
		if err != nil {
			return err
		}
		out := Line{Line: line, ID: item.ID}
		g, gerr := bench.Grade(ctx, item, *o.Output)
		st.Lines++
		if gerr != nil {
			st.GraderErrors++
			out.Verdict, out.Error = "grader_error", gerr.Error()
		} else {
			out.Extracted, out.Correct, out.Verdict, out.Score, out.Detail = g.Extracted, g.Correct, g.Verdict, g.Score, g.Detail
			st.Score += g.Score
			if g.Correct {
				st.Correct++
			}
		}
		return enc.Encode(out)
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return st, err
}
