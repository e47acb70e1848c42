package ruler

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/snapeval/snapeval/internal/pyrand"
	"github.com/snapeval/snapeval/llm"
)

// Row is one line of the JSONL RULER's prepare.py writes (<task>/validation.jsonl), with the fields of the 13
// synthetic tasks. Index is the sample index, except for niah, whose generator overwrites it with the code-point
// offset of the first answer in Input (a quirk of niah.py kept here so that rows compare equal).
type Row struct {
	Index        int      `json:"index"`
	Input        string   `json:"input"`
	Outputs      []string `json:"outputs"`
	Length       int      `json:"length"`
	LengthWithMT int      `json:"length_w_model_temp"`
	AnswerPrefix string   `json:"answer_prefix"`
	// TokenPositionAnswer is set by niah only: the number of tokens of Input before the first answer.
	TokenPositionAnswer *int `json:"token_position_answer,omitempty"`
}

// Sources is the outside data the generators read.
type Sources struct {
	// Essay is the "text" of PaulGrahamEssays.json (niah essay haystacks).
	Essay string
	// Squad and Hotpot are the QA sets as RULER's qa.py reads them.
	Squad, Hotpot *QASet
	// EnglishWords are the values of json/english_words.json (cwe falls back on them when it needs more words than
	// wonderwords has: at 128k tokens and beyond); nil when absent.
	EnglishWords []string
}

// Spec is what one generator run depends on.
type Spec struct {
	Task   Task
	MaxSeq int // max_seq_length: prompt tokens plus tokens_to_generate
	N      int // num_samples
	Seed   int64
	// Template is the model template name of template.py ("base", "meta-llama3", ...).
	Template string
	// RemoveNewlineTab is prepare.py's --remove_newline_tab.
	RemoveNewlineTab bool
	Tok              llm.Tokenizer
	Src              *Sources
}

// Sample is one generated item: RULER's row plus where its needles are.
type Sample struct {
	Task string `json:"task"`
	// MaxSeq is the requested length (max_seq_length).
	MaxSeq int `json:"max_seq"`
	// N is the sample's position in its task's sequence (0-based).
	N   int `json:"n"`
	Row Row `json:"row"`
	// Depth is the position of the first answer's needle in the context, in percent of the context's characters
	// (-1 for tasks without needles).
	Depth float64 `json:"depth"`
}

// errRetry is a failure that RULER's per-sample loop catches (a bare except) and answers by shrinking the haystack.
var errRetry = errors.New("retry")

// gen is the state of one generator process: Python's global random and NumPy's legacy generator, both seeded
// with the run's seed, as each RULER script seeds them at start.
type gen struct {
	Spec
	rng      *pyrand.Random
	np       *pyrand.NumPy
	template string
	count    func(string) int
	// essay haystack words (niah essay)
	essayWords []string
	// cwe pool (shuffled) and qa set
	pool []string
	qa   *QASet
}

// Generate runs the task's generator and returns its N samples, in order. The same Spec gives the same samples.
func Generate(s Spec) ([]Sample, error) {
	if s.Tok == nil {
		return nil, fmt.Errorf("ruler: %s: items are sized in the model's tokens: a tokenizer is needed (a cpu backend model, or --tokenizer tokenizer.json)", s.Task.Name)
	}
	tmpl, err := fullTemplate(s.Task.Family, s.Template)
	if err != nil {
		return nil, err
	}
	g := &gen{Spec: s, rng: pyrand.New(s.Seed), np: pyrand.NewNumPy(uint32(s.Seed)), template: tmpl}
	g.count = func(text string) int { return len(s.Tok.Encode(text)) }
	var out []Sample
	switch s.Task.Family {
	case FamilyNIAH:
		out, err = g.niah()
	case FamilyVT:
		out, err = g.vt()
	case FamilyCWE:
		out, err = g.cwe()
	case FamilyFWE:
		out, err = g.fwe()
	case FamilyQA:
		out, err = g.qaSamples()
	default:
		err = fmt.Errorf("unknown family %q", s.Task.Family)
	}
	if err != nil {
		return nil, fmt.Errorf("ruler: %s at %d: %w", s.Task.Name, s.MaxSeq, err)
	}
	return out, nil
}

