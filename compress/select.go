package compress

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// keyBlock is the number of keys whose logits are computed together for every observation query,
// so that a block of keys (keyBlock x headDim float32) stays in L1/L2 while all W' queries use it.
const keyBlock = 128

// rowBlock is the number of observation queries per SGEMM tile: with keyBlock, small enough that gonum
// computes the tile serially.
const rowBlock = 64

// Scratch holds the buffers SelectTopK reuses between calls. The zero value (or nil) is ready to use.
// A Scratch is not safe for concurrent use; give each goroutine its own.
type Scratch struct {
	q      []float32 // W' x headDim: the observation queries of one head, contiguous
	logits []float32 // W' x L: scaled logits of one head
	ex     []float64 // L: exp(logit - max) of one row
	score  []float64 // L: summed probabilities of one head
	group  []float64 // Hi-Lo: sum over the group's heads of the pooled scores of the candidates
	idx    []int32   // Hi-Lo: candidate positions being ranked

	// Scores, when set, computes the observation logits instead of gonum's SGEMM:
	// out[i*ldo+t] = scale * (q_i · k_t) for nq query rows q_i = q[i*ldq:][:d] and n key rows
	// k_t = k[t*ldk:][:d], in float32. The CPU engine sets it to its FMA kernels (model.Scores).
	Scores func(q []float32, ldq, nq int, k []float32, ldk, d, n int, scale float32, out []float32, ldo int)
}

func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// SelectTopK returns, per KV head, the kept top-K candidate positions of one layer: ascending, within
// [plan.Lo, plan.Hi), len == plan.ValidTopK (docs/policies.md §8).
//
// queries are the post-RoPE queries of the last W' = min(plan.Window, plan.PromptLen) prompt positions,
// flat [W'][numQHeads][headDim]; keys are the post-RoPE keys of all L prompt positions, flat
// [L][numKVHeads][headDim]. Query head h belongs to KV head h/(numQHeads/numKVHeads).
// When plan.NeedScores is false every candidate is kept, no score is computed and queries and keys
// may be nil. s may be nil; passing the same Scratch to repeated calls avoids re-allocating the
// O(W' x L) buffers. Only the returned slices are allocated per call.
//
// Scores: per query head and observation query, the full-row causal softmax of q.k/sqrt(headDim)
// (float32 dot products, float64 max-subtracted exponentials and sums); summed over the W' queries;
// average-pooled with kernel k over the whole length-L vector (zero padding, always divided by k);
// averaged over the heads of the group; the K highest candidates kept, ties to the lower position.
//
// It panics when the shapes do not match (a programming error).
func SelectTopK(plan Plan, queries, keys []float32, numQHeads, numKVHeads, headDim int, s *Scratch) [][]int {
	if numKVHeads < 1 || numQHeads < numKVHeads || numQHeads%numKVHeads != 0 {
		panic(fmt.Sprintf("compress: SelectTopK: %d query heads is not a positive multiple of %d KV heads", numQHeads, numKVHeads))
	}
	out := make([][]int, numKVHeads)
	if !plan.NeedScores {
		for g := range out {
			kept := make([]int, 0, plan.ValidTopK)
			for p := plan.Lo; p < plan.Lo+plan.ValidTopK; p++ {
				kept = append(kept, p)
			}
			out[g] = kept
		}
		return out
	}
	if plan.Policy.Method == MethodKNorm {
		return selectKNorm(plan, keys, numKVHeads, headDim, s)
	}
	c := plan.Hi - plan.Lo
	s = prepareScoring(s, "SelectTopK", &plan, queries, keys, numQHeads, numKVHeads, headDim)
	s.idx = grow(s.idx, c)
	for g := range numKVHeads {
		groupScores(plan, queries, keys, numQHeads, numKVHeads, headDim, g, s)
		out[g] = topK(s, plan.Lo, plan.ValidTopK)
	}
	return out
}

// groupScores fills s.group[0:Hi-Lo] with G[j] of docs/policies.md §8 for the candidates of KV head g: the
// pooled scores of its query heads, averaged. The scratch buffers must be sized (SelectTopK).
func groupScores(plan Plan, queries, keys []float32, numQHeads, numKVHeads, headDim, g int, s *Scratch) {
	groupSize := numQHeads / numKVHeads
	L, w := plan.PromptLen, min(plan.Window, plan.PromptLen)
	clear(s.group)
	for j := range groupSize {
		headScores(s, queries, numQHeads, g*groupSize+j, keys, L, w, numKVHeads, g, headDim)
		poolCandidates(s.group, s.score, plan.Lo, plan.Hi, plan.Kernel)
	}
	for i := range s.group {
		s.group[i] /= float64(groupSize)
	}
}

