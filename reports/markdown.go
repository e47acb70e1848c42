package reports

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/stats"
)

// WriteMarkdown writes the report as Markdown (report.md).
func WriteMarkdown(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	p("# snapeval report\n\n")
	if r.RunID != "" {
		p("- run: `%s`\n", r.RunID)
	}
	if r.Shard != "" {
		p("- **shard %s only**: this report covers one shard of the run; pass every shard directory to merge them\n", mdText(r.Shard))
	}
	if r.Incomplete() {
		p("- **incomplete**: %d of %d planned records are present (the run stopped early or shards are missing): re-run it to resume, or pass every shard\n", r.Present, r.Planned)
	}
	switch {
	case r.Model != "":
		p("- model: `%s`, backend: `%s`\n", r.Model, r.Backend)
	case r.Backend != "":
		p("- backend: `%s`\n", r.Backend)
	}
	switch {
	case r.TokenizerSource == eval.ApproxTokensNote:
		p("- **prompt lengths are estimates**: no tokenizer of the served model (4 bytes a token, `approx_tokens=true`); lengths in tokens and truncations are approximate\n")
	case r.TokenizerSource != "":
		p("- prompts sized with the tokenizer %s\n", mdText(r.TokenizerSource))
	}
	p("- baseline: `%s`; Δ = policy minus baseline on the items graded under both (paired), in percentage points\n", r.Baseline)
	p("- CI: %g%% interval of Δ over paired items: Tango's score interval for right/wrong items (`tango`), the same on counts divided by a design effect for partial scores or several samples per item (`tango-de`); never zero width (docs/statistics.md)\n",
		100*r.Level)
	p("- p: exact two-sided McNemar test over (item, sample) pairs\n")
	p("- planning: the CI half-width a run achieved, and the paired items a gate at `--max-drop %g` would need for a half-width of at most %g pp at the same loss and gain rates\n",
		r.PlanDrop, r.PlanDrop)
	p("- acc: mean over items of the mean score of graded samples (pass@1); strict: error records count as wrong\n")
	p("- pass@k (unbiased estimator) and cons@k (majority vote of extracted answers) cover items with at least k graded samples\n")
	p("- KV MiB: mean KV-cache bytes per sequence as reported by the backend; out tok: mean generated tokens of graded records\n")
	p("\n## Policies\n\n")
	p("| family | policy | method | budget | sinks | topk | recent | window | kernel | adaptive |\n")
	p("|---|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, pi := range r.Policies {
		s := pi.Split
		method := s.Method
		if s.Base != "" {
			method += " on " + s.Base
		}
		if s.Bits > 0 {
			method += fmt.Sprintf(", %d-bit K/V, group %d", s.Bits, s.Group)
		}
		if s.Weights != "" {
			method += ", " + s.Weights + " weights"
		}
		if s.Method == "full" || s.Method == "kvquant" {
			p("| %s | `%s` | %s | all | – | – | – | – | – | – |\n", mdText(pi.Family), mdCode(pi.Spec), mdText(method))
			continue
		}
		p("| %s | `%s` | %s | %d | %d | %d | %d | %d | %d | %s |\n", mdText(pi.Family), mdCode(pi.Spec), mdText(method), s.Budget, s.Sinks, s.TopK,
			s.Recent, s.Window, s.Kernel, yesNo(s.Adaptive))
		if pi.ParseError != "" {
			p("\n> policy `%s` could not be parsed: %s\n\n", mdCode(pi.Spec), mdText(pi.ParseError))
		}
	}

	for _, b := range r.Benches {
		p("\n## %s\n\n", mdText(b.Name))
		if !b.HasBaseline {
			p("> no `%s` baseline records for this benchmark: no deltas.\n\n", mdCode(r.Baseline))
		}
		writeRowsTable(bw, "", []Group{{Rows: b.Rows}}, b.PassK)
		writeMethods(bw, []Group{{Rows: b.Rows}})
		writePlanning(bw, b.Rows, r.PlanDrop)
		writeErrors(bw, b.Rows)
		if len(b.DepthGrids) > 0 {
			p("\nNeedle accuracy by length and depth, per policy: [%s](%s) ([SVG](%s)).\n", HeatmapPNG, HeatmapPNG, HeatmapSVG)
		}
		writeAggregates(bw, b.Aggregates)
		for _, bd := range b.Breakdowns {
			p("\n### by %s\n\n", mdText(bd.Key))
			writeRowsTable(bw, bd.Key, bd.Groups, b.PassK)
			writeMethods(bw, bd.Groups)
		}
	}
	return bw.Flush()
}

