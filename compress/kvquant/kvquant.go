// Package kvquant is the arithmetic of the quantized KV cache of docs/policies.md §17 (the policy
// "kvquant:bits=B,group=G"), after KIVI (Liu et al. 2024, arXiv 2402.02750, Algorithm 1; reference code
// jy-yuan/KIVI, quant/new_pack.py): keys are quantized per channel over groups of G consecutive tokens, values
// per token over groups of G consecutive channels, each group asymmetric with a float16 scale and zero point:
//
//	scale = fp16((max - min) / (2^B - 1))      zero = fp16(min)            (float32 arithmetic, then fp16)
//	code  = roundHalfEven(clamp((x - zero) / scale, 0, 2^B - 1))          (code 0 where scale is 0)
//	x'    = float32(code * scale) + zero                                  (two float32 roundings, no FMA)
//
// with fp16 the round-to-nearest-even conversion that saturates at ±65504 (ToFloat16). Codes are packed
// little-end first, 8/B of them per byte, in rows of one token and one KV head (RowBytes).
//
// The package holds the arithmetic and the byte count, not a cache layout: the CPU backend keeps its own
// storage (backends/cpu/model.QuantKV) and tools/policies/reference.py repeats the arithmetic in Python.
package kvquant

import (
	"fmt"
	"math"
)

// Format is a quantization of a KV cache: Bits per code (2, 4 or 8) and the group size G.
type Format struct {
	Bits, Group int
}

// DefaultGroup is the group size when a policy names none: 32, as in KIVI's examples and its LongBench tables.
const DefaultGroup = 32

// MaxGroup bounds the group size (a key group is held in full precision until its G tokens are written).
const MaxGroup = 1 << 16

// Validate checks that f is a format this package implements.
func (f Format) Validate() error {
	if f.Bits != 2 && f.Bits != 4 && f.Bits != 8 {
		return fmt.Errorf("bits=%d: want 2, 4 or 8", f.Bits)
	}
	if f.Group < 1 || f.Group > MaxGroup {
		return fmt.Errorf("group=%d: want 1 .. %d", f.Group, MaxGroup)
	}
	return nil
}

// MaxCode is the largest code, 2^Bits - 1.
func (f Format) MaxCode() int { return 1<<f.Bits - 1 }

// RowBytes is the size of one packed row of d codes (one token of one KV head): ceil(d * Bits / 8).
func (f Format) RowBytes(d int) int { return (d*f.Bits + 7) / 8 }

// ValueGroups is the number of value groups of one token of one KV head: ceil(d / Group).
func (f Format) ValueGroups(d int) int { return (d + f.Group - 1) / f.Group }

// KeyGroups is the number of key groups of a cache of capacity slots that are ever quantized: the complete
// groups, floor(capacity / Group). The slots past them stay in full precision.
func (f Format) KeyGroups(capacity int) int { return capacity / f.Group }

// StageRows is the number of keys of one layer and KV head held in full precision while their group fills:
// min(Group, capacity).
func (f Format) StageRows(capacity int) int { return min(f.Group, capacity) }

// Bytes is the memory of one sequence's quantized cache of capacity slots (docs/policies.md §10): for every
// layer and KV head, the key codes of the complete groups and a float16 scale and zero per group and channel,
// the full-precision keys of the group being filled (elemBytes each), and for every slot the value codes and a
// float16 scale and zero per value group:
//
//	layers x kvHeads x ( KG*G*RB + KG*d*4 + min(G, C)*d*elemBytes + C*RB + C*ceil(d/G)*4 )
//
// with C = capacity, KG = floor(C/G) and RB = ceil(d*bits/8).
func (f Format) Bytes(capacity, layers, kvHeads, headDim, elemBytes int) int64 {
	C, d := int64(capacity), int64(headDim)
	rb := int64(f.RowBytes(headDim))
	kg := int64(f.KeyGroups(capacity))
	keys := kg*int64(f.Group)*rb + kg*d*4 + int64(f.StageRows(capacity))*d*int64(elemBytes)
	vals := C*rb + C*int64(f.ValueGroups(headDim))*4
	return int64(layers) * int64(kvHeads) * (keys + vals)
}