// headScores fills s.score[0:L] with the sum over the last w prompt queries of query head h (queries, flat
// [w][numQHeads][headDim]) of the full-row causal softmax probabilities of every key position of KV head g.
// The rows go in blocks of rowBlock (s.q and s.logits hold one block), summed in row order.
func headScores(s *Scratch, queries []float32, numQHeads, h int, keys []float32, L, w, numKVHeads, g, headDim int) {
	scale := float32(1 / math.Sqrt(float64(headDim)))
	stride := numKVHeads * headDim
	first := L - w // absolute position of query row 0
	clear(s.score)
	for b0 := 0; b0 < w; b0 += rowBlock {
		nr := min(rowBlock, w-b0)
		for i := range nr {
			copy(s.q[i*headDim:(i+1)*headDim], queries[((b0+i)*numQHeads+h)*headDim:])
		}
		// Logits: C[i][t] = scale * q_i . k_t, one serial SGEMM per block of keys (gonum's SSE dot kernel, float32)
		// so that a block is reused by every query while it is cached. Rows are computed over whole blocks up to the
		// last row's position; the causal limit is applied by the softmax below, which reads row i only up to key
		// first+i. Tiles of at most rowBlock x keyBlock keep gonum on its serial path (no goroutines, no allocation).
		kEnd := first + b0 + nr
		for t0 := 0; t0 < kEnd; t0 += keyBlock {
			nb := min(keyBlock, L-t0)
			if s.Scores != nil {
				s.Scores(s.q, headDim, nr, keys[t0*stride+g*headDim:], stride, headDim, nb, scale, s.logits[t0:], L)
				continue
			}
			B := blas32.General{Rows: nb, Cols: headDim, Stride: stride, Data: keys[t0*stride+g*headDim:]}
			A := blas32.General{Rows: nr, Cols: headDim, Stride: headDim, Data: s.q[:nr*headDim]}
			C := blas32.General{Rows: nr, Cols: nb, Stride: L, Data: s.logits[t0:]}
			blas32.Gemm(blas.NoTrans, blas.Trans, scale, A, B, 0, C)
		}
		softmaxRows(s, first+b0, nr, L)
	}
}

// softmaxRows adds to s.score the causal softmax probabilities of the nr logit rows in s.logits (row i at
// absolute position first+i, stride L).
func softmaxRows(s *Scratch, first, nr, L int) {
	for i := range nr {
		n := first + i + 1
		row := s.logits[i*L : i*L+n]
		m := float32(math.Inf(-1))
		for _, x := range row {
			m = max(m, x)
		}
		ex := s.ex[:n]
		var sum float64
		for t, x := range row {
			e := math.Exp(float64(x) - float64(m))
			ex[t] = e
			sum += e
		}
		inv := 1 / sum
		score := s.score[:n]
		for t, e := range ex {
			score[t] += e * inv
		}
	}
}

// poolCandidates adds to group[j-lo], for each candidate j in [lo, hi), the average pool of score with
// kernel k centred on j: zero padding k/2 on both sides, always divided by k (avg_pool1d, count_include_pad).
func poolCandidates(group, score []float64, lo, hi, k int) {
	r := k / 2
	L := len(score)
	fk := float64(k)
	for j := lo; j < hi; j++ {
		var sum float64
		for t := max(0, j-r); t <= min(L-1, j+r); t++ {
			sum += score[t]
		}
		group[j-lo] += sum / fk
	}
}

// selectKNorm is SelectTopK for knorm (docs/policies.md §15): per KV head, the plan.ValidTopK prompt
// positions whose key has the lowest L2 norm (float64 sum of squares of the float32 components, the square
// root omitted as it keeps the order), ties to the lower position. Queries are not used. The caller passes the
// keys before RoPE: the norm is the rotated key's in exact arithmetic, but equal keys (a token repeated in the
// first layer) tie exactly only before the rotation, which float rounding would otherwise rank.
func selectKNorm(plan Plan, keys []float32, numKVHeads, headDim int, s *Scratch) [][]int {
	L := plan.PromptLen
	if headDim < 1 || len(keys) != L*numKVHeads*headDim {
		panic(fmt.Sprintf("compress: SelectTopK (knorm): got %d key floats, want %d x %d x %d", len(keys), L, numKVHeads, headDim))
	}
	if s == nil {
		s = &Scratch{}
	}
	c := plan.Hi - plan.Lo
	s.group = grow(s.group, c)
	s.idx = grow(s.idx, c)
	out := make([][]int, numKVHeads)
	for g := range numKVHeads {
		for j := range c {
			k := keys[((plan.Lo+j)*numKVHeads+g)*headDim:][:headDim]
			var ss float64
			for _, x := range k {
				ss += float64(x) * float64(x)
			}
			s.group[j] = -ss
		}
		out[g] = topK(s, plan.Lo, plan.ValidTopK)
	}
	return out
}

// topK returns the n candidates with the highest s.group value (NaN lowest, ties to the lower position),
// as ascending absolute positions.
func topK(s *Scratch, lo, n int) []int {
	v := s.group
	for i := range v {
		if math.IsNaN(v[i]) {
			v[i] = math.Inf(-1)
		}
	}
	idx := s.idx[:len(v)]
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int {
		switch {
		case v[a] > v[b]:
			return -1
		case v[a] < v[b]:
			return 1
		}
		return int(a - b)
	})
	kept := make([]int, n)
	for i := range kept {
		kept[i] = lo + int(idx[i])
	}
	slices.Sort(kept)
	return kept
}

// prepareScoring checks the lengths of the window's queries and the prompt's keys against plan (a panic naming fn,
// as for any misuse of the package by a backend) and sizes the scratch buffers the SnapKV scores use.
func prepareScoring(s *Scratch, fn string, plan *Plan, queries, keys []float32, numQHeads, numKVHeads, headDim int) *Scratch {
	L := plan.PromptLen
	w := min(plan.Window, L)
	if headDim < 1 || len(queries) != w*numQHeads*headDim || len(keys) != L*numKVHeads*headDim {
		panic(fmt.Sprintf("compress: %s: got %d query and %d key floats, want %d x %d x %d and %d x %d x %d",
			fn, len(queries), len(keys), w, numQHeads, headDim, L, numKVHeads, headDim))
	}
	if s == nil {
		s = &Scratch{}
	}
	s.q = grow(s.q, min(w, rowBlock)*headDim)
	s.logits = grow(s.logits, min(w, rowBlock)*L)
	s.ex = grow(s.ex, L)
	s.score = grow(s.score, L)
	s.group = grow(s.group, plan.Hi-plan.Lo)
	return s
}
