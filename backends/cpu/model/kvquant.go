package model

import (
	"github.com/snapeval/snapeval/compress/kvquant"
)

// QuantKV is a sequence's KV cache held quantized (docs/policies.md §17, the arithmetic of package
// compress/kvquant) in place of Seq.K and Seq.V. Slot s holds position s (the full cache's layout). Per layer:
//
//	KCode  [KeyGroups*G][KVHeads][RowBytes]   key codes of the complete groups of G positions
//	KPar   [KeyGroups][KVHeads][HeadDim][2]   their float16 scale and zero per channel
//	KStage [StageRows][KVHeads][HeadDim]      the float32 keys of the group being filled (row s % G)
//	VCode  [Cap][KVHeads][RowBytes]           value codes, quantized as each token is written
//	VPar   [Cap][KVHeads][ValueGroups][2]     their float16 scale and zero per group of G channels
//
// Forward writes one token per segment and step (slot = position): its value is quantized at once and its key
// goes to the stage, and when it completes its group the group is quantized before the step attends. Attention
// dequantizes the keys and values tile by tile (dequantize on read); the keys of the group being filled are
// read from the stage in float32.
type QuantKV struct {
	F                      kvquant.Format
	Cap                    int
	KCode, VCode           [][]byte
	KPar, VPar             [][]uint16
	KStage                 [][]float32
	kvh, d, rb, vg, groups int
}

// NewQuantKV allocates a quantized cache of capacity slots in format f for every layer of m.
func (m *Model) NewQuantKV(f kvquant.Format, capacity int) *QuantKV {
	c := &m.Cfg
	q := &QuantKV{F: f, Cap: capacity, kvh: c.KVHeads, d: c.HeadDim, rb: f.RowBytes(c.HeadDim), vg: f.ValueGroups(c.HeadDim),
		groups: f.KeyGroups(capacity)}
	L := c.Layers
	q.KCode, q.VCode = make([][]byte, L), make([][]byte, L)
	q.KPar, q.VPar = make([][]uint16, L), make([][]uint16, L)
	q.KStage = make([][]float32, L)
	for l := 0; l < L; l++ {
		q.KCode[l] = make([]byte, q.groups*f.Group*q.kvh*q.rb)
		q.KPar[l] = make([]uint16, q.groups*q.kvh*q.d*2)
		q.KStage[l] = make([]float32, f.StageRows(capacity)*q.kvh*q.d)
		q.VCode[l] = make([]byte, capacity*q.kvh*q.rb)
		q.VPar[l] = make([]uint16, capacity*q.kvh*q.vg*2)
	}
	return q
}

// Bytes is the memory the cache holds (kvquant.Format.Bytes of its capacity with float32 staged keys).
func (q *QuantKV) Bytes() int64 {
	n := int64(0)
	for l := range q.KCode {
		n += int64(len(q.KCode[l])+len(q.VCode[l])) + 2*int64(len(q.KPar[l])+len(q.VPar[l])) + 4*int64(len(q.KStage[l]))
	}
	return n
}

// Load writes the first n positions of layer l from dense float32 keys and values K, V ([n][KVHeads][HeadDim],
// as a prefill leaves them): every value row quantized, the complete key groups quantized, the keys of the
// last, incomplete group staged.
func (q *QuantKV) Load(l int, K, V []float32, n int) {
	st := q.kvh * q.d
	for s := 0; s < n; s++ {
		for h := 0; h < q.kvh; h++ {
			q.putValue(l, s, h, V[s*st+h*q.d:s*st+(h+1)*q.d])
		}
	}
	G := q.F.Group
	full := min(n/G, q.groups)
	for g := 0; g < full; g++ {
		for h := 0; h < q.kvh; h++ {
			q.F.QuantizeKeys(q.KCode[l][(g*G*q.kvh+h)*q.rb:], st/q.d*q.rb, q.KPar[l][(g*q.kvh+h)*q.d*2:], K[g*G*st+h*q.d:], st, G, q.d)
		}
	}
	for s := full * G; s < n; s++ {
		copy(q.KStage[l][(s-full*G)*st:(s-full*G+1)*st], K[s*st:(s+1)*st])
	}
}

// putValue quantizes the value row v of slot s, KV head h, layer l.
func (q *QuantKV) putValue(l, s, h int, v []float32) {
	i := s*q.kvh + h
	q.F.QuantizeValue(q.VCode[l][i*q.rb:(i+1)*q.rb], q.VPar[l][i*q.vg*2:(i+1)*q.vg*2], v[:q.d])
}

// putKey stages the key row k of slot s, KV head h, layer l, and quantizes the group of that head when s
// completes it.
func (q *QuantKV) putKey(l, s, h int, k []float32) {
	G := q.F.Group
	st := q.kvh * q.d
	stage := q.KStage[l]
	copy(stage[(s%G)*st+h*q.d:(s%G)*st+(h+1)*q.d], k[:q.d])
	if g := s / G; s%G == G-1 && g < q.groups {
		q.F.QuantizeKeys(q.KCode[l][(g*G*q.kvh+h)*q.rb:], q.kvh*q.rb, q.KPar[l][(g*q.kvh+h)*q.d*2:], stage[h*q.d:], st, G, q.d)
	}
}

// keys writes into dst ([m][HeadDim]) the keys of slots [s0, s0+m) of KV head h, layer l, as a query sees them
// once written slots are held: those of the complete groups dequantized, the others from the stage. par is
// scratch for one group's widened scales and zeros (2*HeadDim floats).
func (q *QuantKV) keys(dst, par []float32, l, h, s0, m, written int) {
	G, d := q.F.Group, q.d
	quantized := min(written/G, q.groups) * G
	sc, zr := par[:d], par[d:2*d]
	g := -1
	for s := s0; s < s0+m; s++ {
		row := dst[(s-s0)*d : (s-s0+1)*d]
		if s >= quantized {
			o := ((s%G)*q.kvh + h) * d
			copy(row, q.KStage[l][o:o+d])
			continue
		}
		if s/G != g {
			g = s / G
			kvquant.Widen(sc, zr, q.KPar[l][(g*q.kvh+h)*d*2:])
		}
		q.F.DequantizeKey(row, q.KCode[l][(s*q.kvh+h)*q.rb:], sc, zr)
	}
}

// values writes into dst ([m][HeadDim]) the dequantized values of slots [s0, s0+m) of KV head h, layer l.
func (q *QuantKV) values(dst []float32, l, h, s0, m int) {
	d := q.d
	for s := s0; s < s0+m; s++ {
		i := s*q.kvh + h
		q.F.DequantizeValue(dst[(s-s0)*d:(s-s0+1)*d], q.VCode[l][i*q.rb:(i+1)*q.rb], q.VPar[l][i*q.vg*2:(i+1)*q.vg*2])
	}
}
