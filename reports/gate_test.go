package reports

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// gateReport is a hand-made report: bench "b" with a baseline and three policies.
func gateReport(baseErrors int) *Report {
	row := func(policy string, delta, lo, hi float64, errors, paired int) Row {
		return Row{Policy: policy, Delta: Num(delta), Lo: Num(lo), Hi: Num(hi), P: 0.5, Errors: errors, Paired: paired,
			CIMethod: "tango", Design: 1, HalfWidth: Num((hi - lo) / 2), ItemLosses: Num(-delta + 2), ItemGains: 2}
	}
	return &Report{Baseline: "full", Benches: []Bench{{
		Name: "b", HasBaseline: true,
		Rows: []Row{
			{Policy: "full", Baseline: true, Errors: baseErrors, Delta: nan(), Lo: nan(), Hi: nan(), P: nan()},
			row("snapstream:budget=4096", -0.5, -2.5, 1.0, 0, 100),
			row("snapstream:budget=1024", -3.0, -6.0, -0.5, 0, 100),
			row("streaming:sinks=4,recent=1020", -1.0, -1.8, 0.2, 2, 98),
		},
	}}}
}

func TestGateDecisions(t *testing.T) {
	tests := []struct {
		name       string
		baseErrors int
		opt        GateOptions
		pass       bool
		perPolicy  []bool // pass of each check, in row order
		wantReason string
		wantErr    bool
	}{
		{"point: 1024 loses 3 > 2, streaming has errors", 0, GateOptions{MaxDrop: 2}, false, []bool{true, false, false}, "loss 3.00 pp > max drop 2 pp", false},
		{"point, errors allowed", 0, GateOptions{MaxDrop: 2, AllowErrors: true}, false, []bool{true, false, true}, "", false},
		{"point, generous", 0, GateOptions{MaxDrop: 3, AllowErrors: true}, true, []bool{true, true, true}, "", false},
		{"loss exactly at max drop passes", 0, GateOptions{MaxDrop: 3, AllowErrors: true, Policy: "snapstream:budget=1024"}, true, []bool{true}, "", false},
		{"ci: upper loss 2.5 > 2", 0, GateOptions{MaxDrop: 2, UseCI: true, AllowErrors: true}, false, []bool{false, false, true}, "CI upper loss 2.50 pp > max drop 2 pp", false},
		{"ci, generous", 0, GateOptions{MaxDrop: 6, UseCI: true, AllowErrors: true}, true, []bool{true, true, true}, "", false},
		{"policy filter, canonicalised", 0, GateOptions{MaxDrop: 1, Policy: "snapstream:budget=4096,window=32"}, true, []bool{true}, "", false},
		{"baseline errors fail every check", 3, GateOptions{MaxDrop: 10, Policy: "snapstream:budget=4096"}, false, []bool{false}, "baseline has 3 error records", false},
		{"baseline errors allowed", 3, GateOptions{MaxDrop: 10, Policy: "snapstream:budget=4096", AllowErrors: true}, true, []bool{true}, "", false},
		{"unknown bench", 0, GateOptions{MaxDrop: 1, Bench: "nope"}, true, nil, "", true},
		{"unknown policy", 0, GateOptions{MaxDrop: 1, Policy: "snapstream:budget=8"}, true, nil, "", true},
		{"baseline cannot be gated", 0, GateOptions{MaxDrop: 1, Policy: "full"}, true, nil, "", true},
		{"negative max drop", 0, GateOptions{MaxDrop: -1}, true, nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Gate(gateReport(tt.baseErrors), tt.opt)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if g.Pass != tt.pass || len(g.Checks) != len(tt.perPolicy) {
				t.Fatalf("pass = %v with %d checks, want %v with %d: %+v", g.Pass, len(g.Checks), tt.pass, len(tt.perPolicy), g.Checks)
			}
			var reasons []string
			for i, c := range g.Checks {
				if c.Pass != tt.perPolicy[i] {
					t.Errorf("check %s pass = %v, want %v (%v)", c.Policy, c.Pass, tt.perPolicy[i], c.Reasons)
				}
				reasons = append(reasons, c.Reasons...)
			}
			if tt.wantReason != "" && !strings.Contains(strings.Join(reasons, "|"), tt.wantReason) {
				t.Errorf("reasons %q lack %q", reasons, tt.wantReason)
			}
		})
	}
}

