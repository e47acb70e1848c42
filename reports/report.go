// Package reports derives snapeval's reports and CI gate from stored records alone: per benchmark and cache
// policy the accuracy (graded and strict), the paired delta against the full-cache baseline with a score-type
// confidence interval (stats.PairedCI), the number of items a gate would need, an exact McNemar p-value, error
// counts, token and KV-memory means, and breakdowns by item tag. It writes Markdown, CSV, JSON, an accuracy-versus-budget plot and an accuracy-versus-KV-bytes plot (SVG, PNG);
// policies are grouped by family (FamilyOf); the same records always give byte-identical output.
package reports

import (
	"math"
	"slices"
	"sort"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/stats"
)

// DefaultPlanDrop is the max drop, in percentage points, that the report's planning figures assume when
// Options.PlanDrop is zero.
const DefaultPlanDrop = 2.0

// Options configures Build.
type Options struct {
	// Baseline is the policy every other is compared with (default "full").
	Baseline string
	// Stats configures the intervals (zero: 95%).
	Stats stats.Options
	// PlanDrop is the gate's max drop in percentage points that Row.PlanItems is computed for (default
	// DefaultPlanDrop).
	PlanDrop float64
}

// Report is everything a report shows, computed from records.
type Report struct {
	RunID   string `json:"run_id"`
	Model   string `json:"model,omitempty"`
	Backend string `json:"backend,omitempty"`
	// Shard is the manifest's "i/n" when the records are one shard of a larger run.
	Shard string `json:"shard,omitempty"`
	// TokenizerSource is the manifest's: where the tokenizer that sized the prompts came from, when not the
	// backend's own model (eval.ApproxTokensNote when prompt lengths are estimates).
	TokenizerSource string `json:"tokenizer_source,omitempty"`
	// Planned is the number of records the run planned (0 when unknown); Present the number in the report.
	Planned  int     `json:"planned_records,omitempty"`
	Present  int     `json:"records"`
	Baseline string  `json:"baseline"`
	Level    float64 `json:"ci_level"`
	// PlanDrop is the max drop (pp) the rows' PlanItems assume.
	PlanDrop float64 `json:"plan_max_drop_pp"`
	// Policies lists every policy seen, in report order, with its slot split.
	Policies []PolicyInfo `json:"policies"`
	Benches  []Bench      `json:"benches"`
}

// PolicyInfo is a policy spec, its family (FamilyOf) and its parsed split.
type PolicyInfo struct {
	Spec   string `json:"spec"`
	Family string `json:"family"`
	Split  Split  `json:"split"`
	// ParseError is set when the spec could not be parsed (the policy is still reported).
	ParseError string `json:"parse_error,omitempty"`
}

// Bench is one benchmark's results.
type Bench struct {
	Name string `json:"bench"`
	// HasBaseline is false when no baseline record exists for this benchmark (no deltas then).
	HasBaseline bool `json:"has_baseline"`
	// PassK is the k of the pass@k/cons@k columns (0 when items have a single sample).
	PassK      int         `json:"pass_k,omitempty"`
	Rows       []Row       `json:"rows"`
	Breakdowns []Breakdown `json:"breakdowns,omitempty"`
	// DepthGrids are the needle heat maps' data, one per policy (benchmark ruler only).
	DepthGrids []DepthGrid `json:"depth_grids,omitempty"`
	// Aggregates is the benchmark's official summary per policy (eval.Aggregate), when it registers one.
	Aggregates []AggregateRow `json:"aggregates,omitempty"`
}

// AggregateRow is a benchmark's official aggregate over one policy's graded records.
type AggregateRow struct {
	Policy  string        `json:"policy"`
	Metrics []eval.Metric `json:"metrics"`
}

// Breakdown is the results split by one tag key.
type Breakdown struct {
	Key    string  `json:"key"`
	Groups []Group `json:"groups"`
}

// Group is the rows of the records whose tag Key has value Value ("" when the tag is absent).
type Group struct {
	Value string `json:"value"`
	Rows  []Row  `json:"rows"`
}

