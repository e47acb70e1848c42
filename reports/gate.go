package reports

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/snapeval/snapeval/stats"
)

// GateOptions configures a CI gate over a report.
type GateOptions struct {
	// MaxDrop is the largest accepted loss of accuracy against the baseline, in percentage points.
	MaxDrop float64
	// Bench and Policy restrict the gate to one benchmark and/or one policy spec ("" for all).
	Bench, Policy string
	// UseCI gates on the upper end of the CI of the loss (-Lo) instead of the point loss (-Delta).
	UseCI bool
	// AllowErrors lets a gate pass over error records (they are still reported).
	AllowErrors bool
	// AllowIncomplete lets a gate pass over an incomplete run or a single shard.
	AllowIncomplete bool
}

// GateCheck is the verdict on one (benchmark, policy).
type GateCheck struct {
	Bench  string `json:"bench"`
	Policy string `json:"policy"`
	// Loss is baseline minus policy accuracy on the paired items (pp; positive = worse); LossHigh the upper end
	// of its confidence interval.
	Loss     Num `json:"loss_pp"`
	LossHigh Num `json:"loss_ci_high_pp"`
	// Gated is the value compared with MaxDrop (Loss or LossHigh).
	Gated Num `json:"gated_pp"`
	// CIMethod names the interval's method; HalfWidth is its half-width (pp); PlanItems the paired items a run
	// would need for a half-width of at most MaxDrop at the observed loss and gain rates (0 when not computable).
	CIMethod  string `json:"ci_method,omitempty"`
	HalfWidth Num    `json:"ci_half_width_pp"`
	PlanItems int    `json:"plan_items"`
	Paired    int    `json:"paired_items"`
	P         Num    `json:"mcnemar_p"`
	Errors    int    `json:"errors"`
	Pass      bool   `json:"pass"`
	// Reasons says why the check failed (empty when it passed).
	Reasons []string `json:"reasons,omitempty"`
}

// GateResult is the outcome of a gate: it passes when every check passes.
type GateResult struct {
	Pass        bool        `json:"pass"`
	MaxDrop     float64     `json:"max_drop_pp"`
	Use         string      `json:"use"`
	AllowErrors bool        `json:"allow_errors"`
	Checks      []GateCheck `json:"checks"`
}

