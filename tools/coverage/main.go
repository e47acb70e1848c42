// Command coverage measures the coverage of snapeval's paired confidence intervals and prints the Markdown tables
// of docs/statistics.md.
//
//	go run ./tools/coverage grid [-reps 4000] [-old] [-pseudo M] [-families F,...]  the full grid (exact for right/wrong items)
//	go run ./tools/coverage issue -snapeval BIN [-reps 1000] [-family F]  issue #25's table, through `BIN report`
//
// Everything is seeded: the same flags print the same tables.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/stats"
	"github.com/snapeval/snapeval/stats/coverage"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "grid":
		err = grid(os.Args[2:])
	case "issue":
		err = issue(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "coverage:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: coverage grid [-reps N] [-old] | coverage issue -snapeval BIN [-reps N] [-family F]")
	os.Exit(2)
}

// The grid of docs/statistics.md.
var (
	gridItems = []int{30, 100, 500}
	gridBases = []float64{0.5, 0.9, 0.98}
	gridRates = []float64{0, 0.01, 0.02, 0.05, 0.1}
	// band is the coverage band every non-degenerate, non-sparse cell must meet.
	bandLo, bandHi = 0.93, 0.97
)

// pseudoMass is the design effect's shrinkage the grid measures (stats.PseudoMass unless -pseudo).
var pseudoMass = stats.PseudoMass

func paired(d []float64) (float64, float64) {
	iv := stats.PairedCIShrunk(d, stats.DefaultLevel, pseudoMass)
	return iv.Lo, iv.Hi
}

// parallel runs f(i) for i < n on GOMAXPROCS workers.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func grid(args []string) error {
	fs := flag.NewFlagSet("grid", flag.ExitOnError)
	reps := fs.Int("reps", 4000, "Monte Carlo replicates per cell (families other than binary)")
	old := fs.Bool("old", false, "also measure the percentile bootstrap the reports used before (binary, 30 and 100 items)")
	oldReps := fs.Int("old-reps", 1000, "replicates per cell for -old")
	fs.Float64Var(&pseudoMass, "pseudo", stats.PseudoMass, "the design effect's pseudo mass (to measure what it buys)")
	fams := fs.String("families", "binary,samples,partial,jitter", "comma-separated families")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var families []coverage.Family
	for _, f := range strings.Split(*fams, ",") {
		switch fam := coverage.Family(f); fam {
		case coverage.Binary, coverage.Samples, coverage.Partial, coverage.Jitter:
			families = append(families, fam)
		default:
			return fmt.Errorf("-families: unknown family %q (binary, samples, partial, jitter)", f)
		}
	}
	failed := 0
	var summary []string
	for _, f := range families {
		cells := coverage.Grid(f, gridItems, gridBases, gridRates)
		res := make([]coverage.Result, len(cells))
		parallel(len(cells), func(i int) {
			if f == coverage.Binary {
				res[i] = coverage.ExactBinary(cells[i], paired)
			} else {
				res[i] = coverage.MonteCarlo(cells[i], *reps, 1, paired)
			}
		})
		s, bad := printGrid(f, res, *reps)
		failed += bad
		summary = append(summary, s)
	}
	fmt.Println("### Summary")
	fmt.Println()
	fmt.Println("| family | cells | degenerate | sparse | coverage, other cells | coverage, sparse cells | zero-width | outside the rule |")
	fmt.Println("|---|---:|---:|---:|---|---|---:|---:|")
	for _, s := range summary {
		fmt.Println(s)
	}
	if *old {
		printOld(*oldReps)
	}
	if failed > 0 {
		return fmt.Errorf("%d cells outside the rule", failed)
	}
	return nil
}