// ToFloat16 converts f to IEEE binary16 bits, rounding to nearest with ties to even; magnitudes that would round
// beyond the largest finite float16 (65504), infinities included, saturate to ±65504; NaN stays a NaN.
func ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	const maxHalf = 0x7bff
	switch {
	case exp == 0xff && man != 0:
		return sign | 0x7e00
	case exp == 0xff:
		return sign | maxHalf
	case exp == 0: // zero or a float32 subnormal: far below half of the smallest float16 subnormal
		return sign
	}
	e := exp - 127
	if e > 15 {
		return sign | maxHalf
	}
	if e >= -14 { // a normal float16, unless rounding carries past the largest
		m := man >> 13
		rem := man & 0x1fff
		if rem > 0x1000 || rem == 0x1000 && m&1 == 1 {
			m++
		}
		h := uint32(e+15)<<10 + m // a mantissa carry moves into the exponent
		if h > maxHalf {
			return sign | maxHalf
		}
		return sign | uint16(h)
	}
	// A float16 subnormal (or zero): units of 2^-24. The value is sig * 2^(e-23) = (sig >> shift) units.
	sig := man | 0x800000
	shift := uint(-(e + 1))
	if shift > 24 {
		return sign
	}
	m := sig >> shift
	rem := sig & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || rem == half && m&1 == 1 {
		m++
	}
	return sign | uint16(m)
}

// FromFloat16 converts IEEE binary16 bits to float32 (exactly).
func FromFloat16(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// subnormal: man * 2^-24
	v := float32(man) * (1.0 / (1 << 24))
	if sign != 0 {
		return -v
	}
	return v
}

// params returns the float16 scale and zero point of a group whose smallest and largest elements are mn and mx.
func (f Format) params(mn, mx float32) (scale, zero uint16) {
	return ToFloat16((mx - mn) / float32(f.MaxCode())), ToFloat16(mn)
}

// code quantizes x with a group's scale s and zero z (widened from float16).
func code(x, s, z, maxq float32) byte {
	if s == 0 {
		return 0
	}
	t := (x - z) / s
	t = min(max(t, 0), maxq)
	return byte(math.RoundToEven(float64(t)))
}

// Dequant returns code q's value with a group's scale s and zero z (widened from float16): float32(q*s) + z.
// The explicit conversion rounds the product before the sum, so that no platform fuses them into one FMA.
func Dequant(q byte, s, z float32) float32 {
	return float32(float32(q)*s) + z
}

// put stores code q as element i of the packed row.
func (f Format) put(row []byte, i int, q byte) {
	switch f.Bits {
	case 8:
		row[i] = q
	case 4:
		sh := uint(i&1) * 4
		row[i>>1] = row[i>>1]&^(0xf<<sh) | q<<sh
	default:
		sh := uint(i&3) * 2
		row[i>>2] = row[i>>2]&^(0x3<<sh) | q<<sh
	}
}

// Code returns element i of a packed row.
func (f Format) Code(row []byte, i int) byte {
	switch f.Bits {
	case 8:
		return row[i]
	case 4:
		return row[i>>1] >> (uint(i&1) * 4) & 0xf
	}
	return row[i>>2] >> (uint(i&3) * 2) & 0x3
}

// QuantizeValue quantizes one token's value row x (one KV head, d = len(x) channels) per group of Group
// consecutive channels: codes receives the packed row (RowBytes(d) bytes), par the float16 scale and zero of
// each group (par[2j], par[2j+1], ValueGroups(d) groups).
func (f Format) QuantizeValue(codes []byte, par []uint16, x []float32) {
	d := len(x)
	maxq := float32(f.MaxCode())
	for j := 0; j*f.Group < d; j++ {
		g := x[j*f.Group : min(d, (j+1)*f.Group)]
		mn, mx := g[0], g[0]
		for _, v := range g[1:] {
			mn, mx = min(mn, v), max(mx, v)
		}
		hs, hz := f.params(mn, mx)
		par[2*j], par[2*j+1] = hs, hz
		s, z := FromFloat16(hs), FromFloat16(hz)
		for i, v := range g {
			f.put(codes, j*f.Group+i, code(v, s, z, maxq))
		}
	}
}

