package longbench1

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/snapeval/snapeval/internal/jieba"
	"github.com/snapeval/snapeval/internal/pytext"
)

// This file is LongBench/metrics.py, function by function. Every metric returns the official per-reference
// score in [0, 1]; the benchmark takes the best over the references (eval.py's max over ground_truths).

// Metric names, as in metrics.py.
const (
	MetricQAF1       = "qa_f1_score"
	MetricQAF1Zh     = "qa_f1_zh_score"
	MetricRouge      = "rouge_score"
	MetricRougeZh    = "rouge_zh_score"
	MetricClass      = "classification_score"
	MetricRetrieval  = "retrieval_score"
	MetricRetrievalZ = "retrieval_zh_score"
	MetricCount      = "count_score"
	MetricCodeSim    = "code_sim_score"
)

// Scorer holds the library choices the official metrics leave to the installed packages.
type Scorer struct {
	// Rouge is the `rouge` package's version semantics: RougeV101 (n-gram sets) or RougeV100 (lists).
	Rouge string
	// RougeDepth is the deepest chain of _recon calls rouge_score survives (0: no limit). CPython's recursion
	// limit (1000) stops the rouge package's recursive LCS reconstruction; LongBench's bare except turns the
	// RecursionError into a score of 0. rouge_zh_score calls one frame deeper, so it survives one call fewer.
	RougeDepth int
	// CodeSim is fuzz.ratio's matcher: CodeSimDifflib (fuzzywuzzy alone) or CodeSimLevenshtein (with
	// python-Levenshtein installed).
	CodeSim string
}

// Library choices.
const (
	RougeV101          = "1.0.1"
	RougeV100          = "1.0.0"
	CodeSimDifflib     = "difflib"
	CodeSimLevenshtein = "levenshtein"
	// DefaultRougeDepth is the _recon depth rouge_score survives when called as LongBench's eval.py calls it
	// (script -> scorer -> rouge_score) on CPython 3.8-3.10, measured: a one-sentence summary identical to its
	// reference scores up to 989 words (990 calls) and 0 from 990 words on. CPython 3.11-3.13 survive one call
	// more (991).
	DefaultRougeDepth = 990
)

// DefaultScorer is the configuration snapeval grades with unless told otherwise: rouge 1.0.1 (the release
// LongBench's unpinned requirement installed from 2021 on), CPython 3.8-3.10's recursion depth, and difflib (its
// requirements.txt installs fuzzywuzzy without python-Levenshtein).
var DefaultScorer = Scorer{Rouge: RougeV101, RougeDepth: DefaultRougeDepth, CodeSim: CodeSimDifflib}

// Score is the metric named metric of prediction against one reference (allClasses: the item's classes).
func (sc Scorer) Score(metric, prediction, reference string, allClasses []string) (float64, error) {
	switch metric {
	case MetricQAF1:
		return QAF1(prediction, reference), nil
	case MetricQAF1Zh:
		return QAF1Zh(prediction, reference)
	case MetricRouge:
		return sc.rougeScore(prediction, reference, sc.RougeDepth), nil
	case MetricRougeZh:
		return sc.RougeZh(prediction, reference)
	case MetricClass:
		return Classification(prediction, reference, allClasses), nil
	case MetricRetrieval:
		return Retrieval(prediction, reference, retrievalEn)
	case MetricRetrievalZ:
		return Retrieval(prediction, reference, retrievalZh)
	case MetricCount:
		return Count(prediction, reference), nil
	case MetricCodeSim:
		return sc.CodeSimScore(prediction, reference), nil
	}
	return 0, fmt.Errorf("longbench: unknown metric %q", metric)
}

// QAF1 is qa_f1_score: token F1 of the normalized answers.
func QAF1(prediction, reference string) float64 {
	return pytext.F1(pytext.Split(pytext.NormalizeAnswer(prediction)), pytext.Split(pytext.NormalizeAnswer(reference)))
}

// QAF1Zh is qa_f1_zh_score: token F1 over jieba's words, each normalized, empty ones dropped.
func QAF1Zh(prediction, reference string) (float64, error) {
	p, err := zhTokens(prediction)
	if err != nil {
		return 0, err
	}
	r, err := zhTokens(reference)
	if err != nil {
		return 0, err
	}
	return pytext.F1(p, r), nil
}