// search is the binary search every generator runs over its haystack size: the largest size in
// [lo, hi] whose prompt plus extra tokens fits maxSeq, else lo. Every probe draws from the generator's random
// streams, as RULER's does.
// estimateSize is RULER's sizing of a haystack (niah, qa): probe inc units, estimate the tokens per unit, binary-search
// between inc and three times the estimate for the largest size that fits maxSeq with extra tokens to generate;
// inc when none does.
func estimateSize(inc, maxSeq int, probe func(size int) (string, error), count func(string) int, extra int) (int, error) {
	sample, err := probe(inc)
	if err != nil {
		return 0, err
	}
	per := float64(count(sample)) / float64(inc)
	est := int(float64(maxSeq) / per * 3)
	best, err := search(inc, max(est, inc*2), maxSeq, probe, count, extra)
	if err != nil {
		return 0, err
	}
	if best < 0 {
		best = inc
	}
	return best, nil
}

func search(lo, hi, maxSeq int, probe func(size int) (string, error), count func(string) int, extra int) (int, error) {
	best := -1
	for lo <= hi {
		mid := (lo + hi) / 2
		text, err := probe(mid)
		if err != nil {
			return 0, err
		}
		if count(text)+extra <= maxSeq {
			best = mid
			lo = mid + 1
		} else {
			hi = mid - 1
		}
	}
	return best, nil
}

// fit is RULER's per-sample loop: generate at size; if the prompt does not fit (or generation failed), shrink by
// step and try again. RULER loops for ever when even step does not fit; this returns an error instead.
func fit(size, step, maxSeq int, make_ func(size int) (string, int, error)) (string, int, error) {
	for {
		text, length, err := make_(size)
		if err == nil && length <= maxSeq {
			return text, length, nil
		}
		if err != nil && !errors.Is(err, errRetry) {
			return "", 0, err
		}
		if size <= step {
			return "", 0, fmt.Errorf("no haystack of at least %d fits %d tokens", step, maxSeq)
		}
		size -= step
	}
}

// finish applies --remove_newline_tab and cuts the answer prefix off at the last occurrence of the first ten
// characters of the family's answer prefix, as every generator does.
func (g *gen) finish(text string) (input, prefix string) {
	if g.RemoveNewlineTab {
		text = strings.Join(pySplit(strings.NewReplacer("\n", " ", "\t", " ").Replace(text)), " ")
	}
	kr := []rune(families[g.Task.Family].AnswerPrefix)
	key := string(kr[:min(10, len(kr))])
	i := strings.LastIndex(text, key)
	if i < 0 { // Python's text[:-1] / text[-1:]
		_, sz := lastRune(text)
		return text[:len(text)-sz], text[len(text)-sz:]
	}
	return text[:i], text[i:]
}

func lastRune(s string) (rune, int) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i]&0xc0 != 0x80 {
			return []rune(s[i:])[0], len(s) - i
		}
	}
	return 0, 0
}

// ---- niah ----

const needleFormat = "One of the special magic {type_needle_v} for {key} is: {value}."

func (g *gen) random(kind string) (string, error) {
	switch kind {
	case "numbers":
		return strconv.Itoa(g.rng.IntN(1000000, 9999999)), nil
	case "words":
		w := niahWords()
		return w.at(g.rng.Choice(w.len())), nil
	case "uuids":
		return pyrand.UUID4(g.rng.Bits128()), nil
	}
	return "", fmt.Errorf("needle type %q not implemented", kind)
}

