package perf

import (
	"context"
	"fmt"
	"time"

	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/compress"
)

// selection fills r.Selection: for each prompt length, the prefill time (measured, or integrated from
// three timed chunks beyond sz.RealPrefillLimit) and the time of SnapKV's selection over all layers (the
// engine's step at the end of a prefill: compress.SelectTopK per layer, layers in parallel).
func selection(ctx context.Context, m *model.Model, o Options, sz Sizes, r *Result, logf func(string, ...any)) error {
	pool := model.NewPool(o.Threads)
	defer pool.Close()
	ws := model.NewWorkspace(pool)
	check := sz.RealPrefillLimit
	prompts := sz.SelectionPrompts
	if !contains(prompts, check) {
		prompts = append([]int{check}, prompts...)
	}
	for _, P := range prompts {
		if P+1 > m.Cfg.MaxPositions {
			logf("selection: %d-token prompt skipped (model has %d positions)", P, m.Cfg.MaxPositions)
			continue
		}
		seq := m.NewSeq(P)
		fillSeq(seq)
		ids := prompt(m.Cfg.Vocab, P, 7)
		row := SelRow{Prompt: P}
		if P <= sz.RealPrefillLimit {
			logf("prefill: %d tokens, measured", P)
			ms, err := realPrefill(m, ws, seq, ids, sz.PrefillChunk)
			if err != nil {
				return err
			}
			row.PrefillMs, row.PrefillMethod = ms, "measured"
			if P == check {
				logf("prefill: %d tokens, chunk estimate for the check", P)
				est, err := chunkPrefill(m, ws, seq, ids, sz.PrefillChunk)
				if err != nil {
					return err
				}
				r.PrefillCheck.Prompt, r.PrefillCheck.MeasuredMs, r.PrefillCheck.EstimatedMs = P, round(ms, 1), round(est, 1)
			}
		} else {
			logf("prefill: %d tokens, three timed chunks", P)
			est, err := chunkPrefill(m, ws, seq, ids, sz.PrefillChunk)
			if err != nil {
				return err
			}
			row.PrefillMs, row.PrefillMethod = est, "chunks"
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		logf("selection: %d tokens", P)
		sel, err := selectTime(m, pool, seq, P, o.Budget)
		if err != nil {
			return err
		}
		row.SelectMs = sel
		row.Share = sel / row.PrefillMs
		if contains(sz.SelectionPrompts, P) {
			r.Selection = append(r.Selection, row)
		}
	}
	for _, row := range r.Selection {
		share := row.Share
		switch row.Prompt {
		case 2048:
			r.SelectionShare2k = &share
		case 4096:
			r.SelectionShare4k = &share
		case 8192:
			r.SelectionShare8k = &share
		case 32768:
			r.SelectionShare32k = &share
		}
	}
	return nil
}

func contains(x []int, v int) bool {
	for _, e := range x {
		if e == v {
			return true
		}
	}
	return false
}

// fillSeq writes deterministic pseudo-random keys and values into every slot (so that the memory is
// really there: untouched pages would read as one shared zero page).
func fillSeq(s *model.Seq) {
	st := uint32(12345)
	for l := range s.K {
		for _, b := range [][]float32{s.K[l], s.V[l]} {
			for i := range b {
				st = st*1664525 + 1013904223
				b[i] = float32(int32(st>>9)%1024) / 4096
			}
		}
	}
}

func forwardChunk(m *model.Model, ws *model.Workspace, seq *model.Seq, ids []int, p, chunk int, logits []float32) error {
	e := min(p+chunk, len(ids))
	seg := model.Segment{Seq: seq, Tokens: ids[p:e], Pos: p}
	if e == len(ids) {
		seg.Logits = logits
	}
	return m.Forward(ws, []model.Segment{seg})
}

// realPrefill times a whole chunked prefill (ms).
func realPrefill(m *model.Model, ws *model.Workspace, seq *model.Seq, ids []int, chunk int) (float64, error) {
	logits := make([]float32, m.Cfg.Vocab)
	t0 := time.Now()
	for p := 0; p < len(ids); p += chunk {
		if err := forwardChunk(m, ws, seq, ids, p, chunk, logits); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(t0).Microseconds()) / 1000, nil
}

// chunkPrefill estimates a chunked prefill (ms) from three timed chunks: the cost of a chunk is affine
// in its start position (the weights cost the same, attention grows with the keys before it), so the
// least-squares line through the chunks at the start, middle and end is summed over all chunk starts.
func chunkPrefill(m *model.Model, ws *model.Workspace, seq *model.Seq, ids []int, chunk int) (float64, error) {
	n := (len(ids) + chunk - 1) / chunk
	if n < 3 || len(ids)%chunk != 0 {
		return 0, fmt.Errorf("bench: chunk estimate needs at least 3 whole chunks (%d tokens, chunk %d)", len(ids), chunk)
	}
	logits := make([]float32, m.Cfg.Vocab)
	idx := []int{0, n / 2, n - 1}
	var xs, ts []float64
	for _, i := range idx {
		t0 := time.Now()
		if err := forwardChunk(m, ws, seq, ids, i*chunk, chunk, logits); err != nil {
			return 0, err
		}
		xs = append(xs, float64(i))
		ts = append(ts, float64(time.Since(t0).Microseconds())/1000)
	}
	var mx, mt float64
	for i := range xs {
		mx += xs[i] / 3
		mt += ts[i] / 3
	}
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ts[i] - mt)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	b := sxy / sxx
	a := mt - b*mx
	N := float64(n)
	return N*a + b*N*(N-1)/2, nil
}

// selectTime times SnapKV's selection over every layer of seq (ms, median of three).
func selectTime(m *model.Model, pool *model.Pool, seq *model.Seq, P, budget int) (float64, error) {
	c := &m.Cfg
	pol, err := compress.Parse(fmt.Sprintf("snapstream:budget=%d", budget))
	if err != nil {
		return 0, err
	}
	plan, err := pol.Plan(P, 128)
	if err != nil {
		return 0, err
	}
	w := min(plan.Window, P)
	d, nQ, nKV := c.HeadDim, c.Heads, c.KVHeads
	queries := make([][]float32, c.Layers)
	st := uint32(777)
	for l := range queries {
		queries[l] = make([]float32, w*nQ*d)
		for i := range queries[l] {
			st = st*1664525 + 1013904223
			queries[l][i] = float32(int32(st>>9)%1024) / 1024
		}
	}
	scratch := make([]compress.Scratch, pool.Workers())
	for i := range scratch {
		scratch[i].Scores = model.Scores // as the engine does
	}
	ts := make([]float64, 3)
	for i := range ts {
		t0 := time.Now()
		pool.For(c.Layers, func(lo, hi, worker int) {
			for l := lo; l < hi; l++ {
				compress.SelectTopK(plan, queries[l], seq.K[l][:P*nKV*d], nQ, nKV, d, &scratch[worker])
			}
		})
		ts[i] = float64(time.Since(t0).Microseconds()) / 1000
	}
	return median(ts), nil
}
