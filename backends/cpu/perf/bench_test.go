package perf

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRandomModelUnknownShape(t *testing.T) {
	if _, err := RandomModel("nope"); err == nil || !strings.Contains(err.Error(), "smollm2-135m") {
		t.Errorf("err = %v, want an error listing the known shapes", err)
	}
}

func TestBandwidthAndSum(t *testing.T) {
	x := make([]float32, 1000)
	for i := range x {
		x[i] = 1
	}
	if s := sum(x); s != 1000 {
		t.Errorf("sum = %v, want 1000", s)
	}
	if gbs := Bandwidth(8, 2, 1); !(gbs > 0) {
		t.Errorf("bandwidth %v", gbs)
	}
}

// TestRunQuickOnFixture runs the whole quick bench on the small llama fixture and checks that every
// reported number is there and consistent.
func TestRunQuickOnFixture(t *testing.T) {
	if testing.Short() {
		t.Skip("bench run skipped in -short mode")
	}
	m, err := LoadDir(filepath.Join("..", "testdata", "models", "llama-gqa"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), m, "llama-gqa", Options{Quick: true, Threads: 2, Batch: 2, Budget: 64, BandwidthMiB: 8})
	if err != nil {
		t.Fatal(err)
	}
	if r.PrefillTokS <= 0 || r.DecodeTokS <= 0 || r.DecodeBatchTokS <= 0 || r.BandwidthGBs <= 0 || r.DecodeBandwidthFraction <= 0 || r.TG128TokS <= 0 {
		t.Errorf("missing throughput numbers: %+v", r)
	}
	// The ceiling is the highest of the three read tests (start, before and after the decode step), and the
	// decode fraction is taken against it.
	if len(r.BandwidthSamplesGBs) != 3 || r.BandwidthGBs != slices.Max(r.BandwidthSamplesGBs) {
		t.Errorf("bandwidth %v GB/s from samples %v, want the highest of 3", r.BandwidthGBs, r.BandwidthSamplesGBs)
	}
	if want := float64(r.DecodeBytesPerStep) / (r.DecodeStepMs / 1000) / 1e9 / r.BandwidthGBs; math.Abs(r.DecodeBandwidthFraction-want) > 1e-9*want {
		t.Errorf("decode bandwidth fraction %v, want %v", r.DecodeBandwidthFraction, want)
	}
	if r.FlatRatio32k1k == nil || *r.FlatRatio32k1k <= 0 || r.Table5ThroughputRatio == nil || *r.Table5ThroughputRatio <= 0 || r.Table5 == nil {
		t.Fatalf("flat ratio %v, table 5 ratio %v, table 5 %v", r.FlatRatio32k1k, r.Table5ThroughputRatio, r.Table5)
	}
	if len(r.Table5.RoundRatios) != r.Sizes.Table5Rounds || r.Sizes.Table5Rounds < 2 {
		t.Errorf("table 5 round ratios %v, want one per round (%d)", r.Table5.RoundRatios, r.Sizes.Table5Rounds)
	}
	if lo, hi := slices.Min(r.Table5.RoundRatios), slices.Max(r.Table5.RoundRatios); r.Table5.Ratio < lo/2 || r.Table5.Ratio > 2*hi {
		t.Errorf("table 5 ratio %v far outside its rounds' %v", r.Table5.Ratio, r.Table5.RoundRatios)
	}
	// The compressed sweep alternates its contexts: one row per context, one 32k/1k ratio per round.
	var snapRows int
	for _, s := range r.Steps {
		if s.Policy != "full" {
			snapRows++
		}
	}
	if snapRows != len(r.Sizes.Contexts) || len(r.FlatRoundRatios) != r.Sizes.SweepRounds || r.Sizes.SweepRounds < 2 {
		t.Errorf("compressed sweep: %d rows for contexts %v, round ratios %v for %d rounds", snapRows, r.Sizes.Contexts, r.FlatRoundRatios, r.Sizes.SweepRounds)
	} else if lo, hi := slices.Min(r.FlatRoundRatios), slices.Max(r.FlatRoundRatios); *r.FlatRatio32k1k < lo/2 || *r.FlatRatio32k1k > 2*hi {
		t.Errorf("flat ratio %v far outside its rounds' %v", *r.FlatRatio32k1k, r.FlatRoundRatios)
	}
	if r.Table5.SnapBatch < 3*r.Table5.FullBatch {
		t.Errorf("table 5 batches: full %d, snapstream %d (4x compression)", r.Table5.FullBatch, r.Table5.SnapBatch)
	}
	for _, s := range r.Steps {
		if s.Policy != "full" && s.LiveSlots > 64 {
			t.Errorf("%s at %d: %d live slots, budget 64", s.Policy, s.Context, s.LiveSlots)
		}
	}
	// The fixture has 4096 positions: the 2048-token selection prompt runs, the 4096 one is skipped.
	if len(r.Selection) != 1 || r.Selection[0].Prompt != 2048 || r.Selection[0].Share <= 0 || r.PrefillCheck.MeasuredMs <= 0 {
		t.Errorf("selection rows %+v, check %+v", r.Selection, r.PrefillCheck)
	}
	// Each selection-share key holds the share at the size it names, or null.
	if r.SelectionShare2k == nil || *r.SelectionShare2k != r.Selection[0].Share || r.SelectionShare4k != nil || r.SelectionShare8k != nil || r.SelectionShare32k != nil {
		t.Errorf("selection shares 2k %v, 4k %v, 8k %v, 32k %v; want only 2k", r.SelectionShare2k, r.SelectionShare4k, r.SelectionShare8k, r.SelectionShare32k)
	}
	if r.Sizes.TGTokens != 128 {
		t.Errorf("tg tokens %d, want 128", r.Sizes.TGTokens)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"prefill_tok_s", "decode_tok_s", "tg128_tok_s", "bandwidth_gbs", "decode_bandwidth_fraction", "flat_ratio_32k_1k",
		"table5_throughput_ratio", "selection_share_2k", "selection_share_4k", "selection_share_8k", "selection_share_32k"} {
		if !bytes.Contains(b, []byte(`"`+k+`"`)) {
			t.Errorf("JSON lacks %s", k)
		}
	}
	for _, k := range []string{"selection_share_4k", "selection_share_8k", "selection_share_32k"} {
		if !bytes.Contains(b, []byte(`"`+k+`":null`)) {
			t.Errorf("JSON %s is not null (not measured in this run)", k)
		}
	}
	var tab bytes.Buffer
	if err := r.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"memory bandwidth", "table 5", "step ratio 32k/1k", "selection", "tg128", "llama-bench pp128"} {
		if !strings.Contains(tab.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, tab.String())
		}
	}
	t.Log("\n" + tab.String())
}

// TestRunPeerOnly: --peer measures only what llama-bench has a peer for, and the claim keys are null, not 0.
func TestRunPeerOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("bench run skipped in -short mode")
	}
	m, err := LoadDir(filepath.Join("..", "testdata", "models", "llama-gqa"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), m, "llama-gqa", Options{Quick: true, Peer: true, Threads: 2, Batch: 2, BandwidthMiB: 8})
	if err != nil {
		t.Fatal(err)
	}
	if !r.PeerOnly || r.PrefillTokS <= 0 || r.TG128TokS <= 0 || r.DecodeTokS <= 0 || r.BandwidthGBs <= 0 {
		t.Errorf("peer numbers missing: %+v", r)
	}
	if r.Steps != nil || r.Table5 != nil || r.FlatRatio32k1k != nil || r.Table5ThroughputRatio != nil || r.Selection != nil {
		t.Errorf("claims measured in a peer run: %+v", r)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"peer_only":true`, `"table5":null`, `"flat_ratio_32k_1k":null`, `"selection_share_8k":null`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
	var sb strings.Builder
	if err := r.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "not measured (--peer") || strings.Contains(sb.String(), "throughput ratio") {
		t.Errorf("table:\n%s", sb.String())
	}
}
