package longbench1

// Task is one of LongBench's 21 tasks with its official settings (LongBench/pred.py, eval.py and config/).
type Task struct {
	Name string
	// Category is the task type of the paper's Table 1 and the README leaderboard.
	Category string
	// Lang is "en", "zh" or "code" (code tasks count in both languages' averages).
	Lang string
	// Metric is eval.py's dataset2metric entry.
	Metric string
	// MaxNew is config/dataset2maxlen.json's entry.
	MaxNew int
	// Raw is true for the tasks pred.py sends without the chat template (trec, triviaqa, samsum, lsht, lcc,
	// repobench-p).
	Raw bool
	// FirstLine is true for the tasks eval.py scores on the first line of the prediction (trec, triviaqa,
	// samsum, lsht).
	FirstLine bool
	// E is true for the 13 tasks of LongBench-E.
	E bool
}

// Categories, in the README leaderboard's column order.
const (
	CatSingleDoc = "Single-Doc QA"
	CatMultiDoc  = "Multi-Doc QA"
	CatSumm      = "Summarization"
	CatFewShot   = "Few-shot Learning"
	CatSynthetic = "Synthetic Tasks"
	CatCode      = "Code Completion"
)

// Categories lists the categories in display order.
var Categories = []string{CatSingleDoc, CatMultiDoc, CatSumm, CatFewShot, CatSynthetic, CatCode}

// Tasks lists the 21 tasks in pred.py's order.
var Tasks = []Task{
	{"narrativeqa", CatSingleDoc, "en", MetricQAF1, 128, false, false, false},
	{"qasper", CatSingleDoc, "en", MetricQAF1, 128, false, false, true},
	{"multifieldqa_en", CatSingleDoc, "en", MetricQAF1, 64, false, false, true},
	{"multifieldqa_zh", CatSingleDoc, "zh", MetricQAF1Zh, 64, false, false, false},
	{"hotpotqa", CatMultiDoc, "en", MetricQAF1, 32, false, false, true},
	{"2wikimqa", CatMultiDoc, "en", MetricQAF1, 32, false, false, true},
	{"musique", CatMultiDoc, "en", MetricQAF1, 32, false, false, false},
	{"dureader", CatMultiDoc, "zh", MetricRougeZh, 128, false, false, false},
	{"gov_report", CatSumm, "en", MetricRouge, 512, false, false, true},
	{"qmsum", CatSumm, "en", MetricRouge, 512, false, false, false},
	{"multi_news", CatSumm, "en", MetricRouge, 512, false, false, true},
	{"vcsum", CatSumm, "zh", MetricRougeZh, 512, false, false, false},
	{"trec", CatFewShot, "en", MetricClass, 64, true, true, true},
	{"triviaqa", CatFewShot, "en", MetricQAF1, 32, true, true, true},
	{"samsum", CatFewShot, "en", MetricRouge, 128, true, true, true},
	{"lsht", CatFewShot, "zh", MetricClass, 64, true, true, false},
	{"passage_count", CatSynthetic, "en", MetricCount, 32, false, false, true},
	{"passage_retrieval_en", CatSynthetic, "en", MetricRetrieval, 32, false, false, true},
	{"passage_retrieval_zh", CatSynthetic, "zh", MetricRetrievalZ, 32, false, false, false},
	{"lcc", CatCode, "code", MetricCodeSim, 64, true, false, true},
	{"repobench-p", CatCode, "code", MetricCodeSim, 64, true, false, true},
}

// TaskByName returns the task called name.
func TaskByName(name string) (Task, bool) {
	for _, t := range Tasks {
		if t.Name == name {
			return t, true
		}
	}
	return Task{}, false
}

// LengthBucket is LongBench-E's length interval of an item (scorer_e): "0-4k", "4-8k" or "8k+", by the row's
// length field (words for English and code, characters for Chinese).
func LengthBucket(length int) string {
	switch {
	case length < 4000:
		return "0-4k"
	case length < 8000:
		return "4-8k"
	default:
		return "8k+"
	}
}

// Buckets lists LongBench-E's length intervals in order.
var Buckets = []string{"0-4k", "4-8k", "8k+"}