// DequantizeValue writes into dst (d = len(dst) channels) the value row that QuantizeValue packed into codes
// and par.
func (f Format) DequantizeValue(dst []float32, codes []byte, par []uint16) {
	d := len(dst)
	for j := 0; j*f.Group < d; j++ {
		s, z := FromFloat16(par[2*j]), FromFloat16(par[2*j+1])
		lo, hi := j*f.Group, min(d, (j+1)*f.Group)
		switch f.Bits {
		case 8:
			for i := lo; i < hi; i++ {
				dst[i] = Dequant(codes[i], s, z)
			}
		case 4:
			i := lo
			if i&1 == 1 {
				dst[i] = Dequant(codes[i>>1]>>4, s, z)
				i++
			}
			for ; i+1 < hi; i += 2 { // two codes a byte, low nibble first
				c := codes[i>>1]
				dst[i] = Dequant(c&0xf, s, z)
				dst[i+1] = Dequant(c>>4, s, z)
			}
			if i < hi {
				dst[i] = Dequant(codes[i>>1]&0xf, s, z)
			}
		default:
			for i := lo; i < hi; i++ {
				dst[i] = Dequant(codes[i>>2]>>(uint(i&3)*2)&0x3, s, z)
			}
		}
	}
}

// QuantizeKeys quantizes a group of n tokens' keys of one KV head per channel: token t's key is
// x[t*xStride:][:d]; its packed codes go to codes[t*codeStride:][:RowBytes(d)] and the float16 scale and zero of
// channel c to par[2c], par[2c+1]. A whole group has n = Group tokens.
func (f Format) QuantizeKeys(codes []byte, codeStride int, par []uint16, x []float32, xStride, n, d int) {
	if n < 1 {
		return
	}
	maxq := float32(f.MaxCode())
	for c := 0; c < d; c++ {
		mn, mx := x[c], x[c]
		for t := 1; t < n; t++ {
			v := x[t*xStride+c]
			mn, mx = min(mn, v), max(mx, v)
		}
		hs, hz := f.params(mn, mx)
		par[2*c], par[2*c+1] = hs, hz
		s, z := FromFloat16(hs), FromFloat16(hz)
		for t := 0; t < n; t++ {
			f.put(codes[t*codeStride:], c, code(x[t*xStride+c], s, z, maxq))
		}
	}
}

// Widen writes the float32 scales and zeros of d channels' float16 pairs par (as QuantizeKeys stores them) into
// scale[:d] and zero[:d], for DequantizeKey.
func Widen(scale, zero []float32, par []uint16) {
	for c := range scale {
		scale[c], zero[c] = FromFloat16(par[2*c]), FromFloat16(par[2*c+1])
	}
}

// DequantizeKey writes into dst (d = len(dst) channels) one token's key from its packed codes and its group's
// widened per-channel scales and zeros (Widen).
func (f Format) DequantizeKey(dst []float32, codes []byte, scale, zero []float32) {
	d := len(dst)
	scale, zero = scale[:d], zero[:d]
	switch f.Bits {
	case 8:
		codes = codes[:d]
		for i := range dst {
			dst[i] = Dequant(codes[i], scale[i], zero[i])
		}
	case 4:
		i := 0
		for _, c := range codes[:d/2] { // two codes a byte, low nibble first
			dst[i] = Dequant(c&0xf, scale[i], zero[i])
			dst[i+1] = Dequant(c>>4, scale[i+1], zero[i+1])
			i += 2
		}
		if i < d {
			dst[i] = Dequant(codes[i>>1]&0xf, scale[i], zero[i])
		}
	default:
		for i := range dst {
			dst[i] = Dequant(codes[i>>2]>>(uint(i&3)*2)&0x3, scale[i], zero[i])
		}
	}
}
