package longbench1

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
)

// refCase is one line of testdata/metrics_ref.jsonl: a metric's inputs and the score LongBench's own metrics.py
// gave them, called at eval.py's stack depth, under three library configurations:
//
//   - default: CPython 3.10, rouge 1.0.1, fuzzywuzzy 0.18 without python-Levenshtein (difflib), jieba 0.42.1;
//   - py311_levenshtein: CPython 3.11, rouge 1.0.1, fuzzywuzzy with python-Levenshtein 0.12;
//   - rouge_1.0.0: CPython 3.10, rouge 1.0.0, difflib.
type refCase struct {
	Metric  string             `json:"metric"`
	Pred    string             `json:"pred"`
	Ref     string             `json:"ref"`
	Classes []string           `json:"classes"`
	Want    map[string]float64 `json:"want"`
}

var refConfigs = map[string]Scorer{
	"default":           DefaultScorer,
	"py311_levenshtein": {Rouge: RougeV101, RougeDepth: DefaultRougeDepth + 1, CodeSim: CodeSimLevenshtein},
	"rouge_1.0.0":       {Rouge: RougeV100, RougeDepth: DefaultRougeDepth, CodeSim: CodeSimDifflib},
}

// perfectRouge is the rouge package's F for P = R = 1 (its 1e-8 smoothing), which snapeval reports as 1.
var perfectRouge = 2.0 * ((1.0 * 1.0) / (1.0 + 1.0 + 1e-8))

// TestMetricsMatchReference checks every metric against the official implementation's scores, exactly (bit for
// bit), under each configuration.
func TestMetricsMatchReference(t *testing.T) {
	f, err := os.Open("testdata/metrics_ref.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	n := 0
	perMetric := map[string]int{}
	for sc.Scan() {
		n++
		var c refCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		perMetric[c.Metric]++
		for name, want := range c.Want {
			s, ok := refConfigs[name]
			if !ok {
				t.Fatalf("line %d: unknown configuration %q", n, name)
			}
			got, err := s.Score(c.Metric, c.Pred, c.Ref, c.Classes)
			if err != nil {
				t.Errorf("line %d %s (%s): %v", n, c.Metric, name, err)
				continue
			}
			if got == 1 && want == perfectRouge && (c.Metric == MetricRouge || c.Metric == MetricRougeZh) {
				continue
			}
			if got != want {
				t.Errorf("line %d %s (%s): got %v, want %v\npred %.200q\nref  %.200q", n, c.Metric, name, got, want, c.Pred, c.Ref)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{MetricQAF1, MetricQAF1Zh, MetricRouge, MetricRougeZh, MetricClass, MetricRetrieval, MetricRetrievalZ, MetricCount, MetricCodeSim} {
		if perMetric[m] < 20 {
			t.Errorf("%s: only %d reference cases", m, perMetric[m])
		}
	}
}