// printGrid prints one family's table (rows: items, base, loss; columns: gain) and returns its summary row.
func printGrid(f coverage.Family, res []coverage.Result, reps int) (string, int) {
	how := "exact (every outcome enumerated)"
	if f != coverage.Binary {
		how = fmt.Sprintf("%d seeded replicates per cell", reps)
	}
	fmt.Printf("### %s: %s\n\n", f, how)
	fmt.Print("| items | base | loss \\ gain |")
	for _, g := range gridRates {
		fmt.Printf(" %g |", g)
	}
	fmt.Print("\n|---:|---:|---:|")
	for range gridRates {
		fmt.Print("---:|")
	}
	fmt.Println()
	lo, hi, sparseLo, sparseHi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	var nDeg, nSparse, nUnattainable, bad int
	zero := 0.0
	for i := 0; i < len(res); i += len(gridRates) {
		c := res[i].Cell
		fmt.Printf("| %d | %g | %g |", c.Items, c.Base, c.Loss)
		for _, r := range res[i : i+len(gridRates)] {
			mark := ""
			switch {
			case r.Degenerate():
				mark = "°"
				nDeg++
			case r.Sparse():
				mark = "*"
				nSparse++
				sparseLo, sparseHi = math.Min(sparseLo, r.Coverage), math.Max(sparseHi, r.Coverage)
				if f == coverage.Binary && r.Coverage > bandHi {
					if a := coverage.McNemarAttainable(r.Cell, stats.DefaultLevel, bandLo, bandHi); a.Known && !a.InBand {
						mark += "†"
						nUnattainable++
					}
				}
			default:
				lo, hi = math.Min(lo, r.Coverage), math.Max(hi, r.Coverage)
			}
			if !r.Degenerate() {
				zero += r.ZeroWidth
			}
			if err := r.Check(bandLo, bandHi); err != nil {
				mark += " **✗**"
				bad++
				fmt.Fprintln(os.Stderr, err)
			}
			fmt.Printf(" %.3f%s |", r.Coverage, mark)
		}
		fmt.Println()
	}
	fmt.Printf("\n° degenerate (nothing can change: coverage 1 by construction); * sparse (expected summed squared change, for right/wrong items the discordant pairs, < %g)", coverage.SparseMass)
	if f == coverage.Binary {
		fmt.Printf("; † no interval that agrees with the exact McNemar test can cover within %g–%g (%d of the %d sparse cells)", bandLo, bandHi, nUnattainable, nSparse)
	}
	fmt.Print("\n\n")
	zw := "0"
	if zero > 0 {
		zw = fmt.Sprintf("%.4f", zero)
	}
	return fmt.Sprintf("| %s | %d | %d | %d | %.3f–%.3f | %.3f–%.3f | %s | %d |", f, len(res), nDeg, nSparse, lo, hi, sparseLo, sparseHi, zw, bad), bad
}

// printOld measures the percentile bootstrap (B = 1000) on the binary grid at 30 and 100 items.
func printOld(reps int) {
	cells := coverage.Grid(coverage.Binary, []int{30, 100}, gridBases, gridRates)
	res := make([]coverage.Result, len(cells))
	parallel(len(cells), func(i int) {
		boot := func(d []float64) (float64, float64) {
			return stats.BootstrapMeanCI(d, stats.Options{Resamples: 1000})
		}
		res[i] = coverage.MonteCarlo(cells[i], reps, 1, boot)
	})
	fmt.Printf("\n### The percentile bootstrap used before (binary, B = 1000, %d replicates per cell)\n\n", reps)
	fmt.Println("| items | cells with a change | coverage min | coverage median | cells below 0.93 | replicates with zero width |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|")
	for _, n := range []int{30, 100} {
		var cov []float64
		zero, below := 0.0, 0
		for _, r := range res {
			if r.Items != n || r.Degenerate() {
				continue
			}
			cov = append(cov, r.Coverage)
			zero += r.ZeroWidth
			if r.Coverage < bandLo {
				below++
			}
		}
		sortFloats(cov)
		fmt.Printf("| %d | %d | %.3f | %.3f | %d | %.1f%% |\n", n, len(cov), cov[0], cov[len(cov)/2], below, 100*zero/float64(len(cov)))
	}
	fmt.Println()
}

func sortFloats(x []float64) {
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && x[j] < x[j-1]; j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}

// issueRows are the rows of issue #25's table.
var issueRows = []coverage.Cell{
	{Items: 30, Base: 0.7, Loss: 0.15, Gain: 0.05},
	{Items: 30, Base: 0.9, Loss: 0.05},
	{Items: 100, Base: 0.95, Loss: 0.02},
	{Items: 100, Base: 0.8, Loss: 0.03, Gain: 0.03},
	{Items: 200, Base: 0.7, Loss: 0.15, Gain: 0.05},
}