// Row is one policy on one set of records. Accuracies and deltas are in percent / percentage points.
type Row struct {
	Policy   string `json:"policy"`
	Baseline bool   `json:"baseline"`
	// Items is the number of distinct items with any record; Records counts all records, Errors the error records.
	Items   int `json:"items"`
	Records int `json:"records"`
	Errors  int `json:"errors"`
	// ErrorKinds counts error records by kind.
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	// Accuracy is the mean over items with a graded record of the per-item mean score (pass@1) over graded records.
	Accuracy Num `json:"accuracy"`
	// Strict counts error records as wrong (score 0), over every item with a record.
	Strict Num `json:"strict_accuracy"`
	// PassK and ConsK are pass@k (unbiased) and cons@k (majority vote) over items with at least k graded samples.
	PassK Num `json:"pass_k"`
	ConsK Num `json:"cons_k"`
	// Delta and its CI (Lo, Hi) are policy minus baseline over Paired items, in percentage points.
	Delta Num `json:"delta_pp"`
	Lo    Num `json:"ci_lo_pp"`
	Hi    Num `json:"ci_hi_pp"`
	// CIMethod names the interval's method (stats.MethodTango or stats.MethodTangoDE; "" without an interval),
	// Design its design effect (1 for right/wrong items), HalfWidth half its width in percentage points.
	CIMethod  string `json:"ci_method,omitempty"`
	Design    Num    `json:"ci_design_effect"`
	HalfWidth Num    `json:"ci_half_width_pp"`
	// ItemLosses and ItemGains are the per-item losses and gains summed over Paired items (for right/wrong
	// items, the numbers of items only the baseline or only the policy got right): what the interval and
	// PlanItems are computed from.
	ItemLosses Num `json:"item_losses"`
	ItemGains  Num `json:"item_gains"`
	// PlanItems is the number of paired items a gate at the report's PlanDrop would need for the interval's
	// half-width to be at most PlanDrop, at the observed loss and gain rates (stats.PlanItems; 0 when not
	// computable).
	PlanItems int `json:"plan_items"`
	// P is the exact McNemar p-value over (item, sample) pairs; BaseWins/PolicyWins are its discordant counts.
	P          Num `json:"mcnemar_p"`
	Pairs      int `json:"pairs"`
	BaseWins   int `json:"base_wins"`
	PolicyWins int `json:"policy_wins"`
	// Paired is the number of items graded under both; Unpaired the items graded on one side only (excluded).
	Paired   int `json:"paired_items"`
	Unpaired int `json:"unpaired_items"`
	// OutputTokens is the mean generated tokens of graded records; KVBytes the mean Record.KVBytes of records
	// that report it (0 when none does).
	OutputTokens Num `json:"mean_output_tokens"`
	KVBytes      Num `json:"mean_kv_bytes"`
}

// Build computes the report of records. m supplies the run identity and the policy order: the baseline first, then
// the other policies grouped by family (FamilyOf, in the order of the constants), in config order within a family;
// policies absent from the manifest follow those of their family, by method, budget and spec.
func Build(m eval.Manifest, recs []eval.Record, opt Options) *Report {
	if opt.Baseline == "" {
		opt.Baseline = "full"
	}
	level := opt.Stats.Level
	if level <= 0 || level >= 1 {
		level = stats.DefaultLevel
	}
	opt.Stats.Level = level
	if !(opt.PlanDrop > 0) {
		opt.PlanDrop = DefaultPlanDrop
	}
	r := &Report{RunID: m.RunID, Model: m.Config.Model, Backend: m.Backend, Baseline: opt.Baseline, Level: level,
		PlanDrop: opt.PlanDrop, Shard: m.Shard, Planned: m.Planned, Present: len(recs), TokenizerSource: m.TokenizerSource}
	if r.Backend == "" {
		r.Backend = m.Config.Backend
	}

	// a private copy in a fixed order, so that float sums and hence the output never depend on the input order
	recs = slices.Clone(recs)
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if a.Bench != b.Bench {
			return a.Bench < b.Bench
		}
		if a.ItemID != b.ItemID {
			return a.ItemID < b.ItemID
		}
		if a.Policy != b.Policy {
			return a.Policy < b.Policy
		}
		return a.Sample < b.Sample
	})
	order := policyOrder(m.Config.Policies, recs, opt.Baseline)
	for _, p := range order {
		info := PolicyInfo{Spec: p}
		s, err := ParseSplit(p)
		info.Split, info.Family = s, FamilyOf(s.Method)
		if err != nil {
			info.ParseError = err.Error()
		}
		r.Policies = append(r.Policies, info)
	}

	byBench := map[string][]eval.Record{}
	var benches []string
	for _, rec := range recs {
		if _, ok := byBench[rec.Bench]; !ok {
			benches = append(benches, rec.Bench)
		}
		byBench[rec.Bench] = append(byBench[rec.Bench], rec)
	}
	benches = orderBy(m.Config.Benches, benches)
	for _, name := range benches {
		r.Benches = append(r.Benches, buildBench(name, byBench[name], order, opt))
	}
	return r
}

