package kvquant

import (
	"fmt"
	"testing"
)

// BenchmarkDequantize measures dequantizing one 64-wide head row (a key with widened parameters, a value with its
// float16 ones), the work decode attention does per slot and layer and KV head for each of keys and values.
func BenchmarkDequantize(b *testing.B) {
	const d = 64
	for _, bits := range []int{8, 4, 2} {
		f := Format{Bits: bits, Group: 32}
		x := make([]float32, d)
		for i := range x {
			x[i] = float32(i%13) - 6
		}
		codes := make([]byte, f.RowBytes(d))
		par := make([]uint16, 2*d)
		f.QuantizeValue(codes, par, x)
		sc, zr := make([]float32, d), make([]float32, d)
		Widen(sc, zr, par)
		dst := make([]float32, d)
		b.Run(fmt.Sprintf("key/bits=%d", bits), func(b *testing.B) {
			b.SetBytes(d * 4)
			for b.Loop() {
				f.DequantizeKey(dst, codes, sc, zr)
			}
		})
		b.Run(fmt.Sprintf("value/bits=%d", bits), func(b *testing.B) {
			b.SetBytes(d * 4)
			for b.Loop() {
				f.DequantizeValue(dst, codes, par)
			}
		})
	}
}