// issue re-measures the issue's table through `snapeval report`: every replicate is a run directory in the
// journal format (manifest.json and records.jsonl), reported by the binary, whose report.json gives the interval.
func issue(args []string) error {
	fs := flag.NewFlagSet("issue", flag.ExitOnError)
	bin := fs.String("snapeval", "", "the snapeval binary to run (required)")
	reps := fs.Int("reps", 1000, "replicates (run directories) per row")
	family := fs.String("family", string(coverage.Binary), "binary, samples (4 per item), partial or jitter")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" {
		return fmt.Errorf("-snapeval BIN is required")
	}
	switch coverage.Family(*family) {
	case coverage.Binary, coverage.Samples, coverage.Partial, coverage.Jitter:
	default:
		return fmt.Errorf("-family %q: want binary, samples, partial or jitter", *family)
	}
	tmp, err := os.MkdirTemp("", "snapeval-coverage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Printf("| items | p base | flips a / b | true delta | coverage (%d runs) | zero-width intervals | method | discordant pairs (Σd²) | exact coverage | 93-97%% attainable |\n", *reps)
	fmt.Println("|---:|---:|---|---:|---:|---:|---|---:|---:|---|")
	for ri, c := range issueRows {
		c.Family = coverage.Family(*family)
		truth := 100 * c.Truth()
		covered, zero := make([]bool, *reps), make([]bool, *reps)
		sqSum := make([]float64, *reps)
		methods := make([]string, *reps)
		errs := make([]error, *reps)
		parallel(*reps, func(k int) {
			dir := filepath.Join(tmp, fmt.Sprintf("row%d-rep%05d", ri, k))
			r := rand.New(rand.NewPCG(uint64(ri+1), uint64(k+1)))
			var lo, hi float64
			lo, hi, methods[k], sqSum[k], errs[k] = reportOnce(*bin, dir, c, r)
			covered[k] = lo <= truth+1e-9 && truth-1e-9 <= hi
			zero[k] = hi <= lo
			os.RemoveAll(dir)
		})
		nCov, nZero := 0, 0
		seen := map[string]bool{}
		var ms []string
		for k := range *reps {
			if errs[k] != nil {
				return errs[k]
			}
			if covered[k] {
				nCov++
			}
			if zero[k] {
				nZero++
			}
			if !seen[methods[k]] {
				seen[methods[k]] = true
				ms = append(ms, methods[k])
			}
		}
		mass := 0.0 // the binary family's expected discordant pairs, else the mean summed squared change
		for _, v := range sqSum {
			mass += v / float64(*reps)
		}
		exact, attain := "–", "–"
		if c.Family == coverage.Binary {
			mass = c.ExpectedMass()
			exact = fmt.Sprintf("%.3f", coverage.ExactBinary(c, paired).Coverage)
			attain = attainable(c)
		}
		fmt.Printf("| %d | %g | %g / %g | %+.1f pp | %.3f | %d of %d | %s | %.1f | %s | %s |\n", c.Items, c.Base, c.Loss, c.Gain, truth,
			float64(nCov)/float64(*reps), nZero, *reps, strings.Join(ms, ", "), mass, exact, attain)
	}
	return nil
}

// attainable says whether an interval that agrees with the exact McNemar test can cover within the band.
func attainable(c coverage.Cell) string {
	a := coverage.McNemarAttainable(c, stats.DefaultLevel, bandLo, bandHi)
	switch {
	case !a.Known:
		return "not decided (too many outcomes to enumerate)"
	case a.InBand:
		return "yes"
	}
	return fmt.Sprintf("no: %.3f or more, or %.3f or less", a.Above, a.Below)
}

// reportOnce writes one replicate of c as a run directory, runs `bin report` on it and returns the compressed
// policy's interval (pp) and method from report.json, and the replicate's summed squared per-item change.
func reportOnce(bin, dir string, c coverage.Cell, r *rand.Rand) (lo, hi float64, method string, sq float64, err error) {
	const policy = "snapstream:budget=64"
	m := eval.Manifest{RunID: "coverage", Config: eval.RunConfig{Benches: []string{"synth"}, Policies: []string{"full", policy}}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, "", 0, err
	}
	if err := eval.WriteManifest(dir, m); err != nil {
		return 0, 0, "", 0, err
	}
	base, pol := c.DrawScores(r, c.Items)
	for i := range base {
		d := 0.0
		for s := range base[i] {
			d += (pol[i][s] - base[i][s]) / float64(len(base[i]))
		}
		sq += d * d
	}
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	for i := range base {
		for s := range base[i] {
			for _, side := range []struct {
				policy string
				score  float64
			}{{"full", base[i][s]}, {policy, pol[i][s]}} {
				rec := eval.Record{RunID: m.RunID, Bench: "synth", ItemID: fmt.Sprintf("i%04d", i), Policy: side.policy, Sample: s,
					Score: side.score, Correct: side.score == 1, Verdict: "graded", FinishReason: "stop"}
				if err := enc.Encode(rec); err != nil {
					return 0, 0, "", 0, err
				}
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, eval.JournalFile), []byte(sb.String()), 0o644); err != nil {
		return 0, 0, "", 0, err
	}
	out, err := exec.Command(bin, "report", dir, "--format", "json", "--out", filepath.Join(dir, "out")).Output()
	if err != nil {
		return 0, 0, "", 0, fmt.Errorf("%s report %s: %w", bin, dir, err)
	}
	var rep struct {
		Benches []struct {
			Rows []struct {
				Policy   string   `json:"policy"`
				Lo       *float64 `json:"ci_lo_pp"`
				Hi       *float64 `json:"ci_hi_pp"`
				CIMethod string   `json:"ci_method"`
			} `json:"rows"`
		} `json:"benches"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return 0, 0, "", 0, fmt.Errorf("report of %s: %w", dir, err)
	}
	for _, b := range rep.Benches {
		for _, row := range b.Rows {
			if row.Policy == policy && row.Lo != nil && row.Hi != nil {
				method := row.CIMethod
				if method == "" {
					method = "percentile bootstrap" // reports before the score intervals had no ci_method
				}
				return *row.Lo, *row.Hi, method, sq, nil
			}
		}
	}
	return 0, 0, "", 0, fmt.Errorf("report of %s: no interval for %s", dir, policy)
}