func buildBench(name string, recs []eval.Record, order []string, opt Options) Bench {
	b := Bench{Name: name, PassK: passK(recs)}
	for _, rec := range recs {
		if rec.Policy == opt.Baseline {
			b.HasBaseline = true
			break
		}
	}
	b.Rows = rows(recs, order, b.PassK, opt)
	if name == RulerBench {
		b.DepthGrids = depthGridsOf(recs, order)
	}

	// breakdowns by every tag key seen in this benchmark
	keys := map[string]bool{}
	for _, rec := range recs {
		for k := range eval.ParseTags(rec.Tags) {
			keys[k] = true
		}
	}
	for _, k := range sortedKeys(keys) {
		groups := map[string][]eval.Record{}
		for _, rec := range recs {
			v := eval.ParseTags(rec.Tags)[k]
			groups[v] = append(groups[v], rec)
		}
		bd := Breakdown{Key: k}
		for _, v := range sortedKeys(groups) {
			bd.Groups = append(bd.Groups, Group{Value: v, Rows: rows(groups[v], order, b.PassK, opt)})
		}
		b.Breakdowns = append(b.Breakdowns, bd)
	}
	b.Aggregates = aggregateRows(name, recs, order)
	return b
}

// aggregateRows computes the benchmark's registered aggregate for each policy in order, over its graded records
// (an item's score is the mean over its graded samples).
func aggregateRows(bench string, recs []eval.Record, order []string) []AggregateRow {
	agg, ok := eval.AggregateFor(bench)
	if !ok {
		return nil
	}
	type item struct {
		tags  string
		sum   float64
		count int
	}
	byPolicy := map[string]map[string]*item{}
	for _, rec := range recs {
		if rec.IsError() {
			continue
		}
		m := byPolicy[rec.Policy]
		if m == nil {
			m = map[string]*item{}
			byPolicy[rec.Policy] = m
		}
		it := m[rec.ItemID]
		if it == nil {
			it = &item{tags: rec.Tags}
			m[rec.ItemID] = it
		}
		it.sum += rec.Score
		it.count++
	}
	var out []AggregateRow
	for _, p := range order {
		m, ok := byPolicy[p]
		if !ok {
			continue
		}
		scores := make([]eval.ItemScore, 0, len(m))
		for _, id := range sortedKeys(m) {
			it := m[id]
			scores = append(scores, eval.ItemScore{ID: id, Tags: eval.ParseTags(it.tags), Score: it.sum / float64(it.count)})
		}
		if ms := agg(scores); len(ms) > 0 {
			out = append(out, AggregateRow{Policy: p, Metrics: ms})
		}
	}
	return out
}

// rows computes one Row per policy present in recs, in order.
func rows(recs []eval.Record, order []string, k int, opt Options) []Row {
	byPolicy := map[string][]eval.Record{}
	for _, rec := range recs {
		byPolicy[rec.Policy] = append(byPolicy[rec.Policy], rec)
	}
	base, hasBase := byPolicy[opt.Baseline]
	baseObs := graded(base)
	var out []Row
	for _, p := range order {
		prs, ok := byPolicy[p]
		if !ok {
			continue
		}
		row := summarize(p, prs, k)
		row.Baseline = p == opt.Baseline
		row.Delta, row.Lo, row.Hi, row.P = nan(), nan(), nan(), nan()
		row.Design, row.HalfWidth, row.ItemLosses, row.ItemGains = nan(), nan(), nan(), nan()
		if hasBase && !row.Baseline {
			c := stats.Compare(baseObs, graded(prs), opt.Stats)
			row.Delta, row.Lo, row.Hi = Num(100*c.Delta), Num(100*c.Lo), Num(100*c.Hi)
			if c.Items > 0 {
				row.CIMethod, row.Design, row.HalfWidth = c.CI.Method, Num(c.CI.Design), Num(100*c.CI.HalfWidth())
				row.ItemLosses, row.ItemGains = Num(c.CI.Loss), Num(c.CI.Gain)
				row.PlanItems = stats.PlanItems(c.CI, opt.PlanDrop/100)
			}
			row.P = Num(c.P)
			row.Pairs, row.BaseWins, row.PolicyWins = c.Pairs, c.BaseWins, c.PolicyWins
			row.Paired, row.Unpaired = c.Items, c.BaseOnly+c.PolicyOnly
		}
		out = append(out, row)
	}
	return out
}

func summarize(policy string, recs []eval.Record, k int) Row {
	row := Row{Policy: policy, Records: len(recs)}
	items := map[string]bool{}
	var strict []stats.Obs
	var tokens, kv []float64
	for _, rec := range recs {
		items[rec.ItemID] = true
		o := stats.Obs{Item: rec.ItemID, Sample: rec.Sample}
		if rec.IsError() {
			row.Errors++
			if row.ErrorKinds == nil {
				row.ErrorKinds = map[string]int{}
			}
			row.ErrorKinds[rec.ErrorKind]++
		} else {
			o.Score, o.Correct = rec.Score, rec.Correct
			tokens = append(tokens, float64(rec.OutputTokens))
		}
		strict = append(strict, o)
		if rec.KVBytes > 0 {
			kv = append(kv, float64(rec.KVBytes))
		}
	}
	row.Items = len(items)
	row.Accuracy = pct(stats.Accuracy(graded(recs)))
	row.Strict = pct(stats.Accuracy(strict))
	row.OutputTokens = Num(stats.Mean(tokens))
	row.KVBytes = 0
	if len(kv) > 0 {
		row.KVBytes = Num(stats.Mean(kv))
	}
	row.PassK, row.ConsK = nan(), nan()
	if k > 1 {
		row.PassK, row.ConsK = passCons(recs, k)
	}
	return row
}

