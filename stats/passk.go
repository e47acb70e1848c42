package stats

import "fmt"

// PassAtK is the unbiased pass@k estimator of Chen et al. (2021): 1 - C(n-c, k) / C(n, k), the probability that
// at least one of k samples drawn without replacement from n samples, c of them correct, is correct.
// It is computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which neither overflows nor loses precision for large n.
func PassAtK(n, c, k int) (float64, error) {
	switch {
	case n <= 0:
		return 0, fmt.Errorf("pass@k: n = %d samples, need at least 1", n)
	case c < 0 || c > n:
		return 0, fmt.Errorf("pass@k: c = %d correct out of n = %d", c, n)
	case k <= 0 || k > n:
		return 0, fmt.Errorf("pass@k: k = %d outside [1, n = %d]", k, n)
	}
	if n-c < k {
		return 1, nil
	}
	prod := 1.0
	for i := n - c + 1; i <= n; i++ {
		prod *= 1 - float64(k)/float64(i)
	}
	return 1 - prod, nil
}

// MajorityVote returns the most frequent non-empty answer and its vote count. Ties go to the answer that
// appears first; with no non-empty answer it returns "", 0.
func MajorityVote(answers []string) (answer string, votes int) {
	count := map[string]int{}
	var order []string
	for _, a := range answers {
		if a == "" {
			continue
		}
		if count[a] == 0 {
			order = append(order, a)
		}
		count[a]++
	}
	for _, a := range order { // first appearance order: a later answer wins only with strictly more votes
		if count[a] > votes {
			answer, votes = a, count[a]
		}
	}
	return answer, votes
}

// ConsAtK is cons@k (majority voting, as in the DeepSeek-R1 report) for one item: the majority answer among the
// first k samples' extracted answers (empty answers do not vote; ties go to the answer seen first), and whether
// it is correct, read from the verdict of the first sample that gave it. No answer at all counts as wrong.
func ConsAtK(answers []string, correct []bool, k int) (answer string, ok bool, err error) {
	if len(answers) != len(correct) {
		return "", false, fmt.Errorf("cons@k: %d answers but %d verdicts", len(answers), len(correct))
	}
	if k <= 0 || k > len(answers) {
		return "", false, fmt.Errorf("cons@k: k = %d outside [1, %d samples]", k, len(answers))
	}
	answer, votes := MajorityVote(answers[:k])
	if votes == 0 {
		return "", false, nil
	}
	for i, a := range answers[:k] {
		if a == answer {
			return answer, correct[i], nil
		}
	}
	return answer, false, nil
}
