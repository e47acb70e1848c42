package tokenizer

import (
	"container/heap"
	"fmt"
	"sync"
	"unicode/utf8"
)

// mergeInfo is the rank of a merge and the id of the token it produces.
type mergeInfo struct {
	rank  int32
	newID int32
}

// bpe is the BPE model: vocabulary, merges and a cache of already-encoded pre-tokens.
type bpe struct {
	vocab        map[string]int
	merges       map[uint64]mergeInfo
	unkID        int // -1 when there is no unk token
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool

	mu    sync.RWMutex
	cache map[string][]int
}

// maxCacheEntries bounds the pre-token cache; once full, new pre-tokens are not cached.
const maxCacheEntries = 1 << 16

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// encode appends the ids of one pre-token to dst.
func (m *bpe) encode(dst []int, word string) []int {
	if word == "" {
		return dst
	}
	m.mu.RLock()
	ids, ok := m.cache[word]
	m.mu.RUnlock()
	if ok {
		return append(dst, ids...)
	}
	ids = m.encodeUncached(word)
	m.mu.Lock()
	if len(m.cache) < maxCacheEntries {
		m.cache[word] = ids
	}
	m.mu.Unlock()
	return append(dst, ids...)
}

// encodeBytes is encode for a word held in a scratch buffer: it allocates only on a cache miss.
func (m *bpe) encodeBytes(dst []int, word []byte) []int {
	if len(word) == 0 {
		return dst
	}
	m.mu.RLock()
	ids, ok := m.cache[string(word)]
	m.mu.RUnlock()
	if ok {
		return append(dst, ids...)
	}
	return m.encode(dst, string(word))
}

// symbol is one node of the doubly linked list the merges work on.
type symbol struct {
	id         int
	prev, next int // -1 at the ends
	gone       bool
}

// mergeItem is a candidate merge of the symbol at pos with its right neighbour.
type mergeItem struct {
	pos   int
	rank  int32
	newID int32
}

type mergeQueue []mergeItem

func (q mergeQueue) Len() int { return len(q) }
func (q mergeQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}
func (q mergeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mergeQueue) Push(x any)   { *q = append(*q, x.(mergeItem)) }
func (q *mergeQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

// encodeUncached runs BPE on one pre-token the way tokenizers' Word::merge_all does:
// always apply the lowest-ranked merge available (leftmost on ties).
func (m *bpe) encodeUncached(word string) []int {
	if m.ignoreMerges {
		if id, ok := m.vocab[word]; ok {
			return []int{id}
		}
	}
	syms := make([]symbol, 0, len(word))
	for i := 0; i < len(word); {
		_, size := utf8.DecodeRuneInString(word[i:])
		ch := word[i : i+size]
		i += size
		if id, ok := m.vocab[ch]; ok {
			syms = append(syms, symbol{id: id})
			continue
		}
		if m.byteFallback {
			all := true
			var ids []int
			for j := 0; j < len(ch); j++ {
				id, ok := m.vocab[fmt.Sprintf("<0x%02X>", ch[j])]
				if !ok {
					all = false
					break
				}
				ids = append(ids, id)
			}
			if all {
				for _, id := range ids {
					syms = append(syms, symbol{id: id})
				}
				continue
			}
		}
		if m.unkID >= 0 {
			if m.fuseUnk && len(syms) > 0 && syms[len(syms)-1].id == m.unkID {
				continue
			}
			syms = append(syms, symbol{id: m.unkID})
		}
	}
	for i := range syms {
		syms[i].prev, syms[i].next = i-1, i+1
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	q := make(mergeQueue, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if mi, ok := m.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			q = append(q, mergeItem{pos: i, rank: mi.rank, newID: mi.newID})
		}
	}
	heap.Init(&q)
	for q.Len() > 0 {
		top := heap.Pop(&q).(mergeItem)
		cur := &syms[top.pos]
		if cur.gone || cur.next < 0 {
			continue
		}
		right := &syms[cur.next]
		if mi, ok := m.merges[pairKey(cur.id, right.id)]; !ok || mi.newID != top.newID {
			continue // stale: one side was merged since this item was queued
		}
		cur.id = int(top.newID)
		right.gone = true
		cur.next = right.next
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if mi, ok := m.merges[pairKey(syms[cur.prev].id, cur.id)]; ok {
				heap.Push(&q, mergeItem{pos: cur.prev, rank: mi.rank, newID: mi.newID})
			}
		}
		if cur.next >= 0 {
			if mi, ok := m.merges[pairKey(cur.id, syms[cur.next].id)]; ok {
				heap.Push(&q, mergeItem{pos: top.pos, rank: mi.rank, newID: mi.newID})
			}
		}
	}
	ids := make([]int, 0, len(syms))
	for _, s := range syms {
		if !s.gone {
			ids = append(ids, s.id)
		}
	}
	return ids
}
