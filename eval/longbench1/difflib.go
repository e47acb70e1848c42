package longbench1

// difflibRatio is difflib.SequenceMatcher(None, a, b).ratio() (autojunk on): 2*M/T, where M is the total size of
// the matching blocks difflib finds (longest match first, then recursively left and right of it) and T is
// len(a)+len(b). With autojunk, when b has 200 or more elements, every element occurring more than
// len(b)//100 + 1 times is "popular" and cannot start a match (it may still extend one).
func difflibRatio(a, b []rune) float64 {
	t := len(a) + len(b)
	if t == 0 {
		return 1.0
	}
	sm := newSeqMatcher(a, b)
	return 2.0 * float64(sm.matches()) / float64(t)
}

type seqMatcher struct {
	a, b []rune
	b2j  map[rune][]int
}

// newSeqMatcher is SequenceMatcher.__chain_b with isjunk None and autojunk True.
func newSeqMatcher(a, b []rune) *seqMatcher {
	b2j := map[rune][]int{}
	for i, r := range b {
		b2j[r] = append(b2j[r], i)
	}
	if n := len(b); n >= 200 {
		ntest := n/100 + 1
		for r, idx := range b2j {
			if len(idx) > ntest {
				delete(b2j, r)
			}
		}
	}
	return &seqMatcher{a: a, b: b, b2j: b2j}
}

// findLongestMatch is SequenceMatcher.find_longest_match: the longest block a[i:i+k] == b[j:j+k] within the
// bounds whose start is in b2j, the earliest in a, then in b, on ties; then extended over equal neighbours
// (no junk exists without isjunk, so only the first pair of extension loops can move).
func (s *seqMatcher) findLongestMatch(alo, ahi, blo, bhi int) (int, int, int) {
	besti, bestj, bestsize := alo, blo, 0
	j2len := map[int]int{}
	for i := alo; i < ahi; i++ {
		newj2len := map[int]int{}
		for _, j := range s.b2j[s.a[i]] {
			if j < blo {
				continue
			}
			if j >= bhi {
				break
			}
			k := j2len[j-1] + 1
			newj2len[j] = k
			if k > bestsize {
				besti, bestj, bestsize = i-k+1, j-k+1, k
			}
		}
		j2len = newj2len
	}
	for besti > alo && bestj > blo && s.a[besti-1] == s.b[bestj-1] {
		besti, bestj, bestsize = besti-1, bestj-1, bestsize+1
	}
	for besti+bestsize < ahi && bestj+bestsize < bhi && s.a[besti+bestsize] == s.b[bestj+bestsize] {
		bestsize++
	}
	return besti, bestj, bestsize
}

// matches is the total size of get_matching_blocks (the queue order does not change the total).
func (s *seqMatcher) matches() int {
	type span struct{ alo, ahi, blo, bhi int }
	queue := []span{{0, len(s.a), 0, len(s.b)}}
	total := 0
	for len(queue) > 0 {
		q := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		i, j, k := s.findLongestMatch(q.alo, q.ahi, q.blo, q.bhi)
		if k == 0 {
			continue
		}
		total += k
		if q.alo < i && q.blo < j {
			queue = append(queue, span{q.alo, i, q.blo, j})
		}
		if i+k < q.ahi && j+k < q.bhi {
			queue = append(queue, span{i + k, q.ahi, j + k, q.bhi})
		}
	}
	return total
}

// levenshteinRatio is python-Levenshtein's ratio (what fuzzywuzzy uses when it is installed):
// (len(a)+len(b) - d) / (len(a)+len(b)), d the edit distance with substitutions costing 2, that is
// 2*LCS/(len(a)+len(b)) with LCS the longest common subsequence.
func levenshteinRatio(a, b []rune) float64 {
	t := len(a) + len(b)
	if t == 0 {
		return 1.0
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			switch {
			case a[i-1] == b[j-1]:
				cur[j] = prev[j-1] + 1
			case prev[j] >= cur[j-1]:
				cur[j] = prev[j]
			default:
				cur[j] = cur[j-1]
			}
		}
		prev, cur = cur, prev
	}
	d := t - 2*prev[len(b)]
	return float64(t-d) / float64(t)
}