func TestGateNoBaselineOrPairs(t *testing.T) {
	r := gateReport(0)
	r.Benches[0].HasBaseline = false
	g, err := Gate(r, GateOptions{MaxDrop: 100, AllowErrors: true})
	if err != nil || g.Pass {
		t.Errorf("no baseline: pass = %v, err = %v; want a failing gate", g.Pass, err)
	}
	r = gateReport(0)
	r.Benches[0].Rows[1].Paired = 0
	r.Benches[0].Rows[1].Delta = nan()
	g, _ = Gate(r, GateOptions{MaxDrop: 100, AllowErrors: true})
	if g.Pass || g.Checks[0].Pass || !strings.Contains(g.Checks[0].Reasons[0], "no items graded under both") {
		t.Errorf("no paired items must fail: %+v", g.Checks[0])
	}
}

func TestGateOutputs(t *testing.T) {
	g, err := Gate(gateReport(0), GateOptions{MaxDrop: 2})
	if err != nil {
		t.Fatal(err)
	}
	var tab, js bytes.Buffer
	if err := WriteGateTable(&tab, g); err != nil {
		t.Fatal(err)
	}
	golden(t, "gate.txt", tab.Bytes())
	if err := WriteGateJSON(&js, g); err != nil {
		t.Fatal(err)
	}
	var back GateResult
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("gate JSON does not read back: %v\n%s", err, js.String())
	}
	if back.Pass || len(back.Checks) != 3 || math.Abs(float64(back.Checks[1].Loss)-3) > 1e-12 {
		t.Errorf("gate JSON round trip: %+v", back)
	}
}

// TestGatePlanItems: the gate's planning figure at the report's planning max drop is the report's, and a
// looser max drop needs fewer items.
func TestGatePlanItems(t *testing.T) {
	m, recs := synthRun()
	r := Build(m, recs, Options{})
	rows := map[string]Row{}
	for _, row := range r.Benches[0].Rows {
		rows[row.Policy] = row
	}
	g, err := Gate(r, GateOptions{MaxDrop: DefaultPlanDrop, Bench: r.Benches[0].Name, AllowErrors: true})
	if err != nil {
		t.Fatal(err)
	}
	loose, _ := Gate(r, GateOptions{MaxDrop: 4 * DefaultPlanDrop, Bench: r.Benches[0].Name, AllowErrors: true})
	for i, c := range g.Checks {
		row := rows[c.Policy]
		if c.PlanItems <= 0 || c.PlanItems != row.PlanItems || c.CIMethod != row.CIMethod || c.HalfWidth != row.HalfWidth {
			t.Errorf("%s: gate plans %d items (%s, ±%g), the report %d (%s, ±%g)", c.Policy, c.PlanItems, c.CIMethod,
				c.HalfWidth, row.PlanItems, row.CIMethod, row.HalfWidth)
		}
		if l := loose.Checks[i].PlanItems; l <= 0 || l >= c.PlanItems {
			t.Errorf("%s: %d items for ±%g pp, %d for ±%g pp", c.Policy, l, 4*DefaultPlanDrop, c.PlanItems, DefaultPlanDrop)
		}
	}
}

// TestGateOnSynthRun gates the synthetic run end to end: streaming has errors and a large loss.
func TestGateOnSynthRun(t *testing.T) {
	m, recs := synthRun()
	r := Build(m, recs, Options{})
	g, err := Gate(r, GateOptions{MaxDrop: 3, Policy: "snapstream:budget=4096", Bench: "aime24", UseCI: true})
	if err != nil {
		t.Fatal(err)
	}
	// point loss 2.1 pp, CI upper loss 20.0 pp > 3
	if g.Pass || len(g.Checks) != 1 {
		t.Errorf("want one failing check (CI upper loss > 3): %+v", g)
	}
	g, _ = Gate(r, GateOptions{MaxDrop: 3, Policy: "snapstream:budget=4096", Bench: "aime24"})
	if !g.Pass {
		t.Errorf("point loss 2.1 <= 3 should pass: %+v", g)
	}
}