func (g *gen) niahInputOutput(numHaystack int) (string, []string, float64, error) {
	t := g.Task
	numK := max(t.NumK, t.NumQ)
	var keys []string
	var values [][]string
	var needles []string
	for range numK {
		k, err := g.random(t.NeedleK)
		if err != nil {
			return "", nil, 0, err
		}
		keys = append(keys, k)
		var vs []string
		for range t.NumV {
			v, err := g.random(t.NeedleV)
			if err != nil {
				return "", nil, 0, err
			}
			vs = append(vs, v)
			n, _ := pyFormat(needleFormat, map[string]string{"type_needle_v": t.NeedleV, "key": k, "value": v})
			needles = append(needles, n)
		}
		values = append(values, vs)
	}
	pyrand.New(g.Seed).Shuffle(len(needles), func(i, j int) { needles[i], needles[j] = needles[j], needles[i] })

	var context string
	switch t.Haystack {
	case "essay":
		hay := g.essayWords
		var text string
		if numHaystack <= len(hay) {
			text = strings.Join(hay[:numHaystack], " ")
		} else {
			rep := make([]string, 0, numHaystack)
			for len(rep) < numHaystack {
				rep = append(rep, hay[:min(len(hay), numHaystack-len(rep))]...)
			}
			text = strings.Join(rep, " ")
		}
		sents := splitSentences(pyStrip(text))
		if len(needles) > len(depths) {
			return "", nil, 0, fmt.Errorf("%w: sample larger than population", errRetry)
		}
		picks := g.rng.Sample(len(depths), len(needles))
		pos := make([]int, 0, len(needles)+2)
		for _, p := range picks {
			pos = append(pos, int(float64(len(sents))*(float64(depths[p])/100)))
		}
		slices.Sort(pos)
		pos = append(append([]int{0}, pos...), len(sents))
		var parts []string
		for i := 1; i < len(pos); i++ {
			parts = append(parts, strings.Join(sents[pos[i-1]:pos[i]], " "))
			if i-1 < len(needles) {
				parts = append(parts, needles[i-1])
			}
		}
		context = strings.Join(parts, " ")
	case "noise", "needle":
		sentences := make([]string, numHaystack)
		for i := range sentences {
			if t.Haystack == "noise" {
				sentences[i] = noiseHaystack
				continue
			}
			k, err := g.random(t.NeedleK)
			if err != nil {
				return "", nil, 0, err
			}
			v, err := g.random(t.NeedleV)
			if err != nil {
				return "", nil, 0, err
			}
			sentences[i], _ = pyFormat(needleFormat, map[string]string{"type_needle_v": t.NeedleV, "key": k, "value": v})
		}
		if len(needles) > numHaystack {
			return "", nil, 0, fmt.Errorf("%w: sample larger than population", errRetry)
		}
		idx := g.rng.Sample(numHaystack, len(needles))
		slices.SortFunc(idx, func(a, b int) int { return b - a })
		for i, at := range idx {
			sentences = slices.Insert(sentences, at, needles[i])
		}
		context = strings.Join(sentences, "\n")
	default:
		return "", nil, 0, fmt.Errorf("haystack %q not implemented", t.Haystack)
	}

	qi := g.rng.Sample(numK, t.NumQ)
	var queries, answers []string
	for _, i := range qi {
		queries = append(queries, keys[i])
		answers = append(answers, values[i]...)
	}
	query := queries[0]
	if len(queries) > 1 {
		query = strings.Join(queries[:len(queries)-1], ", ") + ", and " + queries[len(queries)-1]
	}
	tmpl, typeV := g.template, t.NeedleV
	if t.NumQ*t.NumV == 1 {
		tmpl = strings.ReplaceAll(tmpl, "Some", "A")
		tmpl = strings.ReplaceAll(tmpl, "are all", "is")
		tmpl = strings.ReplaceAll(tmpl, "are", "is")
		tmpl = strings.ReplaceAll(tmpl, "answers", "answer")
		typeV = typeV[:len(typeV)-1]
	}
	text, err := pyFormat(tmpl, map[string]string{"type_needle_v": typeV, "context": context, "query": query})
	if err != nil {
		return "", nil, 0, err
	}
	depth := -1.0
	if at := strings.Index(context, answers[0]); at >= 0 && len(context) > 0 {
		depth = 100 * float64(at) / float64(len(context))
	}
	return text, answers, depth, nil
}

// noiseHaystack is the repeated sentence of the noise haystack (niah_single_1, vt).
const noiseHaystack = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."

