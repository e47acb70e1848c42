package eval

import (
	"fmt"
	"sort"
	"strings"

	"github.com/snapeval/snapeval/llm"
)

// Record is the result of one (benchmark, item, policy, sample): the unit the store keeps, and the only input
// of reports and gates. Records hold nothing that varies between identical runs (no wall-clock times): timings
// live apart, in the run's timings file, so that the same config and seed give byte-identical records.
type Record struct {
	RunID  string `json:"run_id" parquet:"run_id"`
	Bench  string `json:"bench" parquet:"bench"`
	ItemID string `json:"item_id" parquet:"item_id"`
	// Policy is the canonical cache-policy spec ("full" for the baseline).
	Policy string `json:"policy" parquet:"policy"`
	Sample int    `json:"sample" parquet:"sample"`
	// Seed is the per-sample seed, derived from the run seed, benchmark, item and sample (not the policy,
	// so samples of different policies are paired).
	Seed uint64 `json:"seed" parquet:"seed"`
	// PromptHash is the sha256 (hex) of the rendered request (messages or prompt) sent to the backend.
	PromptHash string `json:"prompt_hash" parquet:"prompt_hash"`
	Output     string `json:"output" parquet:"output"`
	// FirstOutput is the first pass's output when the benchmark asks twice (see Chained); Output is the second.
	FirstOutput string `json:"first_output" parquet:"first_output"`
	Extracted   string `json:"extracted" parquet:"extracted"`
	Correct     bool   `json:"correct" parquet:"correct"`
	// Score in [0,1] (partial credit for RULER multi-value tasks; 1/0 elsewhere).
	Score   float64 `json:"score" parquet:"score"`
	Verdict string  `json:"verdict" parquet:"verdict"`
	// ErrorKind is empty for a graded output, else one of the ErrKind constants: an error record, never a wrong answer.
	ErrorKind    string `json:"error_kind" parquet:"error_kind"`
	Error        string `json:"error" parquet:"error"`
	PromptTokens int    `json:"prompt_tokens" parquet:"prompt_tokens"`
	OutputTokens int    `json:"output_tokens" parquet:"output_tokens"`
	FinishReason string `json:"finish_reason" parquet:"finish_reason"`
	// Capacity is the cache slots per layer and KV head the backend used; KVBytes the sequence's KV memory.
	Capacity int   `json:"capacity" parquet:"capacity"`
	KVBytes  int64 `json:"kv_bytes" parquet:"kv_bytes"`
	// PolicyDeclared is true when the backend reports the policy as configured rather than observed.
	PolicyDeclared bool   `json:"policy_declared" parquet:"policy_declared"`
	Seeded         bool   `json:"seeded" parquet:"seeded"`
	Backend        string `json:"backend" parquet:"backend"`
	// Tags are the item's breakdown dimensions, as "key=value" pairs sorted by key, joined by ";".
	Tags string `json:"tags" parquet:"tags"`
}

// IsError reports whether the record is an error record (not graded).
func (r Record) IsError() bool { return r.ErrorKind != "" }

// RetryableKind reports whether an error record of kind may come out otherwise when its request is sent again
// (a backend failure, a timeout, a grader that failed); a context overflow recurs on every try.
func RetryableKind(kind string) bool { return kind != llm.ErrKindContextOverflow }

// ErrorSummary is the line a run ends with while error records remain: how many of total, of which kinds, and
// whether re-running the command can change them (only for retryable kinds). kinds counts records by ErrorKind.
func ErrorSummary(kinds map[string]int, total int, dir string) string {
	names := make([]string, 0, len(kinds))
	n, retry := 0, 0
	for k, c := range kinds {
		names = append(names, k)
		n += c
		if RetryableKind(k) {
			retry += c
		}
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%d %s", kinds[k], k)
	}
	msg := fmt.Sprintf("%d of %d records are errors (%s; see `snapeval export %s`)", n, total, strings.Join(parts, ", "), dir)
	switch {
	case retry == n:
		return msg + ": re-run the same command to retry them"
	case retry == 0:
		return msg + ": they recur on every try (the prompt and max new tokens do not fit the model: lower --max-new, " +
			"or use a model with a longer context); re-running will not change them"
	}
	return fmt.Sprintf("%s: re-run the same command to retry the %d retryable ones; the %d %s ones recur on every try",
		msg, retry, n-retry, llm.ErrKindContextOverflow)
}
