package perf

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteTable prints r as aligned tables.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	mb := func(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
	p("model\t%s (weights read per step %s)", r.Model, mb(r.WeightBytes))
	p("machine\t%d CPUs, %d threads, SIMD kernels %v, GOAMD64=%s, load %s -> %s", r.CPUs, r.Threads, r.SIMD, r.GOAMD64, r.LoadBefore, r.LoadAfter)
	if r.Quick {
		p("sizes\tquick: prefill %d, decode context %d, contexts %v (full %v), table 5 prompt %d, selection %v",
			r.Sizes.PrefillPrompt, r.Sizes.DecodeContext, r.Sizes.Contexts, r.Sizes.FullContexts, r.Sizes.Table5Prompt, r.Sizes.SelectionPrompts)
	}
	p("memory bandwidth\t%.1f GB/s (highest of %s)", r.BandwidthGBs, gbsList(r.BandwidthSamplesGBs))
	p("prefill\t%.1f tok/s (1 x %d: llama-bench pp%d)\t%.1f tok/s (%d x %d)", r.PrefillTokS, r.Sizes.PrefillPrompt, r.Sizes.PrefillPrompt, r.PrefillBatchTokS, r.Batch, r.Sizes.PrefillPrompt)
	p("tg%d\t%.1f tok/s (1 seq, %d tokens decoded one at a time from an empty cache, mean of %d runs: llama-bench tg%d)",
		r.Sizes.TGTokens, r.TG128TokS, r.Sizes.TGTokens, r.Sizes.TGReps, r.Sizes.TGTokens)
	p("decode\t%.1f tok/s (1 seq, %d ctx, %.1f ms/step)\t%.1f tok/s (%d seqs)", r.DecodeTokS, r.Sizes.DecodeContext, r.DecodeStepMs, r.DecodeBatchTokS, r.Batch)
	p("decode vs bandwidth\t%s per step = %.1f GB/s = %.0f%% of the measured %.1f GB/s",
		mb(r.DecodeBytesPerStep), float64(r.DecodeBytesPerStep)/r.DecodeStepMs/1e6, 100*r.DecodeBandwidthFraction, r.BandwidthGBs)
	if r.PeerOnly {
		p("claims\tnot measured (--peer: only the measurements with a llama-bench peer)")
		return tw.Flush()
	}
	p("")
	p("policy\tcontext\tlive slots\tKV bytes/seq\tstep ms")
	for _, s := range r.Steps {
		p("%s\t%d\t%d\t%s\t%.1f", s.Policy, s.Context, s.LiveSlots, mb(s.KVBytes), s.StepMs)
	}
	p("")
	p("step ratio 32k/1k\tsnapstream %s (%d alternating rounds of %d steps; one round alone: %s)", ratioOrNA(r.FlatRatio32k1k),
		r.Sizes.SweepRounds, r.Sizes.SweepRoundSteps, ratioRange(r.FlatRoundRatios))
	p("\tfull %s (one context after another)", ratioOrNA(r.FullRatio32k1k))
	p("")
	t := r.Table5
	if t == nil {
		t = &Table5{}
	}
	p("table 5\tKV budget %s, %d-token prompts, %s", mb(t.KVBudgetBytes), t.Prompt, t.Policy)
	p("  full\tbatch %d (%s/seq)\t%.1f ms/step\t%.1f tok/s", t.FullBatch, mb(t.FullSeqBytes), t.FullStepMs, t.FullTokS)
	p("  snapstream\tbatch %d (%s/seq)\t%.1f ms/step\t%.1f tok/s", t.SnapBatch, mb(t.SnapSeqBytes), t.SnapStepMs, t.SnapTokS)
	p("  throughput ratio\t%.2fx (%d alternating rounds of %d steps; one round alone: %s)", t.Ratio, r.Sizes.Table5Rounds, r.Sizes.Table5RoundSteps, ratioRange(t.RoundRatios))
	p("")
	p("selection\tprompt\tprefill ms\tselect ms\tshare")
	for _, s := range r.Selection {
		p("\t%d\t%.0f (%s)\t%.1f\t%.2f%%", s.Prompt, s.PrefillMs, s.PrefillMethod, s.SelectMs, 100*s.Share)
	}
	if r.PrefillCheck.Prompt > 0 {
		p("prefill estimate check\t%d tokens: measured %.0f ms, three-chunk estimate %.0f ms", r.PrefillCheck.Prompt, r.PrefillCheck.MeasuredMs, r.PrefillCheck.EstimatedMs)
	}
	return tw.Flush()
}

// ratioRange formats the lowest and highest of v as "3.61-3.98x".
func ratioRange(v []float64) string {
	if len(v) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f-%.2fx", slices.Min(v), slices.Max(v))
}

func ratioOrNA(x *float64) string {
	if x == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", *x)
}

// gbsList formats read-test results as "61.1, 58.0 and 60.2 GB/s".
func gbsList(v []float64) string {
	var b strings.Builder
	for i, x := range v {
		switch {
		case i > 0 && i == len(v)-1:
			b.WriteString(" and ")
		case i > 0:
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%.1f", x)
	}
	b.WriteString(" GB/s")
	return b.String()
}