func (g *gen) niah() ([]Sample, error) {
	t := g.Task
	if t.Haystack == "essay" {
		if g.Src == nil || g.Src.Essay == "" {
			return nil, fmt.Errorf("the essay haystack needs PaulGrahamEssays.json (see `snapeval data pull ruler`)")
		}
		g.essayWords = strings.Split(collapseSpaces(g.Src.Essay), " ")
	}
	ttg := t.TokensToGenerate()
	inc := 500
	if t.Haystack != "essay" {
		inc = 25
		if g.MaxSeq < 4096 {
			inc = 5
		}
	}
	probe := func(n int) (string, error) {
		s, _, _, err := g.niahInputOutput(n)
		return s, err
	}
	best, err := estimateSize(inc, g.MaxSeq, probe, g.count, ttg)
	if err != nil {
		return nil, err
	}
	out := make([]Sample, 0, g.N)
	for i := range g.N {
		var answers []string
		var depth float64
		text, length, err := fit(best, inc, g.MaxSeq, func(n int) (string, int, error) {
			s, a, d, err := g.niahInputOutput(n)
			if err != nil {
				return "", 0, err
			}
			answers, depth = a, d
			return s, g.count(s) + ttg, nil
		})
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		input, prefix := g.finish(text)
		at := pyFind(input, answers[0])
		var before string
		if at >= 0 {
			before = string([]rune(input)[:at])
		} else {
			_, sz := lastRune(input)
			before = input[:len(input)-sz]
		}
		tp := g.count(before)
		out = append(out, Sample{Task: t.Name, MaxSeq: g.MaxSeq, N: i, Depth: depth, Row: Row{
			Index: at, Input: input, Outputs: answers, Length: length, LengthWithMT: length,
			AnswerPrefix: prefix, TokenPositionAnswer: &tp,
		}})
	}
	return out, nil
}

// ---- variable tracking ----

func (g *gen) chains(numChains, numHops int, icl bool) ([][]string, [][]string, error) {
	k := 5
	if icl {
		k, numHops = 3, min(10, numHops)
	}
	name := func() string {
		b := make([]byte, k)
		for i := range b {
			b[i] = byte('A' + g.rng.ChoicesIndex(26))
		}
		return string(b)
	}
	need := (numHops + 1) * numChains
	all := make([]string, 0, need)
	seen := map[string]bool{}
	for range need {
		v := name()
		all = append(all, v)
		seen[v] = true
	}
	for len(seen) < need {
		v := name()
		all = append(all, v)
		seen[v] = true
	}
	var vars, chains [][]string
	for i := 0; i < len(all); i += numHops + 1 {
		this := all[i:min(len(all), i+numHops+1)]
		vars = append(vars, this)
		val := "12345"
		if !icl {
			val = strconv.Itoa(g.np.IntN(10000, 99999))
		}
		chain := []string{"VAR " + this[0] + " = " + val}
		for j := range numHops {
			if j+1 >= len(this) {
				return nil, nil, fmt.Errorf("%w: list index out of range", errRetry)
			}
			chain = append(chain, "VAR "+this[j+1]+" = VAR "+this[j]+" ")
		}
		chains = append(chains, chain)
	}
	return vars, chains, nil
}

func (g *gen) vtInputOutput(numNoises int, icl bool) (string, []string, error) {
	t := g.Task
	vars, chains, err := g.chains(t.Chains, t.Hops, icl)
	if err != nil {
		return "", nil, err
	}
	first := chains[0][0]
	value := pyStrip(first[strings.LastIndex(first, "=")+1:])
	if t.Haystack != "noise" {
		return "", nil, fmt.Errorf("variable tracking haystack %q not implemented", t.Haystack)
	}
	sentences := make([]string, numNoises)
	for i := range sentences {
		sentences[i] = noiseHaystack
	}
	for _, chain := range chains {
		if len(chain) > len(sentences) {
			return "", nil, fmt.Errorf("%w: sample larger than population", errRetry)
		}
		pos := g.rng.Sample(len(sentences), len(chain))
		slices.Sort(pos)
		for j, p := range pos {
			sentences = slices.Insert(sentences, p+j, chain[j])
		}
	}
	context := strings.ReplaceAll(strings.Join(sentences, "\n"), ". \n", ".\n")
	tmpl := g.template
	bare := families[FamilyVT].Template + families[FamilyVT].AnswerPrefix
	if icl && tmpl != bare {
		tmpl = bare
	}
	hops := t.Hops
	if icl {
		hops = min(10, hops)
	}
	text, err := pyFormat(tmpl, map[string]string{"context": context, "query": value, "num_v": strconv.Itoa(hops + 1)})
	return text, vars[0], err
}

