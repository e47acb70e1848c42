// Package jieba is a Go implementation of the default mode of the jieba Chinese word segmenter (jieba 0.42.1,
// `jieba.cut(s, cut_all=False, HMM=True)`), the segmenter LongBench's official Chinese metrics run. It follows
// jieba's algorithm step by step and embeds jieba's own data, so that its segmentation is jieba's:
//
//   - the text is split into blocks of [\u4E00-\u9FD5a-zA-Z0-9+#&._%-] and the rest; other text is cut into its
//     "\r\n" and whitespace separators and single characters;
//   - each block is segmented over the prefix dictionary (dict.txt, 349,046 words with their frequencies): the
//     DAG of the dictionary words starting at each character, the route of maximum log probability
//     (log(freq or 1) - log(total), ties to the longer word), and runs of single characters that are not a
//     dictionary word are handed to the HMM;
//   - the HMM (finalseg: B/M/E/S states, jieba's start, transition and emission log probabilities) finds unknown
//     words with Viterbi decoding, exactly as finalseg does, ties included.
//
// The dictionary and the emission table are jieba's files (MIT licence, see LICENSE in this directory), kept
// gzip-compressed: dict.txt.gz holds the first two columns (word, frequency) of jieba/dict.txt, and
// prob_emit.txt.gz the emission table of jieba/finalseg/prob_emit.py, one "STATE CHAR LOGPROB" line each, the
// log probability written as Python's repr (so it parses to the same float64). They are loaded once, on first use.
package jieba

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/snapeval/snapeval/internal/pytext"
)

//go:embed dict.txt.gz
var dictGz []byte

//go:embed prob_emit.txt.gz
var emitGz []byte

// Segmenter holds a prefix dictionary and an HMM emission table.
type Segmenter struct {
	// freq maps every dictionary word to its frequency and every proper prefix of a word that is not itself a
	// word to 0 (jieba's FREQ).
	freq  map[string]int64
	total int64
	// logTotal is log(total), computed once as jieba's calc does per sentence.
	logTotal float64
	// emit holds, per character, its emission log probability in states B, M, E, S (minFloat when absent).
	emit map[rune]*[4]float64
}

// HMM states, in jieba's order "BMES".
const (
	stB = iota
	stM
	stE
	stS
)

// minFloat is finalseg's MIN_FLOAT, the log probability of an impossible event.
const minFloat = -3.14e100

var (
	startP = [4]float64{stB: -0.26268660809250016, stM: minFloat, stE: minFloat, stS: -1.4652633398537678}
	// transP[from][to]; a transition jieba's table lacks is minFloat.
	transP = [4][4]float64{
		stB: {stB: minFloat, stM: -0.916290731874155, stE: -0.510825623765990, stS: minFloat},
		stM: {stB: minFloat, stM: -1.2603623820268226, stE: -0.33344856811948514, stS: minFloat},
		stE: {stB: -0.5897149736854513, stM: minFloat, stE: minFloat, stS: -0.8085250474669937},
		stS: {stB: -0.7211965654669841, stM: minFloat, stE: minFloat, stS: -0.6658631448798212},
	}
	// prevStatus is finalseg's PrevStatus: the states that may precede each state.
	prevStatus = [4][2]int{stB: {stE, stS}, stM: {stM, stB}, stE: {stB, stM}, stS: {stS, stE}}
	// stateLetter orders states in Python's max over (prob, state) tuples: ties go to the larger letter.
	stateLetter = [4]byte{stB: 'B', stM: 'M', stE: 'E', stS: 'S'}
)

var (
	defaultOnce sync.Once
	defaultSeg  *Segmenter
	defaultErr  error
)

// Default returns the segmenter on jieba's embedded dictionary and HMM, loaded on first use (about 0.5 s).
func Default() (*Segmenter, error) {
	defaultOnce.Do(func() {
		defaultSeg, defaultErr = Load(bytes.NewReader(dictGz), bytes.NewReader(emitGz))
	})
	return defaultSeg, defaultErr
}

// Cut segments s with the default segmenter (jieba.cut(s), cut_all=False, HMM=True).
func Cut(s string) ([]string, error) {
	seg, err := Default()
	if err != nil {
		return nil, err
	}
	return seg.Cut(s), nil
}

