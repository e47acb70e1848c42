package synthetic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

const (
	niahPrefix = "Some special magic numbers are hidden in the following text. Memorize them. " +
		"You will be asked about them at the end.\n\n"
	vtPrefix = "Some sentences in the following text store numbers in variables or copy one variable into another. " +
		"Memorize them. You will be asked about them at the end.\n\n"
	cwePrefix = "Below is a long list of words. A few words appear much more often than all the others.\n\n"
	// questionSep separates the context from the question.
	questionSep = "\n\n"
)

// pick returns a random element of list.
func pick(r *rand.Rand, list []string) string { return list[r.IntN(len(list))] }

// article returns "a" or "an" for word.
func article(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

// fillerSentence returns one haystack sentence (no digits, never a needle pattern).
func fillerSentence(r *rand.Rand) string {
	switch r.IntN(7) {
	case 0:
		return fmt.Sprintf("The %s %s %s the %s %s %s the %s.",
			pick(r, adjectives), pick(r, nouns), pick(r, verbs), pick(r, adjectives), pick(r, nouns), pick(r, preps), pick(r, nouns))
	case 1:
		adj := pick(r, adjectives)
		return fmt.Sprintf("%s %s %s %s %s %s.", pick(r, names), pick(r, verbs), article(adj), adj, pick(r, nouns), pick(r, timesOfDay))
	case 2:
		adj := pick(r, adjectives)
		return fmt.Sprintf("%s %s %s stood %s the %s %s.", strings.ToUpper(article(adj)[:1])+article(adj)[1:], adj, pick(r, nouns),
			pick(r, preps), pick(r, adjectives), pick(r, nouns))
	case 3:
		return fmt.Sprintf("%s and %s %s %s the %s %s the %s %s.", pick(r, names), pick(r, names), pick(r, adverbs), pick(r, verbs),
			pick(r, nouns), pick(r, preps), pick(r, adjectives), pick(r, nouns))
	case 4:
		return fmt.Sprintf("Nobody %s the %s %s, so the %s stayed %s.", pick(r, verbs), pick(r, nouns), pick(r, timesOfDay),
			pick(r, nouns), pick(r, adjectives))
	case 5:
		return fmt.Sprintf("The %s %s the %s looked %s and %s.", pick(r, nouns), pick(r, preps), pick(r, nouns),
			pick(r, adjectives), pick(r, adjectives))
	default:
		t := pick(r, timesOfDay)
		return fmt.Sprintf("%s%s %s %s the %s, and the %s %s %s the %s.", strings.ToUpper(t[:1]), t[1:], pick(r, names),
			pick(r, verbs), pick(r, nouns), pick(r, nouns), pick(r, adverbs), pick(r, verbs), pick(r, nouns))
	}
}

// distinct draws n distinct strings from gen.
func distinct(n int, gen func() string) []string {
	seen := make(map[string]bool, n)
	out := make([]string, 0, n)
	for len(out) < n {
		s := gen()
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func keys(r *rand.Rand, n int) []string {
	return distinct(n, func() string { return pick(r, adjectives) + "-" + pick(r, nouns) })
}

func numbers(r *rand.Rand, n int) []string {
	return distinct(n, func() string { return strconv.Itoa(100000 + r.IntN(900000)) })
}

func varNames(r *rand.Rand, n int) []string {
	return distinct(n, func() string {
		var b [5]byte
		for i := range b {
			b[i] = byte('A' + r.IntN(26))
		}
		return string(b[:])
	})
}

// errNoTokens is the error of a tokenizer that encodes a piece of the haystack to nothing: such a piece would be
// added without end to reach a length in tokens.
func errNoTokens(piece string) error {
	return fmt.Errorf("the tokenizer encodes %q to no tokens: it cannot size prompts (is it the model's tokenizer?)", piece)
}

// fillMisses is how many sentences that overshoot the budget are drawn before the haystack is closed.
const fillMisses = 8

// needleSpec is what a needle task contributes to the prompt.
type needleSpec struct {
	prefix   string
	needles  []string // inserted in this order at increasing depths when ordered, else at random depths
	ordered  bool
	question string
	answers  []string
	answer   string
	maxNew   int
}

func needleTask(r *rand.Rand, task string) needleSpec {
	magic := func(k, v string) string { return "The special magic number for " + k + " is " + v + "." }
	switch task {
	case TaskNIAHSingle:
		k, v := keys(r, 1), numbers(r, 1)
		return needleSpec{
			prefix: niahPrefix, needles: []string{magic(k[0], v[0])},
			question: "What is the special magic number for " + k[0] + " mentioned in the text above? " +
				"Answer: The special magic number for " + k[0] + " is",
			answers: v, answer: " " + v[0], maxNew: 16,
		}
	case TaskNIAHMultiKey:
		k, v := keys(r, 4), numbers(r, 4)
		ns := make([]string, 4)
		for i := range ns {
			ns[i] = magic(k[i], v[i])
		}
		q := r.IntN(4)
		return needleSpec{
			prefix: niahPrefix, needles: ns,
			question: "What is the special magic number for " + k[q] + " mentioned in the text above? " +
				"Answer: The special magic number for " + k[q] + " is",
			answers: []string{v[q]}, answer: " " + v[q], maxNew: 16,
		}
	case TaskNIAHMultiValue:
		k, v := keys(r, 1), numbers(r, 4)
		ns := make([]string, 4)
		for i := range ns {
			ns[i] = "One of the special magic numbers for " + k[0] + " is " + v[i] + "."
		}
		return needleSpec{
			prefix: niahPrefix, needles: ns, ordered: true,
			question: "What are all the special magic numbers for " + k[0] + " mentioned in the text above? " +
				"Answer: The special magic numbers for " + k[0] + " are",
			answers: v, answer: " " + strings.Join(v, ", "), maxNew: 48,
		}
	case TaskNIAHMultiQuery:
		k, v := keys(r, 4), numbers(r, 4)
		ns := make([]string, 4)
		for i := range ns {
			ns[i] = magic(k[i], v[i])
		}
		qs := r.Perm(4)[:2]
		return needleSpec{
			prefix: niahPrefix, needles: ns,
			question: "What are the special magic numbers for " + k[qs[0]] + " and " + k[qs[1]] + " mentioned in the text above? " +
				"Answer: The special magic numbers for " + k[qs[0]] + " and " + k[qs[1]] + " are",
			answers: []string{v[qs[0]], v[qs[1]]}, answer: " " + v[qs[0]] + ", " + v[qs[1]], maxNew: 32,
		}
	default: // TaskVT: two chains of two hops each; the question asks for one chain.
		vs := numbers(r, 2)
		vars := varNames(r, 6)
		chain := func(v string, a []string) []string {
			return []string{
				"The number " + v + " is stored in VAR " + a[0] + ".",
				"The value of VAR " + a[0] + " is copied into VAR " + a[1] + ".",
				"The value of VAR " + a[1] + " is copied into VAR " + a[2] + ".",
			}
		}
		target, other := chain(vs[0], vars[:3]), chain(vs[1], vars[3:])
		// Interleave the two chains, each in its own order.
		inTarget := r.Perm(6)[:3]
		ns := make([]string, 0, 6)
		ti, oi := 0, 0
		for i := range 6 {
			if slices.Contains(inTarget, i) {
				ns = append(ns, target[ti])
				ti++
			} else {
				ns = append(ns, other[oi])
				oi++
			}
		}
		return needleSpec{
			prefix: vtPrefix, needles: ns, ordered: true,
			question: "Which variables hold the number " + vs[0] + "? " +
				"Answer: The variables that hold the number " + vs[0] + " are",
			answers: vars[:3], answer: " " + strings.Join(vars[:3], " "), maxNew: 32,
		}
	}
}

// assemble joins prefix, the context pieces and the question, dropping filler pieces from the end of the
// context until the prompt fits the budget. isNeedle marks the pieces that must stay.
func assemble(c counter, budget int, prefix string, pieces []string, isNeedle []bool, question string) (string, int, error) {
	for {
		prompt := prefix + strings.Join(pieces, " ") + questionSep + question
		u := c.units(prompt)
		if u <= budget {
			return prompt, u, nil
		}
		drop := -1
		for i := len(pieces) - 1; i >= 0; i-- {
			if !isNeedle[i] {
				drop = i
				break
			}
		}
		if drop < 0 {
			return "", 0, fmt.Errorf("the template and needles alone take %d units, over the budget of %d", u, budget)
		}
		pieces = slices.Delete(pieces, drop, drop+1)
		isNeedle = slices.Delete(isNeedle, drop, drop+1)
	}
}

func genNeedles(r *rand.Rand, c counter, task string, length int) (Sample, error) {
	spec := needleTask(r, task)
	budget := c.budget(length)
	used := c.units(spec.prefix) + c.units(questionSep+spec.question)
	for _, n := range spec.needles {
		used += c.units(" " + n)
	}
	if used > budget {
		return Sample{}, fmt.Errorf("length %d too short: template and needles take %d units", length, c.tokens(used))
	}
	var filler []string
	for misses := 0; misses < fillMisses; {
		s := fillerSentence(r)
		u := c.units(" " + s)
		if u == 0 {
			return Sample{}, errNoTokens(s)
		}
		if used+u > budget {
			misses++ // try a few shorter sentences before giving up, so the gap to the target stays small
			continue
		}
		used += u
		filler = append(filler, s)
	}
	// Depths: one insertion point in [0, len(filler)] per needle.
	pos := make([]int, len(spec.needles))
	for i := range pos {
		pos[i] = r.IntN(len(filler) + 1)
	}
	if spec.ordered {
		slices.Sort(pos)
	}
	// Insert from the back so that earlier positions stay valid; equal positions keep needle order.
	type ins struct{ pos, idx int }
	order := make([]ins, len(pos))
	for i, p := range pos {
		order[i] = ins{p, i}
	}
	slices.SortStableFunc(order, func(a, b ins) int {
		if a.pos != b.pos {
			return b.pos - a.pos
		}
		return b.idx - a.idx
	})
	pieces := slices.Clone(filler)
	isNeedle := make([]bool, len(pieces))
	for _, o := range order {
		pieces = slices.Insert(pieces, o.pos, spec.needles[o.idx])
		isNeedle = slices.Insert(isNeedle, o.pos, true)
	}
	prompt, u, err := assemble(c, budget, spec.prefix, pieces, isNeedle, spec.question)
	if err != nil {
		return Sample{}, err
	}
	return Sample{Prompt: prompt, Answers: spec.answers, Answer: spec.answer, MaxNew: spec.maxNew, PromptUnits: c.tokens(u)}, nil
}

// cweProbs are the shares of the three common words in the list; every other word is drawn uniformly from the
// remaining pool, so it appears far less often than the third common word.
var cweProbs = []float64{0.12, 0.10, 0.08}

func genCWE(r *rand.Rand, c counter, length int) (Sample, error) {
	const question = "What are the 3 most common words in the list above? Answer: The 3 most common words are"
	budget := c.budget(length)
	pool := append(slices.Clone(nouns), adjectives...)
	for attempt := 0; attempt < 100; attempt++ {
		perm := r.Perm(len(pool))
		common := []string{pool[perm[0]], pool[perm[1]], pool[perm[2]]}
		rare := make([]string, 0, len(pool)-3)
		for _, i := range perm[3:] {
			rare = append(rare, pool[i])
		}
		used := c.units(cwePrefix) + c.units(questionSep+question)
		var words []string
		for {
			u := r.Float64()
			w := ""
			for i, p := range cweProbs {
				if u < p {
					w = common[i]
					break
				}
				u -= p
			}
			if w == "" {
				w = pick(r, rare)
			}
			n := c.units(" " + w)
			if n == 0 {
				return Sample{}, errNoTokens(w)
			}
			if used+n > budget {
				break
			}
			used += n
			words = append(words, w)
		}
		prompt, u, err := assemble(c, budget, cwePrefix, words, make([]bool, len(words)), question)
		if err != nil {
			return Sample{}, err
		}
		// The kept list decides the answer: the three most frequent words, which must be the planted ones and
		// strictly more frequent than any other word.
		kept := strings.Fields(prompt[len(cwePrefix) : len(prompt)-len(questionSep+question)])
		counts := map[string]int{}
		for _, w := range kept {
			counts[w]++
		}
		maxRare := 0
		for _, w := range rare {
			maxRare = max(maxRare, counts[w])
		}
		top := slices.Clone(common)
		slices.SortStableFunc(top, func(a, b string) int {
			if counts[a] != counts[b] {
				return counts[b] - counts[a]
			}
			return strings.Compare(a, b)
		})
		if counts[top[2]] <= maxRare {
			continue
		}
		return Sample{Prompt: prompt, Answers: top, Answer: " " + strings.Join(top, ", "), MaxNew: 24, PromptUnits: c.tokens(u)}, nil
	}
	return Sample{}, fmt.Errorf("length %d too short for common-word extraction", length)
}
