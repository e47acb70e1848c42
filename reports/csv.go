package reports

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"strings"
)

// csvHeader is the header of report.csv: one row per (bench, tag group, policy); tag_key and tag_value are
// empty for the overall rows.
var csvHeader = []string{
	"bench", "tag_key", "tag_value", "policy", "baseline", "method", "budget", "sinks", "topk", "recent", "window",
	"kernel", "adaptive", "items", "records", "errors", "error_kinds", "accuracy", "strict_accuracy", "k", "pass_k",
	"cons_k", "delta_pp", "ci_lo_pp", "ci_hi_pp", "ci_method", "ci_design_effect", "ci_half_width_pp", "item_losses",
	"item_gains", "plan_max_drop_pp", "plan_items", "mcnemar_p", "pairs", "base_wins", "policy_wins", "paired_items",
	"unpaired_items", "mean_output_tokens", "mean_kv_bytes", "family", "bits", "group",
}

// WriteCSV writes the report as CSV (report.csv). Missing numbers are empty cells.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	splits := map[string]Split{}
	for _, p := range r.Policies {
		splits[p.Spec] = p.Split
	}
	write := func(bench, key, value string, k int, rows []Row) error {
		for _, row := range rows {
			s := splits[row.Policy]
			rec := []string{
				bench, key, value, row.Policy, strconv.FormatBool(row.Baseline), s.Method, itoa(s.Budget), itoa(s.Sinks),
				itoa(s.TopK), itoa(s.Recent), itoa(s.Window), itoa(s.Kernel), strconv.FormatBool(s.Adaptive),
				itoa(row.Items), itoa(row.Records), itoa(row.Errors), kinds(row.ErrorKinds), num(row.Accuracy),
				num(row.Strict), itoa(k), num(row.PassK), num(row.ConsK), num(row.Delta), num(row.Lo), num(row.Hi),
				row.CIMethod, num(row.Design), num(row.HalfWidth), num(row.ItemLosses), num(row.ItemGains), planDrop(row, r.PlanDrop),
				planItems(row.PlanItems), num(row.P), itoa(row.Pairs), itoa(row.BaseWins), itoa(row.PolicyWins), itoa(row.Paired),
				itoa(row.Unpaired), num(row.OutputTokens), num(row.KVBytes), FamilyOf(s.Method), itoa(s.Bits), itoa(s.Group),
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		return nil
	}
	for _, b := range r.Benches {
		if err := write(b.Name, "", "", b.PassK, b.Rows); err != nil {
			return err
		}
		for _, bd := range b.Breakdowns {
			for _, g := range bd.Groups {
				if err := write(b.Name, bd.Key, g.Value, b.PassK, g.Rows); err != nil {
					return err
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the report as indented JSON (NaN numbers as null).
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

func itoa(n int) string { return strconv.Itoa(n) }

// planDrop is the report's planning max drop on rows that have planning figures.
func planDrop(row Row, drop float64) string {
	if row.PlanItems == 0 {
		return ""
	}
	return strconv.FormatFloat(drop, 'f', -1, 64)
}

// planItems is a PlanItems cell: empty when not computable.
func planItems(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func num(n Num) string {
	if !n.OK() {
		return ""
	}
	return strconv.FormatFloat(clean(float64(n), 6), 'f', 6, 64)
}

// kinds renders error counts as "kind:n;kind:n" sorted by kind.
func kinds(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + strconv.Itoa(m[k])
	}
	return strings.Join(parts, ";")
}
