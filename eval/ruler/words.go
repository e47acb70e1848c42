package ruler

import (
	"bytes"
	"embed"
	"slices"
	"strings"
	"sync"
)

//go:embed words/*.txt
var wordFS embed.FS

// wordList reads one wonderwords list as _get_words_from_text_file does: readlines(), each line right-stripped.
func wordList(name string) []string {
	b, err := wordFS.ReadFile("words/" + name)
	if err != nil {
		panic(err) // embedded at build time
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		lines[i] = pyRStrip(l)
	}
	return lines
}

// sortedUnique is sorted(set(xs)) (Python compares str by code point, which is UTF-8 byte order).
func sortedUnique(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}

// keyWords is niah's words: sorted(set(f"{adj}-{noun}" for adj in adjs for noun in nouns)), held as indices into
// the two lists so that six million strings are never built.
type keyWords struct {
	adjs, nouns []string
	pairs       []uint32 // adj*len(nouns) + noun, in sorted order of the joined strings, duplicates removed
}

func (k *keyWords) len() int { return len(k.pairs) }

func (k *keyWords) at(i int) string {
	p := int(k.pairs[i])
	return k.adjs[p/len(k.nouns)] + "-" + k.nouns[p%len(k.nouns)]
}

// cmpJoined compares adjs[a]+"-"+nouns[n] of two pairs without building the strings.
func (k *keyWords) cmp(x, y uint32) int {
	nn := uint32(len(k.nouns))
	parts := func(p uint32) [3]string { return [3]string{k.adjs[p/nn], "-", k.nouns[p%nn]} }
	a, b := parts(x), parts(y)
	ai, ao, bi, bo := 0, 0, 0, 0
	for {
		for ai < 3 && ao == len(a[ai]) {
			ai, ao = ai+1, 0
		}
		for bi < 3 && bo == len(b[bi]) {
			bi, bo = bi+1, 0
		}
		switch {
		case ai == 3 && bi == 3:
			return 0
		case ai == 3:
			return -1
		case bi == 3:
			return 1
		}
		ca, cb := a[ai][ao], b[bi][bo]
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
		ao++
		bo++
	}
}

var (
	keyWordsOnce sync.Once
	keyWordsVal  *keyWords
	poolOnce     sync.Once
	poolVal      []string
)

// niahWords returns niah's adjective-noun key words.
func niahWords() *keyWords {
	keyWordsOnce.Do(func() {
		k := &keyWords{adjs: wordList("adjectivelist.txt"), nouns: wordList("nounlist.txt")}
		k.pairs = make([]uint32, 0, len(k.adjs)*len(k.nouns))
		for a := range k.adjs {
			for n := range k.nouns {
				k.pairs = append(k.pairs, uint32(a*len(k.nouns)+n))
			}
		}
		slices.SortFunc(k.pairs, k.cmp)
		k.pairs = slices.CompactFunc(k.pairs, func(x, y uint32) bool { return k.cmp(x, y) == 0 })
		keyWordsVal = k
	})
	return keyWordsVal
}

// cweWords returns common_words_extraction's pool before its shuffle: sorted(set(nouns + adjs + verbs)).
func cweWords() []string {
	poolOnce.Do(func() {
		all := append(append(wordList("nounlist.txt"), wordList("adjectivelist.txt")...), wordList("verblist.txt")...)
		poolVal = sortedUnique(all)
	})
	return poolVal
}
