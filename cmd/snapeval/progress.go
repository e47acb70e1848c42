package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/snapeval/snapeval/eval"
)

// progress shows a run's advance on stderr: a progress bar on a terminal, a plain log line every N records otherwise,
// nothing when quiet.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	bar      *progressbar.ProgressBar
	every    int
	total    int
	done     int
	errs     int
	tokens   int64
	start    time.Time
	quiet    bool
	lastLine time.Time
}

func newProgress(w io.Writer, total, every int, quiet bool) *progress {
	p := &progress{w: w, total: total, every: max(every, 1), quiet: quiet, start: time.Now()}
	if quiet || total == 0 {
		return p
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("records"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionEnableColorCodes(os.Getenv("NO_COLOR") == ""),
			progressbar.OptionThrottle(100*time.Millisecond),
		)
	}
	return p
}

// Record implements eval.Progress.
func (p *progress) Record(r eval.Record, t *eval.Timing) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if r.IsError() {
		p.errs++
	}
	p.tokens += int64(r.OutputTokens)
	if p.quiet {
		return
	}
	el := time.Since(p.start).Seconds()
	tps := 0.0
	if el > 0 {
		tps = float64(p.tokens) / el
	}
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("errors %d, %.1f tok/s", p.errs, tps))
		p.bar.Add(1)
		return
	}
	if p.done%p.every == 0 || p.done == p.total {
		eta := ""
		if p.done > 0 && p.done < p.total {
			eta = fmt.Sprintf(", eta %s", (time.Duration(el/float64(p.done)*float64(p.total-p.done)) * time.Second).Round(time.Second))
		}
		fmt.Fprintf(p.w, "snapeval: %d/%d records, %d errors, %.1f generated tok/s%s\n", p.done, p.total, p.errs, tps, eta)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