// Load builds a segmenter from a gzip-compressed dictionary ("word freq" lines; jieba's dict.txt columns) and a
// gzip-compressed emission table ("STATE CHAR LOGPROB" lines).
func Load(dict, emit io.Reader) (*Segmenter, error) {
	s := &Segmenter{freq: make(map[string]int64, 600000), emit: make(map[rune]*[4]float64, 8000)}
	if err := eachLine(dict, "dictionary", func(n int, line string) error {
		word, rest, ok := strings.Cut(line, " ")
		f, _, _ := strings.Cut(rest, " ")
		v, err := strconv.ParseInt(f, 10, 64)
		if !ok || word == "" || err != nil {
			return fmt.Errorf("line %d: %q is not \"word freq\"", n, line)
		}
		s.add(word, v)
		return nil
	}); err != nil {
		return nil, err
	}
	if s.total <= 0 {
		return nil, fmt.Errorf("jieba: dictionary: total frequency %d", s.total)
	}
	s.logTotal = math.Log(float64(s.total))
	if err := eachLine(emit, "emission table", func(n int, line string) error {
		sp := strings.LastIndexByte(line, ' ')
		if len(line) < 5 || line[1] != ' ' || sp < 3 {
			return fmt.Errorf("line %d: %q is not \"STATE CHAR LOGPROB\"", n, line)
		}
		st := strings.IndexByte("BMES", line[0])
		r, size := utf8.DecodeRuneInString(line[2:sp])
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if st < 0 || r == utf8.RuneError || size != sp-2 || err != nil {
			return fmt.Errorf("line %d: %q is not \"STATE CHAR LOGPROB\"", n, line)
		}
		e := s.emit[r]
		if e == nil {
			e = &[4]float64{minFloat, minFloat, minFloat, minFloat}
			s.emit[r] = e
		}
		e[st] = v
		return nil
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// add records one dictionary line as jieba's gen_pfdict does: the word's frequency (a later line for the same
// word replaces it, both count in the total) and each of its prefixes, at 0 unless already present.
func (s *Segmenter) add(word string, f int64) {
	s.freq[word] = f
	s.total += f
	for i := range word {
		if i == 0 {
			continue
		}
		if _, ok := s.freq[word[:i]]; !ok {
			s.freq[word[:i]] = 0
		}
	}
}

func eachLine(r io.Reader, what string, fn func(n int, line string) error) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("jieba: %s: %w", what, err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimFunc(sc.Text(), pytext.IsSpace)
		if line == "" {
			continue
		}
		if err := fn(n, line); err != nil {
			return fmt.Errorf("jieba: %s: %w", what, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("jieba: %s: %w", what, err)
	}
	return nil
}

// Cut segments s as jieba.cut(s, cut_all=False, HMM=True) does.
func (s *Segmenter) Cut(text string) []string {
	var out []string
	for _, blk := range splitRuns(text, isHanDefault) {
		if blk.match {
			out = s.cutDAG(blk.text, out)
			continue
		}
		// re_skip_default = (\r\n|\s): separators are yielded whole, every other character alone.
		t := blk.text
		for len(t) > 0 {
			if strings.HasPrefix(t, "\r\n") {
				out = append(out, "\r\n")
				t = t[2:]
				continue
			}
			_, size := utf8.DecodeRuneInString(t)
			out = append(out, t[:size])
			t = t[size:]
		}
	}
	return out
}

// run is a maximal piece of text whose characters all match (or all fail) a class.
type run struct {
	text  string
	match bool
}

// splitRuns splits s into maximal runs of characters in and out of a class (Python's re.split with a captured
// "([class]+)" pattern, empty pieces dropped).
func splitRuns(s string, in func(rune) bool) []run {
	var runs []run
	start := 0
	cur := false
	for i, r := range s {
		m := in(r)
		if i == 0 {
			cur = m
			continue
		}
		if m != cur {
			runs = append(runs, run{s[start:i], cur})
			start, cur = i, m
		}
	}
	if start < len(s) {
		runs = append(runs, run{s[start:], cur})
	}
	return runs
}

// isHanDefault is re_han_default's class: [\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-].
func isHanDefault(r rune) bool {
	switch {
	case r >= 0x4E00 && r <= 0x9FD5, r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("+#&._%-", r)
}

// isHan is finalseg's re_han class: [\u4E00-\u9FD5].
func isHan(r rune) bool { return r >= 0x4E00 && r <= 0x9FD5 }

// cutDAG is jieba's __cut_DAG over one block (appending its words to out).
func (s *Segmenter) cutDAG(sentence string, out []string) []string {
	// off[k] is the byte offset of rune k; off[n] = len(sentence).
	off := make([]int, 0, len(sentence)+1)
	for i := range sentence {
		off = append(off, i)
	}
	n := len(off)
	off = append(off, len(sentence))
	word := func(a, b int) string { return sentence[off[a]:off[b]] } // runes a..b-1

	// get_DAG
	dag := make([][]int, n)
	for k := range n {
		var ends []int
		for i := k; i < n; i++ {
			f, ok := s.freq[word(k, i+1)]
			if !ok {
				break
			}
			if f != 0 {
				ends = append(ends, i)
			}
		}
		if len(ends) == 0 {
			ends = append(ends, k)
		}
		dag[k] = ends
	}
	// calc: route[idx] = max over x in DAG[idx] of (log(FREQ.get(word) or 1) - logtotal + route[x+1][0], x)
	routeP := make([]float64, n+1)
	routeX := make([]int, n+1)
	for idx := n - 1; idx >= 0; idx-- {
		first := true
		for _, x := range dag[idx] {
			f := s.freq[word(idx, x+1)]
			if f == 0 {
				f = 1
			}
			p := math.Log(float64(f)) - s.logTotal + routeP[x+1]
			if first || p > routeP[idx] || (p == routeP[idx] && x > routeX[idx]) {
				routeP[idx], routeX[idx] = p, x
				first = false
			}
		}
	}
	// walk the route, gathering single characters in buf
	bufStart, bufLen := 0, 0
	flush := func() {
		switch {
		case bufLen == 0:
		case bufLen == 1:
			out = append(out, word(bufStart, bufStart+1))
		default:
			b := word(bufStart, bufStart+bufLen)
			if s.freq[b] == 0 {
				out = finalsegCut(s, b, out)
			} else {
				for i := bufStart; i < bufStart+bufLen; i++ {
					out = append(out, word(i, i+1))
				}
			}
		}
		bufLen = 0
	}
	for x := 0; x < n; {
		y := routeX[x] + 1
		if y-x == 1 {
			if bufLen == 0 {
				bufStart = x
			}
			bufLen++
		} else {
			flush()
			out = append(out, word(x, y))
		}
		x = y
	}
	flush()
	return out
}

// finalsegCut is finalseg.cut: Han runs go through the HMM, other runs are split into
// ([a-zA-Z0-9]+(?:\.\d+)?%?) matches and the text between them.
func finalsegCut(s *Segmenter, text string, out []string) []string {
	for _, blk := range splitRuns(text, isHan) {
		if blk.match {
			out = s.hmmCut(blk.text, out)
			continue
		}
		t := blk.text
		for len(t) > 0 {
			i, j := findSkip(t)
			if i < 0 {
				out = append(out, t)
				break
			}
			if i > 0 {
				out = append(out, t[:i])
			}
			out = append(out, t[i:j])
			t = t[j:]
		}
	}
	return out
}

// findSkip finds the first match of finalseg's re_skip, [a-zA-Z0-9]+(?:\.\d+)?%?, in t (byte offsets; -1 if none).
func findSkip(t string) (int, int) {
	isAlnum := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	for i := 0; i < len(t); i++ {
		if !isAlnum(t[i]) {
			continue
		}
		j := i
		for j < len(t) && isAlnum(t[j]) {
			j++
		}
		// optional \.\d+ (Python's \d: any Unicode decimal digit)
		if j < len(t) && t[j] == '.' {
			k := j + 1
			for k < len(t) {
				r, size := utf8.DecodeRuneInString(t[k:])
				if !unicode.IsDigit(r) {
					break
				}
				k += size
			}
			if k > j+1 {
				j = k
			}
		}
		if j < len(t) && t[j] == '%' {
			j++
		}
		return i, j
	}
	return -1, -1
}

// hmmCut is finalseg's __cut: Viterbi decoding over B/M/E/S, then words from the state path.
func (s *Segmenter) hmmCut(sentence string, out []string) []string {
	obs := []rune(sentence)
	n := len(obs)
	emitOf := func(r rune, st int) float64 {
		if e := s.emit[r]; e != nil {
			return e[st]
		}
		return minFloat
	}
	v := make([][4]float64, n)
	path := make([][]byte, 4)
	for y := range 4 {
		v[0][y] = startP[y] + emitOf(obs[0], y)
		path[y] = []byte{byte(y)}
	}
	for t := 1; t < n; t++ {
		newPath := make([][]byte, 4)
		for y := range 4 {
			em := emitOf(obs[t], y)
			best, bestState := 0.0, -1
			for _, y0 := range prevStatus[y] {
				p := v[t-1][y0] + transP[y0][y] + em
				if bestState < 0 || p > best || (p == best && stateLetter[y0] > stateLetter[bestState]) {
					best, bestState = p, y0
				}
			}
			v[t][y] = best
			np := make([]byte, len(path[bestState]), len(path[bestState])+1)
			copy(np, path[bestState])
			newPath[y] = append(np, byte(y))
		}
		path = newPath
	}
	// max((V[-1][y], y) for y in 'ES'): ties go to S
	last := stE
	if v[n-1][stS] >= v[n-1][stE] {
		last = stS
	}
	states := path[last]
	begin, next := 0, 0
	byteOff := make([]int, 0, n+1)
	for i := range sentence {
		byteOff = append(byteOff, i)
	}
	byteOff = append(byteOff, len(sentence))
	for i := range n {
		switch states[i] {
		case stB:
			begin = i
		case stE:
			out = append(out, sentence[byteOff[begin]:byteOff[i+1]])
			next = i + 1
		case stS:
			out = append(out, sentence[byteOff[i]:byteOff[i+1]])
			next = i + 1
		}
	}
	if next < n {
		out = append(out, sentence[byteOff[next]:])
	}
	return out
}
