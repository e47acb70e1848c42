package synthetic

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// TrainRow is one line of training JSONL: the prompt, the completion to learn, and what produced them.
type TrainRow struct {
	ID      string   `json:"id"`
	Task    string   `json:"task"`
	Length  int      `json:"length"`
	Prompt  string   `json:"prompt"`
	Answer  string   `json:"answer"`
	Answers []string `json:"answers"`
}

// WriteJSONL generates cfg's items (in Generate's order) and writes one TrainRow per line to w.
// Items are generated in parallel; the output does not depend on the number of workers. It returns the row count.
func WriteJSONL(w io.Writer, cfg Config) (int, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	type job struct {
		task          string
		length, index int
	}
	var jobs []job
	for i := range cfg.N { // the order of Generate
		for _, t := range cfg.Tasks {
			for _, l := range cfg.Lengths {
				jobs = append(jobs, job{t, l, i})
			}
		}
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	const chunk = 512
	workers := runtime.GOMAXPROCS(0)
	rows := 0
	for start := 0; start < len(jobs); start += chunk {
		part := jobs[start:min(start+chunk, len(jobs))]
		lines := make([][]byte, len(part))
		var g errgroup.Group
		g.SetLimit(workers)
		for i, j := range part {
			g.Go(func() error {
				s, err := GenerateOne(cfg, j.task, j.length, j.index)
				if err != nil {
					return err
				}
				b, err := json.Marshal(TrainRow{ID: s.ID, Task: s.Task, Length: s.Length, Prompt: s.Prompt, Answer: s.Answer, Answers: s.Answers})
				lines[i] = b
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return rows, err
		}
		for _, l := range lines {
			bw.Write(l)
			bw.WriteByte('\n')
			rows++
		}
	}
	if err := bw.Flush(); err != nil {
		return rows, fmt.Errorf("synthetic: write: %w", err)
	}
	return rows, nil
}