func (g *gen) randomizeICL(ex string) string {
	f := pySplit(pyStrip(ex))
	tgt := f[max(0, len(f)-g.Task.Hops-1):]
	for _, item := range tgt {
		b := make([]rune, len([]rune(item)))
		for i := range b {
			b[i] = rune('A' + g.rng.ChoicesIndex(26))
		}
		ex = strings.ReplaceAll(ex, item, string(b))
	}
	return strings.ReplaceAll(ex, "12345", strconv.Itoa(g.np.IntN(10000, 99999)))
}

// vtRun is sys_vartrack_w_noise_random: with icl == "" it builds the one in-context example (500 tokens, no
// generation budget), else the samples with that example inserted before the task template.
func (g *gen) vtRun(n, maxSeq int, icl string, haveICL bool) ([]Sample, error) {
	ttg, inc := 0, 5
	if haveICL {
		ttg, inc = g.Task.TokensToGenerate(), 10
		if g.MaxSeq < 4096 {
			inc = 5
		}
	}
	exampleTokens := 0
	if haveICL {
		exampleTokens = g.count(icl)
	}
	isICL := !haveICL
	probe := func(k int) (string, error) {
		s, _, err := g.vtInputOutput(k, isICL)
		return s, err
	}
	sample, err := probe(inc)
	if err != nil {
		return nil, err
	}
	perHay := float64(g.count(sample)) / float64(inc)
	est := int(float64(maxSeq) / perHay * 3)
	best, err := search(inc, max(est, inc*2), maxSeq, probe, g.count, exampleTokens+ttg)
	if err != nil {
		return nil, err
	}
	if best < 0 {
		best = inc
	}
	tr := []rune(families[FamilyVT].Template)
	cut := string(tr[:min(20, len(tr))])
	var out []Sample
	for i := range n {
		var answer []string
		text, length, err := fit(best, inc, maxSeq, func(k int) (string, int, error) {
			s, a, err := g.vtInputOutput(k, isICL)
			if err != nil {
				return "", 0, err
			}
			answer = a
			if haveICL {
				at := strings.Index(s, cut)
				if at < 0 {
					return "", 0, fmt.Errorf("%w: substring not found", errRetry)
				}
				s = s[:at] + g.randomizeICL(icl) + "\n" + s[at:]
			}
			if g.RemoveNewlineTab {
				s = strings.Join(pySplit(strings.NewReplacer("\n", " ", "\t", " ").Replace(s)), " ")
			}
			return s, g.count(s) + ttg, nil
		})
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		s := Sample{Task: g.Task.Name, MaxSeq: g.MaxSeq, N: i, Depth: -1, Row: Row{Index: i, Input: text, Outputs: answer, Length: length}}
		if haveICL {
			in, prefix := g.finish(text)
			s.Row.Input, s.Row.AnswerPrefix, s.Row.LengthWithMT = in, prefix, length
			if at := strings.Index(in, "VAR "+answer[0]+" ="); at >= 0 {
				s.Depth = 100 * float64(at) / float64(len(in))
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func (g *gen) vt() ([]Sample, error) {
	ex, err := g.vtRun(1, 500, "", false)
	if err != nil {
		return nil, fmt.Errorf("in-context example: %w", err)
	}
	icl := ex[0].Row.Input + " " + strings.Join(ex[0].Row.Outputs, " ") + "\n"
	return g.vtRun(g.N, g.MaxSeq, icl, true)
}

// ---- common words extraction ----

func (g *gen) cweExample(numWords, common, uncommon, numCommon int) (string, []string, error) {
	var list []string
	switch {
	case numWords <= len(g.pool):
		for _, i := range g.rng.Sample(len(g.pool), numWords) {
			list = append(list, g.pool[i])
		}
	case g.Src != nil && g.Src.EnglishWords != nil:
		if numWords > len(g.Src.EnglishWords) {
			return "", nil, fmt.Errorf("%w: sample larger than population", errRetry)
		}
		for _, i := range g.rng.Sample(len(g.Src.EnglishWords), numWords) {
			list = append(list, g.Src.EnglishWords[i])
		}
	default:
		return "", nil, fmt.Errorf("cwe needs %d words, more than wonderwords' %d: it then reads json/english_words.json, which is missing", numWords, len(g.pool))
	}
	cw, ucw := list[:min(numCommon, len(list))], list[min(numCommon, len(list)):]
	var words []string
	for range common {
		words = append(words, cw...)
	}
	for range uncommon {
		words = append(words, ucw...)
	}
	pyrand.New(g.Seed).Shuffle(len(words), func(i, j int) { words[i], words[j] = words[j], words[i] })
	return numbered(words), cw, nil
}

func numbered(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString(". ")
		b.WriteString(w)
	}
	return b.String()
}

func (g *gen) cweInputOutput(numWords int) (string, []string, error) {
	t := g.Task
	ex := [4]int{40, 10, 3}
	main := [3]int{t.FreqCW, t.FreqUCW}
	if g.MaxSeq < 4096 {
		ex = [4]int{20, 3, 1}
		main = [3]int{6, 1}
	}
	const numFewshot = 1
	var shots []string
	for range numFewshot {
		ctx, ans, err := g.cweExample(ex[0], ex[1], ex[2], t.NumCW)
		if err != nil {
			return "", nil, err
		}
		s, err := pyFormat(g.template, map[string]string{"num_cw": strconv.Itoa(t.NumCW), "context": ctx, "query": ""})
		if err != nil {
			return "", nil, err
		}
		shots = append(shots, s+" "+numbered(ans))
	}
	ctx, ans, err := g.cweExample(numWords, main[0], main[1], t.NumCW)
	if err != nil {
		return "", nil, err
	}
	s, err := pyFormat(g.template, map[string]string{"num_cw": strconv.Itoa(t.NumCW), "context": ctx, "query": ""})
	if err != nil {
		return "", nil, err
	}
	return strings.Join(shots, "\n") + "\n" + s, ans, nil
}

func (g *gen) cwe() ([]Sample, error) {
	g.pool = slices.Clone(cweWords())
	pyrand.New(g.Seed).Shuffle(len(g.pool), func(i, j int) { g.pool[i], g.pool[j] = g.pool[j], g.pool[i] })
	ttg, inc := g.Task.TokensToGenerate(), 10
	probe := func(n int) (string, error) {
		s, _, err := g.cweInputOutput(n)
		return s, err
	}
	sample, err := probe(4096)
	if err != nil {
		return nil, err
	}
	perWord := float64(g.count(sample)) / 4096
	est := int(pyFloorDiv(float64(g.MaxSeq), perWord)) * 2
	best, err := search(inc, max(est, inc*2), g.MaxSeq, probe, g.count, ttg)
	if err != nil {
		return nil, err
	}
	if best < 0 {
		best = inc
	}
	var out []Sample
	for i := range g.N {
		var answer []string
		text, length, err := fit(best, inc, g.MaxSeq, func(n int) (string, int, error) {
			s, a, err := g.cweInputOutput(n)
			if err != nil {
				return "", 0, err
			}
			answer = a
			return s, g.count(s) + ttg, nil
		})
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		in, prefix := g.finish(text)
		out = append(out, Sample{Task: g.Task.Name, MaxSeq: g.MaxSeq, N: i, Depth: -1, Row: Row{
			Index: i, Input: in, Outputs: answer, Length: length, LengthWithMT: length, AnswerPrefix: prefix}})
	}
	return out, nil
}

// ---- frequent words extraction ----

// zeta2 is scipy.special.zeta(2.0) = pi**2/6 as a float64.
const zeta2 = math.Pi * math.Pi / 6

func (g *gen) fweVocab(size int) []string {
	const wordLen = 6
	word := func() string {
		b := make([]byte, wordLen)
		for i := range b {
			b[i] = byte('a' + g.rng.ChoicesIndex(26))
		}
		return string(b)
	}
	vocab := make([]string, 0, size)
	seen := map[string]bool{}
	for range size {
		w := word()
		vocab = append(vocab, w)
		seen[w] = true
	}
	for len(seen) < size {
		w := word()
		vocab = append(vocab, w)
		seen[w] = true
	}
	vocab = sortedUnique(vocab)
	pyrand.New(g.Seed).Shuffle(len(vocab), func(i, j int) { vocab[i], vocab[j] = vocab[j], vocab[i] })
	vocab[0] = "..."
	return vocab
}

func (g *gen) fweText(vocab []string, numWords int) (string, []string, error) {
	var words []string
	for i, w := range vocab {
		k := float64(i + 1)
		cnt := int(float64(numWords) * math.Pow(k, -g.Task.Alpha) / zetaOf(g.Task.Alpha))
		for range cnt {
			words = append(words, w)
		}
	}
	pyrand.New(g.Seed).Shuffle(len(words), func(i, j int) { words[i], words[j] = words[j], words[i] })
	s, err := pyFormat(g.template, map[string]string{"context": strings.Join(words, " "), "query": ""})
	return s, slices.Clone(vocab[1:4]), err
}

// zetaOf is the Riemann zeta function at alpha; RULER's only setting is alpha = 2.
func zetaOf(alpha float64) float64 {
	if alpha == 2 {
		return zeta2
	}
	sum := 0.0
	for k := 1e6; k >= 1; k-- {
		sum += math.Pow(k, -alpha)
	}
	return sum
}

func (g *gen) fweInputOutput(maxLen, numWords, vocabSize, inc int) (string, []string, int, error) {
	vocab := g.fweVocab(vocabSize)
	if len(vocab) < 4 {
		return "", nil, 0, fmt.Errorf("vocabulary of %d words is too small (max_seq_length below 250)", len(vocab))
	}
	if numWords > 0 {
		text, _, err := g.fweText(vocab, numWords)
		for err == nil && g.count(text) > maxLen {
			numWords -= inc
			text, _, err = g.fweText(vocab, numWords)
		}
		if err != nil {
			return "", nil, 0, err
		}
	} else {
		numWords = maxLen / 6
		text, _, err := g.fweText(vocab, numWords)
		for err == nil && g.count(text) < maxLen {
			numWords += inc
			text, _, err = g.fweText(vocab, numWords)
		}
		if err != nil {
			return "", nil, 0, err
		}
		numWords -= inc
	}
	text, ans, err := g.fweText(vocab, numWords)
	return text, ans, numWords, err
}

func (g *gen) fwe() ([]Sample, error) {
	ttg := g.Task.TokensToGenerate()
	maxLen := g.MaxSeq - ttg
	vocabSize := maxLen / 50
	inc := maxLen / 32
	if inc <= 0 {
		return nil, fmt.Errorf("max_seq_length %d is too small", g.MaxSeq)
	}
	_, _, numWords, err := g.fweInputOutput(maxLen, -1, vocabSize, inc)
	if err != nil {
		return nil, err
	}
	var out []Sample
	for i := range g.N {
		text, ans, _, err := g.fweInputOutput(maxLen, numWords, vocabSize, inc)
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		length := g.count(text) + ttg
		in, prefix := g.finish(text)
		out = append(out, Sample{Task: g.Task.Name, MaxSeq: g.MaxSeq, N: i, Depth: -1, Row: Row{
			Index: i, Input: in, Outputs: ans, Length: length, LengthWithMT: length, AnswerPrefix: prefix}})
	}
	return out, nil
}