// Gate decides whether every compressed policy of r stays within opt.MaxDrop percentage points of the baseline.
// A check fails when its loss (or, with UseCI, the upper end of the loss's CI) exceeds MaxDrop, when the loss
// cannot be computed (no baseline, no paired items), or when the policy or the baseline of its benchmark has
// error records and AllowErrors is off. An error means the gate itself is ill-posed (nothing matched the filters).
func Gate(r *Report, opt GateOptions) (GateResult, error) {
	res := GateResult{Pass: true, MaxDrop: opt.MaxDrop, Use: "point", AllowErrors: opt.AllowErrors}
	if opt.UseCI {
		res.Use = "ci"
	}
	if opt.MaxDrop < 0 || opt.MaxDrop != opt.MaxDrop {
		return res, fmt.Errorf("max drop %g: must be a non-negative number of percentage points", opt.MaxDrop)
	}
	wantPolicy := ""
	if opt.Policy != "" {
		wantPolicy = canonical(opt.Policy)
	}
	benchSeen, policySeen := false, false
	for _, b := range r.Benches {
		if opt.Bench != "" && b.Name != opt.Bench {
			continue
		}
		benchSeen = true
		baseErrors := 0
		for _, row := range b.Rows {
			if row.Baseline {
				baseErrors = row.Errors
			}
		}
		for _, row := range b.Rows {
			if row.Baseline || (opt.Policy != "" && row.Policy != opt.Policy && row.Policy != wantPolicy) {
				continue
			}
			policySeen = true
			// 0 - x rather than -x: a zero delta must print as 0, never -0.
			c := GateCheck{Bench: b.Name, Policy: row.Policy, Loss: 0 - row.Delta, LossHigh: 0 - row.Lo, Paired: row.Paired,
				P: row.P, Errors: row.Errors, Pass: true, CIMethod: row.CIMethod, HalfWidth: row.HalfWidth}
			if row.CIMethod == "" {
				c.HalfWidth = nan()
			}
			c.PlanItems = stats.PlanItems(stats.Interval{N: row.Paired, Loss: float64(row.ItemLosses),
				Gain: float64(row.ItemGains), Design: float64(row.Design), Level: r.Level}, opt.MaxDrop/100)
			c.Gated = c.Loss
			if opt.UseCI {
				c.Gated = c.LossHigh
			}
			fail := func(format string, args ...any) {
				c.Pass = false
				c.Reasons = append(c.Reasons, fmt.Sprintf(format, args...))
			}
			switch {
			case !b.HasBaseline:
				fail("no %s baseline records", r.Baseline)
			case row.Paired == 0:
				fail("no items graded under both the policy and the baseline")
			case !c.Gated.OK():
				fail("loss not computable")
			case float64(c.Gated) > opt.MaxDrop:
				if opt.UseCI {
					fail("CI upper loss %.2f pp > max drop %g pp", float64(c.Gated), opt.MaxDrop)
				} else {
					fail("loss %.2f pp > max drop %g pp", float64(c.Gated), opt.MaxDrop)
				}
			}
			if !opt.AllowErrors {
				if row.Errors > 0 {
					fail("%d error records (use --allow-errors to gate anyway)", row.Errors)
				}
				if baseErrors > 0 {
					fail("baseline has %d error records (use --allow-errors to gate anyway)", baseErrors)
				}
			}
			if !opt.AllowIncomplete {
				if r.Incomplete() {
					fail("run incomplete: %d of %d planned records (use --allow-incomplete to gate anyway)", r.Present, r.Planned)
				}
				if r.Shard != "" {
					fail("covers shard %s only (pass every shard directory, or --allow-incomplete)", r.Shard)
				}
			}
			if row.Unpaired > 0 && c.Pass {
				c.Reasons = append(c.Reasons, fmt.Sprintf("note: %d unpaired items excluded", row.Unpaired))
			}
			res.Pass = res.Pass && c.Pass
			res.Checks = append(res.Checks, c)
		}
	}
	switch {
	case opt.Bench != "" && !benchSeen:
		return res, fmt.Errorf("no records of benchmark %q", opt.Bench)
	case opt.Policy != "" && !policySeen:
		return res, fmt.Errorf("no records of policy %q (baseline %q cannot be gated against itself)", opt.Policy, r.Baseline)
	case len(res.Checks) == 0:
		return res, fmt.Errorf("nothing to gate: no compressed policy in the records")
	}
	return res, nil
}

// WriteGateTable prints the gate's checks as an aligned text table followed by a PASS/FAIL line.
func WriteGateTable(w io.Writer, g GateResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	gated := "the point loss"
	if g.Use == "ci" {
		gated = "the upper end of the loss's CI"
	}
	fmt.Fprintf(w, "gate: %s against a max drop of %g pp (loss = baseline minus policy, paired items)\n", gated, g.MaxDrop)
	fmt.Fprintf(tw, "bench\tpolicy\tloss pp\tCI-high loss pp\tCI method\tpaired\titems for ±%g pp\terrors\tresult\n", g.MaxDrop)
	for _, c := range g.Checks {
		verdict := "PASS"
		if !c.Pass {
			verdict = "FAIL"
		}
		if len(c.Reasons) > 0 {
			verdict += ": " + strings.Join(c.Reasons, "; ")
		}
		method := c.CIMethod
		if method == "" {
			method = "–"
		}
		need := "–"
		if c.PlanItems > 0 {
			need = items(c.PlanItems)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", c.Bench, c.Policy, signedGate(c.Loss), signedGate(c.LossHigh),
			method, c.Paired, need, c.Errors, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	passed := 0
	for _, c := range g.Checks {
		if c.Pass {
			passed++
		}
	}
	verdict := "PASS"
	if !g.Pass {
		verdict = "FAIL"
	}
	_, err := fmt.Fprintf(w, "gate %s: %d of %d checks passed\n", verdict, passed, len(g.Checks))
	return err
}

// WriteGateJSON writes the gate result as indented JSON.
func WriteGateJSON(w io.Writer, g GateResult) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(g)
}

func signedGate(n Num) string {
	if !n.OK() {
		return "–"
	}
	return fmt.Sprintf("%+.2f", clean(float64(n), 2))
}