func zhTokens(s string) ([]string, error) {
	words, err := jieba.Cut(s)
	if err != nil {
		return nil, err
	}
	out := words[:0]
	for _, w := range words {
		if w = pytext.NormalizeZhAnswer(w); w != "" {
			out = append(out, w)
		}
	}
	return out, nil
}

// RougeZh is rouge_zh_score: both texts cut by jieba and joined with spaces, then rouge_score (one call frame
// deeper than rouge_score itself).
func (sc Scorer) RougeZh(prediction, reference string) (float64, error) {
	p, err := jieba.Cut(prediction)
	if err != nil {
		return 0, err
	}
	r, err := jieba.Cut(reference)
	if err != nil {
		return 0, err
	}
	depth := sc.RougeDepth
	if depth > 0 {
		depth--
	}
	return sc.rougeScore(strings.Join(p, " "), strings.Join(r, " "), depth), nil
}

// rougeScore is rouge_score: Rouge().get_scores([prediction], [reference], avg=True)["rouge-l"]["f"], 0 when the
// rouge package raises (an empty text, or a reconstruction deeper than depth).
func (sc Scorer) rougeScore(prediction, reference string, depth int) float64 {
	f, err := RougeL(prediction, reference, sc.Rouge == RougeV100, depth)
	if err != nil {
		return 0
	}
	return f
}

// Classification is classification_score, including its removal from the list it iterates over (a class
// right after a removed one is not examined).
func Classification(prediction, reference string, allClasses []string) float64 {
	var matches []string
	for _, c := range allClasses {
		if strings.Contains(prediction, c) {
			matches = append(matches, c)
		}
	}
	for i := 0; i < len(matches); i++ {
		term := matches[i]
		if strings.Contains(reference, term) && term != reference {
			for j, m := range matches { // list.remove: the first equal element
				if m == term {
					matches = append(matches[:j], matches[j+1:]...)
					break
				}
			}
		}
	}
	for _, m := range matches {
		if m == reference {
			return 1.0 / float64(len(matches))
		}
	}
	return 0
}

var (
	retrievalEn = regexp.MustCompile(`Paragraph (\d+)`)
	retrievalZh = regexp.MustCompile(`段落(\d+)`)
)

// Retrieval is retrieval_score (pattern "Paragraph N") and retrieval_zh_score ("段落N"): the share of the
// numbers in the prediction that equal the reference's paragraph number.
func Retrieval(prediction, reference string, pattern *regexp.Regexp) (float64, error) {
	m := pattern.FindStringSubmatch(reference)
	if m == nil {
		return 0, fmt.Errorf("longbench: reference %q has no %q (the official scorer raises IndexError)", reference, pattern)
	}
	return shareEqual(pytext.DigitRuns(prediction), m[1]), nil
}

// Count is count_score: the share of the numbers in the prediction that equal the reference.
func Count(prediction, reference string) float64 {
	return shareEqual(pytext.DigitRuns(prediction), reference)
}

func shareEqual(numbers []string, want string) float64 {
	if len(numbers) == 0 {
		return 0
	}
	right := 0
	for _, n := range numbers {
		if n == want {
			right++
		}
	}
	return float64(right) / float64(len(numbers))
}

// CodeSimScore is code_sim_score: fuzz.ratio(line, reference) / 100 for the first line of the prediction (after
// leading newlines) that holds no '`', '#' or "//" ("" when none does).
func (sc Scorer) CodeSimScore(prediction, reference string) float64 {
	line := ""
	for _, l := range strings.Split(strings.TrimLeft(prediction, "\n"), "\n") {
		if !strings.Contains(l, "`") && !strings.Contains(l, "#") && !strings.Contains(l, "//") {
			line = l
			break
		}
	}
	return float64(sc.fuzzRatio(line, reference)) / 100
}

// fuzzRatio is fuzzywuzzy's fuzz.ratio: 100 for equal strings, 0 when either is empty, else
// int(round(100 * SequenceMatcher(None, a, b).ratio())) with Python's round-half-to-even.
func (sc Scorer) fuzzRatio(a, b string) int {
	if a == b {
		return 100
	}
	if a == "" || b == "" {
		return 0
	}
	ra, rb := []rune(a), []rune(b)
	var r float64
	if sc.CodeSim == CodeSimLevenshtein {
		r = levenshteinRatio(ra, rb)
	} else {
		r = difflibRatio(ra, rb)
	}
	return int(math.RoundToEven(100 * r))
}
