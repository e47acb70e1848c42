package longbench1

import (
	"errors"
	"strings"

	"github.com/snapeval/snapeval/internal/pytext"
)

// errRouge is what the rouge package raises where LongBench's rouge_score catches it and scores 0.
var errRouge = errors.New("rouge raised")

// RougeL is ROUGE-L F as the `rouge` package (pltrdy/rouge) computes it in
// Rouge().get_scores(hyp, ref, avg=True)["rouge-l"]["f"]: the summary-level union LCS.
//
// Each text is split on "." into sentences (empty pieces dropped, whitespace collapsed inside each), each
// sentence on single spaces into words. With version 1.0.1's sets (lists=false), m and n are the numbers of
// distinct reference and hypothesis words and the overlap is the number of distinct words in the union of the
// LCSes of every (reference sentence, hypothesis sentence) pair, each LCS reconstructed the package's way; with
// 1.0.0's lists (lists=true) they are word counts and the sum of the LCS lengths. P = overlap/n, R = overlap/m,
// F = 2PR/(P+R+1e-8).
//
// The package reconstructs each LCS recursively; depth > 0 is the deepest chain of calls that survives
// (CPython's recursion limit), beyond which it raises, as it does for an empty hypothesis or reference: RougeL
// then returns errRouge. A perfect match scores 1 (the package's 1e-8 smoothing gives 0.999999995; snapeval
// reports exactly 1 there so that a gold answer grades correct, a difference of 5e-7 points on a x100 scale).
func RougeL(hyp, ref string, lists bool, depth int) (float64, error) {
	hs, rs := rougeSentences(hyp), rougeSentences(ref)
	if len(hs) == 0 || len(rs) == 0 {
		return 0, errRouge
	}
	hw := make([][]string, len(hs))
	for i, s := range hs {
		hw[i] = strings.Split(s, " ")
	}
	var m, n int
	if lists {
		for _, s := range rs {
			m += strings.Count(s, " ") + 1
		}
		for _, w := range hw {
			n += len(w)
		}
	} else {
		m = len(wordSet(rs))
		n = len(wordSet(hs))
	}
	// rouge-1 and rouge-2 run first (Rouge's default metrics); they raise on nothing ROUGE-L does not.
	union := map[string]bool{}
	overlap := 0
	for _, r := range rs {
		rw := strings.Split(r, " ")
		for _, h := range hw {
			// every step of the walk lowers i or j, so it takes at least min(len) steps: no table when even
			// that is too deep
			if depth > 0 && min(len(rw), len(h))+1 > depth {
				return 0, errRouge
			}
			lcs, frames := reconLCS(rw, h)
			if depth > 0 && frames > depth {
				return 0, errRouge
			}
			if lists {
				overlap += len(lcs)
				continue
			}
			for _, w := range lcs {
				union[w] = true
			}
		}
	}
	if !lists {
		overlap = len(union)
	}
	r := float64(overlap) / float64(m)
	p := float64(overlap) / float64(n)
	if overlap == m && overlap == n {
		return 1, nil
	}
	return 2.0 * ((p * r) / (p + r + 1e-8)), nil
}

// rougeSentences is [" ".join(_.split()) for _ in text.split(".") if len(_) > 0].
func rougeSentences(text string) []string {
	var out []string
	for _, s := range strings.Split(text, ".") {
		if len(s) > 0 {
			out = append(out, strings.Join(pytext.Split(s), " "))
		}
	}
	return out
}

// wordSet is the set of words of sentences split on single spaces (_split_into_words).
func wordSet(sentences []string) map[string]bool {
	set := map[string]bool{}
	for _, s := range sentences {
		for _, w := range strings.Split(s, " ") {
			set[w] = true
		}
	}
	return set
}

// reconLCS is _recon_lcs(x, y): the LCS table of x and y, then the walk back from (len(x), len(y)): take the
// diagonal on equal words, else go up when table[i-1][j] > table[i][j-1], else left, until i or j is 0. It
// returns the LCS words in order and the number of recursive _recon calls the package makes (the steps plus one).
func reconLCS(x, y []string) ([]string, int) {
	n, m := len(x), len(y)
	w := m + 1
	table := make([]int32, (n+1)*w)
	for i := 1; i <= n; i++ {
		for j := 1; j <= m; j++ {
			switch {
			case x[i-1] == y[j-1]:
				table[i*w+j] = table[(i-1)*w+j-1] + 1
			case table[(i-1)*w+j] >= table[i*w+j-1]:
				table[i*w+j] = table[(i-1)*w+j]
			default:
				table[i*w+j] = table[i*w+j-1]
			}
		}
	}
	var rev []string
	frames := 1
	for i, j := n, m; i > 0 && j > 0; frames++ {
		switch {
		case x[i-1] == y[j-1]:
			rev = append(rev, x[i-1])
			i, j = i-1, j-1
		case table[(i-1)*w+j] > table[i*w+j-1]:
			i--
		default:
			j--
		}
	}
	for a, b := 0, len(rev)-1; a < b; a, b = a+1, b-1 {
		rev[a], rev[b] = rev[b], rev[a]
	}
	return rev, frames
}