// writeAggregates writes the benchmark's official aggregate: one row per policy, one column per metric (the
// union of the policies' metric names, in first-seen order), two decimals.
func writeAggregates(w io.Writer, rows []AggregateRow) {
	if len(rows) == 0 {
		return
	}
	var names []string
	seen := map[string]bool{}
	for _, r := range rows {
		for _, m := range r.Metrics {
			if !seen[m.Name] {
				seen[m.Name] = true
				names = append(names, m.Name)
			}
		}
	}
	fmt.Fprintf(w, "\n### official aggregate\n\n")
	cols := []string{"policy"}
	for _, n := range names {
		cols = append(cols, mdText(n))
	}
	fmt.Fprintf(w, "| %s |\n|---|%s\n", strings.Join(cols, " | "), strings.Repeat("---:|", len(names)))
	for _, r := range rows {
		vals := map[string]float64{}
		for _, m := range r.Metrics {
			vals[m.Name] = m.Value
		}
		cells := []string{"`" + mdCode(r.Policy) + "`"}
		for _, n := range names {
			if v, ok := vals[n]; ok {
				cells = append(cells, fix(Num(v), 2))
			} else {
				cells = append(cells, "–")
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// writeRowsTable writes one table of rows; with a tag key, the groups' rows follow each other and every row
// starts with its tag value.
func writeRowsTable(w io.Writer, key string, groups []Group, k int) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	cols := []string{"policy", "items", "records", "errors", "acc %", "strict %"}
	if k > 0 {
		cols = append(cols, fmt.Sprintf("pass@%d %%", k), fmt.Sprintf("cons@%d %%", k))
	}
	cols = append(cols, "Δ pp", "CI pp", "McNemar p", "paired", "out tok", "KV MiB")
	if key != "" {
		cols = append([]string{mdText(key)}, cols...)
	}
	p("| %s |\n|", strings.Join(cols, " | "))
	for i := range cols {
		if i == 0 || (key != "" && i == 1) {
			p("---|")
		} else {
			p("---:|")
		}
	}
	p("\n")
	for _, g := range groups {
		value := g.Value
		if value == "" {
			value = "(untagged)"
		}
		for _, r := range g.Rows {
			var cells []string
			if key != "" {
				cells = append(cells, mdText(value))
			}
			cells = append(cells, "`"+mdCode(r.Policy)+"`", fmt.Sprint(r.Items), fmt.Sprint(r.Records), errCell(r.Errors),
				fix(r.Accuracy, 1), fix(r.Strict, 1))
			if k > 0 {
				cells = append(cells, fix(r.PassK, 1), fix(r.ConsK, 1))
			}
			if r.Baseline {
				cells = append(cells, "baseline", "", "", "")
			} else {
				cells = append(cells, signed(r.Delta), ci(r.Lo, r.Hi), pval(r.P), paired(r))
			}
			cells = append(cells, fix(r.OutputTokens, 0), mib(r.KVBytes))
			p("| %s |\n", strings.Join(cells, " | "))
		}
	}
}

// methodNames describes each interval method in a table note.
var methodNames = map[string]string{
	stats.MethodTango:   "Tango's score interval on right/wrong items",
	stats.MethodTangoDE: "Tango's score interval on counts divided by a design effect D, for partial scores or several samples per item",
}

// writeMethods writes the note naming the method of the intervals in a table: with one method "every row";
// with several, the policies of each in a benchmark's own table, and where each applies in a breakdown (whose
// groups can differ; report.csv and report.json give every row's).
func writeMethods(w io.Writer, groups []Group) {
	byMethod := map[string][]string{}
	seen := map[string]bool{}
	dLo, dHi := math.Inf(1), math.Inf(-1)
	for _, g := range groups {
		for _, r := range g.Rows {
			if r.CIMethod == "" {
				continue
			}
			if !seen[r.CIMethod+"\x00"+r.Policy] {
				seen[r.CIMethod+"\x00"+r.Policy] = true
				byMethod[r.CIMethod] = append(byMethod[r.CIMethod], "`"+mdCode(r.Policy)+"`")
			}
			if r.CIMethod == stats.MethodTangoDE && r.Design.OK() {
				dLo, dHi = math.Min(dLo, float64(r.Design)), math.Max(dHi, float64(r.Design))
			}
		}
	}
	if len(byMethod) == 0 {
		return
	}
	var parts []string
	for _, m := range sortedKeys(byMethod) {
		desc := methodNames[m]
		if desc == "" {
			desc = mdText(m)
		}
		if m == stats.MethodTangoDE {
			if dLo == dHi {
				desc += fmt.Sprintf(", D = %.2f", dLo)
			} else {
				desc += fmt.Sprintf(", D %.2f–%.2f", dLo, dHi)
			}
		}
		var who string
		switch {
		case len(byMethod) == 1:
			who = ": every row"
		case len(groups) == 1:
			who = ": " + strings.Join(byMethod[m], ", ")
		case m == stats.MethodTango:
			who = " where every item of the row is right or wrong"
		default:
			who = " in the other rows"
		}
		parts = append(parts, fmt.Sprintf("`%s` (%s)%s", m, desc, who))
	}
	note := strings.Join(parts, "; ")
	if len(byMethod) > 1 && len(groups) > 1 {
		note += " (each row's in the `ci_method` column of report.csv and report.json)"
	}
	fmt.Fprintf(w, "\nCI method: %s.\n", note)
}

// writePlanning writes the line of planning figures under a benchmark's table.
func writePlanning(w io.Writer, rows []Row, drop float64) {
	var parts []string
	for _, r := range rows {
		if r.Baseline || !r.HalfWidth.OK() {
			continue
		}
		parts = append(parts, fmt.Sprintf("`%s` ±%s pp from %d items, needs %s", mdCode(r.Policy), fix(r.HalfWidth, 1), r.Paired,
			items(r.PlanItems)))
	}
	if len(parts) == 0 {
		return
	}
	fmt.Fprintf(w, "\nPlanning (CI half-width now, paired items a gate at `--max-drop %g` needs for ±%g pp): %s.\n", drop, drop,
		strings.Join(parts, "; "))
}

// items prints an item count with thousands separators ("> 10^12" for the PlanItems overflow).
func items(n int) string {
	if n == math.MaxInt {
		return "> 10^12"
	}
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func writeErrors(w io.Writer, rows []Row) {
	total := 0
	var parts []string
	for _, r := range rows {
		if r.Errors == 0 {
			continue
		}
		total += r.Errors
		var kinds []string
		for _, k := range sortedKeys(r.ErrorKinds) {
			kinds = append(kinds, fmt.Sprintf("%s %d", mdText(k), r.ErrorKinds[k]))
		}
		parts = append(parts, fmt.Sprintf("`%s`: %s", mdCode(r.Policy), strings.Join(kinds, ", ")))
	}
	if total == 0 {
		fmt.Fprintf(w, "\nNo error records.\n")
		return
	}
	fmt.Fprintf(w, "\n**%d error record(s)** (excluded from acc and Δ, counted as wrong in strict): %s.\n", total, strings.Join(parts, "; "))
}

func errCell(n int) string {
	if n == 0 {
		return "0"
	}
	return fmt.Sprintf("**%d**", n)
}

func paired(r Row) string {
	if r.Unpaired == 0 {
		return fmt.Sprint(r.Paired)
	}
	return fmt.Sprintf("%d (%d excluded)", r.Paired, r.Unpaired)
}

func fix(n Num, prec int) string {
	if !n.OK() {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, clean(float64(n), prec))
}

func signed(n Num) string {
	if !n.OK() {
		return "–"
	}
	return fmt.Sprintf("%+.1f", clean(float64(n), 1))
}

func ci(lo, hi Num) string {
	if !lo.OK() || !hi.OK() {
		return "–"
	}
	return fmt.Sprintf("[%+.1f, %+.1f]", clean(float64(lo), 1), clean(float64(hi), 1))
}

func pval(n Num) string {
	f := float64(n)
	switch {
	case !n.OK():
		return "–"
	case f >= 0.001:
		return fmt.Sprintf("%.3f", f)
	default:
		return fmt.Sprintf("%.1e", f)
	}
}

func mib(n Num) string {
	if !n.OK() || n == 0 {
		return "–"
	}
	v := float64(n) / (1 << 20)
	switch {
	case v >= 1:
		return fmt.Sprintf("%.1f", v)
	case v >= 0.1:
		return fmt.Sprintf("%.2f", v)
	default: // small models: never print 0.0 for a cache that holds something
		return fmt.Sprintf("%.2g", v)
	}
}

// clean maps values that round to zero onto +0, so that "-0.0" never appears.
func clean(f float64, prec int) float64 {
	if math.Abs(f) < 0.5*math.Pow(10, -float64(prec)) {
		return 0
	}
	return f
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// mdCode makes s safe inside a Markdown code span within a table cell.
func mdCode(s string) string {
	return strings.NewReplacer("`", "'", "|", "\\|", "\n", " ").Replace(s)
}

// mdText makes s safe as plain text in a table cell or heading.
func mdText(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ", "*", "\\*", "_", "\\_", "`", "\\`", "<", "&lt;").Replace(s)
}