// passK is the k of pass@k for a benchmark: the largest sample count every item of every policy reaches
// (0 when that is 1, i.e. nothing beyond pass@1 to show).
func passK(recs []eval.Record) int {
	n := map[[2]string]int{}
	for _, rec := range recs {
		n[[2]string{rec.Policy, rec.ItemID}]++
	}
	k := math.MaxInt
	for _, c := range n {
		k = min(k, c)
	}
	if k == math.MaxInt || k < 2 {
		return 0
	}
	return k
}

// passCons computes mean pass@k and cons@k over items with at least k graded samples (samples in index order).
func passCons(recs []eval.Record, k int) (Num, Num) {
	byItem := map[string][]eval.Record{}
	for _, rec := range recs {
		if !rec.IsError() {
			byItem[rec.ItemID] = append(byItem[rec.ItemID], rec)
		}
	}
	var pass, cons []float64
	for _, id := range sortedKeys(byItem) {
		rs := byItem[id]
		if len(rs) < k {
			continue
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].Sample < rs[j].Sample })
		c := 0
		answers := make([]string, len(rs))
		correct := make([]bool, len(rs))
		for i, rec := range rs {
			if rec.Correct {
				c++
			}
			answers[i], correct[i] = rec.Extracted, rec.Correct
		}
		p, err := stats.PassAtK(len(rs), c, k)
		if err != nil {
			continue // unreachable: 1 <= k <= len(rs) and 0 <= c <= len(rs)
		}
		pass = append(pass, p)
		_, ok, err := stats.ConsAtK(answers, correct, k)
		if err == nil {
			cons = append(cons, b2f(ok))
		}
	}
	return pct(stats.Mean(pass)), pct(stats.Mean(cons))
}

func graded(recs []eval.Record) []stats.Obs {
	var obs []stats.Obs
	for _, rec := range recs {
		if !rec.IsError() {
			obs = append(obs, stats.Obs{Item: rec.ItemID, Sample: rec.Sample, Score: rec.Score, Correct: rec.Correct})
		}
	}
	return obs
}

// policyOrder lists the policies of recs: baseline first, then the manifest's order, then the rest sorted by
// method, budget and spec.
func policyOrder(config []string, recs []eval.Record, baseline string) []string {
	seen := map[string]bool{}
	for _, rec := range recs {
		seen[rec.Policy] = true
	}
	var out []string
	if seen[baseline] {
		out = append(out, baseline)
	}
	done := map[string]bool{baseline: true}
	for _, p := range config {
		// records hold canonical specs; the manifest holds what the user wrote
		if p = canonical(p); seen[p] && !done[p] {
			out = append(out, p)
			done[p] = true
		}
	}
	var rest []string
	for p := range seen {
		if !done[p] {
			rest = append(rest, p)
		}
	}
	sort.Slice(rest, func(i, j int) bool {
		a, _ := ParseSplit(rest[i])
		b, _ := ParseSplit(rest[j])
		if a.Method != b.Method {
			return a.Method < b.Method
		}
		if a.Budget != b.Budget {
			return a.Budget < b.Budget
		}
		return rest[i] < rest[j]
	})
	out = append(out, rest...)
	// Group by family, keeping the order above within each; the baseline stays first.
	first := 0
	if len(out) > 0 && out[0] == baseline && seen[baseline] {
		first = 1
	}
	rank := make(map[string]int, len(out))
	for _, p := range out {
		s, _ := ParseSplit(p)
		rank[p] = familyRank(s.Method)
	}
	sort.SliceStable(out[first:], func(i, j int) bool { return rank[out[first+i]] < rank[out[first+j]] })
	return out
}

// orderBy returns names in the order of config first, then the rest sorted.
func orderBy(config, names []string) []string {
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	var out []string
	for _, c := range config {
		if have[c] {
			out = append(out, c)
			delete(have, c)
		}
	}
	return append(out, sortedKeys(have)...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func pct(f float64) Num { return Num(100 * f) }

func nan() Num { return Num(math.NaN()) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Incomplete reports whether the run planned more records than the report holds.
func (r *Report) Incomplete() bool { return r.Planned > 0 && r.Present < r.Planned }
