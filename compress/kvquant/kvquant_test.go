package kvquant

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestFloat16RoundTrip: every float16 converts to float32 exactly and back to itself (infinities saturate).
func TestFloat16RoundTrip(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := FromFloat16(uint16(h))
		got := ToFloat16(f)
		switch {
		case f != f:
			if got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
				t.Fatalf("NaN %#04x -> %#04x, not a NaN", h, got)
			}
		case math.IsInf(float64(f), 0):
			if want := uint16(h)&0x8000 | 0x7bff; got != want {
				t.Fatalf("%v -> %#04x, want %#04x (saturated)", f, got, want)
			}
		case got != uint16(h):
			t.Fatalf("%#04x = %v -> %#04x", h, f, got)
		}
	}
}

// TestFloat16Rounding pins round-to-nearest-even: between each pair of neighbouring finite float16 values the
// exact midpoint goes to the one with an even mantissa and the float32 values either side of it to the nearer;
// past the largest finite value everything saturates to it.
func TestFloat16Rounding(t *testing.T) {
	for _, sign := range []uint16{0, 0x8000} {
		for h := uint16(0); h < 0x7bff; h++ {
			a, b := sign|h, sign|(h+1)
			fa, fb := FromFloat16(a), FromFloat16(b)
			mid := float32((float64(fa) + float64(fb)) / 2) // 12 significant bits: exact in float32
			if float64(mid) != (float64(fa)+float64(fb))/2 {
				t.Fatalf("midpoint of %#04x and %#04x not exact in float32", a, b)
			}
			even := a
			if h&1 == 1 {
				even = b
			}
			if got := ToFloat16(mid); got != even {
				t.Fatalf("midpoint %v of %#04x and %#04x -> %#04x, want %#04x (ties to even)", mid, a, b, got, even)
			}
			toA := math.Nextafter32(mid, fa)
			toB := math.Nextafter32(mid, fb)
			if got := ToFloat16(toA); got != a {
				t.Fatalf("%v (just toward %#04x) -> %#04x", toA, a, got)
			}
			if got := ToFloat16(toB); got != b {
				t.Fatalf("%v (just toward %#04x) -> %#04x", toB, b, got)
			}
		}
		for _, f := range []float32{65504, 65519.996, 65520, 65536, 1e10, math.MaxFloat32, float32(math.Inf(1))} {
			if sign != 0 {
				f = -f
			}
			if got := ToFloat16(f); got != sign|0x7bff {
				t.Errorf("%v -> %#04x, want %#04x (saturated)", f, got, sign|0x7bff)
			}
		}
	}
	for _, f := range []float32{math.SmallestNonzeroFloat32, 1e-30, 1.0 / (1 << 25)} {
		if got := ToFloat16(f); got != 0 {
			t.Errorf("%v -> %#04x, want 0 (below half the smallest subnormal, or a tie to even 0)", f, got)
		}
	}
}

// TestPacking: every code of a row reads back, and writing one code leaves its neighbours alone.
func TestPacking(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, bits := range []int{2, 4, 8} {
		f := Format{Bits: bits, Group: 32}
		for _, d := range []int{1, 3, 16, 31, 64} {
			row := make([]byte, f.RowBytes(d))
			want := make([]byte, d)
			for round := 0; round < 4; round++ {
				for _, i := range r.Perm(d) {
					want[i] = byte(r.IntN(f.MaxCode() + 1))
					f.put(row, i, want[i])
				}
				for i := range want {
					if got := f.Code(row, i); got != want[i] {
						t.Fatalf("bits %d d %d: code %d = %d, want %d", bits, d, i, got, want[i])
					}
				}
			}
			if bits == 4 && d == 3 && len(row) != 2 || bits == 2 && d == 31 && len(row) != 8 {
				t.Errorf("bits %d d %d: %d row bytes", bits, d, len(row))
			}
		}
	}
}

// bound is the largest error a group's element may have: half a step, the float16 rounding of the scale over
// up to MaxCode steps and that of the zero point (relative 2^-11, or 2^-25 absolute among the subnormals), and
// float32 rounding.
func bound(f Format, mn, mx float32) float64 {
	s := float64(FromFloat16(ToFloat16((mx - mn) / float32(f.MaxCode()))))
	q := float64(f.MaxCode())
	return 0.5*s + q*s/2048 + math.Abs(float64(mn))/2048 + (q+1)/(1<<25) + 1e-6*(math.Abs(float64(mn))+math.Abs(float64(mx)))
}

// TestQuantizeBounds: random keys and values of several shapes and scales dequantize within the bound of their
// group, codes stay in range, a constant group is exact to float16, and the two dequantize paths agree.
func TestQuantizeBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, f := range []Format{{8, 32}, {4, 32}, {2, 32}, {4, 7}, {8, 1}, {4, 100}} {
		for _, d := range []int{16, 33, 64} {
			for _, amp := range []float32{1e-3, 1, 300} {
				n := f.Group
				x := make([]float32, n*d)
				for i := range x {
					x[i] = amp * float32(r.NormFloat64())
				}
				if amp == 1 { // a constant channel and a constant token
					for k := 0; k < n; k++ {
						x[k*d+1] = 0.7
					}
					for c := 0; c < d; c++ {
						x[c] = -2.5
					}
				}
				rb := f.RowBytes(d)
				codes := make([]byte, n*rb)
				par := make([]uint16, 2*d)
				f.QuantizeKeys(codes, rb, par, x, d, n, d)
				sc, zr := make([]float32, d), make([]float32, d)
				Widen(sc, zr, par)
				got := make([]float32, d)
				for k := 0; k < n; k++ {
					f.DequantizeKey(got, codes[k*rb:], sc, zr)
					for c := 0; c < d; c++ {
						mn, mx := x[c], x[c]
						for kk := 0; kk < n; kk++ {
							mn, mx = min(mn, x[kk*d+c]), max(mx, x[kk*d+c])
						}
						if q := f.Code(codes[k*rb:], c); int(q) > f.MaxCode() || got[c] != Dequant(q, sc[c], zr[c]) {
							t.Fatalf("%+v key code %d out of range or paths differ", f, q)
						}
						if e := math.Abs(float64(got[c] - x[k*d+c])); e > bound(f, mn, mx) {
							t.Fatalf("%+v d %d amp %v: key [%d][%d] %v -> %v, error %.3g > %.3g", f, d, amp, k, c, x[k*d+c], got[c], e, bound(f, mn, mx))
						}
						if mn == mx && got[c] != FromFloat16(ToFloat16(mn)) {
							t.Fatalf("%+v: constant channel %v -> %v", f, mn, got[c])
						}
					}
				}
				vc := make([]byte, rb)
				vp := make([]uint16, 2*f.ValueGroups(d))
				for k := 0; k < n; k++ {
					row := x[k*d : (k+1)*d]
					f.QuantizeValue(vc, vp, row)
					f.DequantizeValue(got, vc, vp)
					for c := range row {
						g := c / f.Group
						grp := row[g*f.Group : min(d, (g+1)*f.Group)]
						mn, mx := grp[0], grp[0]
						for _, v := range grp {
							mn, mx = min(mn, v), max(mx, v)
						}
						if e := math.Abs(float64(got[c] - row[c])); e > bound(f, mn, mx) {
							t.Fatalf("%+v d %d amp %v: value [%d][%d] %v -> %v, error %.3g > %.3g", f, d, amp, k, c, row[c], got[c], e, bound(f, mn, mx))
						}
						if q := f.Code(vc, c); got[c] != Dequant(q, FromFloat16(vp[2*g]), FromFloat16(vp[2*g+1])) {
							t.Fatalf("%+v: value paths differ", f)
						}
					}
				}
			}
		}
	}
}

// TestBytes checks the byte formula of docs/policies.md §10 on hand-counted cases.
func TestBytes(t *testing.T) {
	for _, c := range []struct {
		f                                   Format
		capacity, layers, kvh, d, elemBytes int
		want                                int64
	}{
		// The shipped model (4 layers, 2 KV heads, d 32) at capacity 1016, 4 bits, group 32: per layer and head
		// 31 key groups x 32 rows x 16 B + 31 x 32 x 4 B + 32 staged keys x 32 x 4 B + 1016 x 16 B + 1016 x 1 x 4 B.
		{Format{4, 32}, 1016, 4, 2, 32, 4, 8 * (31*32*16 + 31*32*4 + 32*32*4 + 1016*16 + 1016*4)},
		{Format{8, 32}, 1016, 4, 2, 32, 4, 8 * (31*32*32 + 31*32*4 + 32*32*4 + 1016*32 + 1016*4)},
		// Two value groups of 32 at d 64; 2 bits: 16 B a row.
		{Format{2, 32}, 64, 1, 1, 64, 2, 2*32*16 + 2*64*4 + 32*64*2 + 64*16 + 64*2*4},
		// A capacity below the group: no key group is ever quantized; every key stays in full precision.
		{Format{4, 32}, 10, 1, 1, 16, 4, 0 + 10*16*4 + 10*8 + 10*4},
		// Odd width: 3 channels at 4 bits take 2 bytes; group 2 -> 2 value groups.
		{Format{4, 2}, 5, 1, 1, 3, 4, 2*2*2 + 2*3*4 + 2*3*4 + 5*2 + 5*2*4},
	} {
		if got := c.f.Bytes(c.capacity, c.layers, c.kvh, c.d, c.elemBytes); got != c.want {
			t.Errorf("%+v capacity %d: %d bytes, want %d", c.f, c.capacity, got, c.want)
		}
	}
}

// quantVectors is testdata/vectors.json, written by tools/policies/reference.py --vectors: float32 inputs and
// the codes and float16 parameters the Python arithmetic gives them.
type quantVectors struct {
	Cases []struct {
		Bits, Group, D int
		Keys           struct {
			X     []float64 `json:"x"` // n x d, row major
			Codes [][]int   `json:"codes"`
			Par   []int     `json:"par"`
			Deq   []float64 `json:"deq"`
		} `json:"keys"`
		Values struct {
			X     []float64 `json:"x"` // one row of d
			Codes []int     `json:"codes"`
			Par   []int     `json:"par"`
			Deq   []float64 `json:"deq"`
		} `json:"values"`
	} `json:"cases"`
}

// TestReferenceVectors: the Go arithmetic gives the codes, float16 parameters and dequantized values of the
// Python reference bit for bit.
func TestReferenceVectors(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v quantVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) < 6 {
		t.Fatalf("%d cases", len(v.Cases))
	}
	f32 := func(x []float64) []float32 {
		out := make([]float32, len(x))
		for i, a := range x {
			out[i] = float32(a)
			if float64(out[i]) != a {
				t.Fatalf("input %v is not a float32", a)
			}
		}
		return out
	}
	for ci, c := range v.Cases {
		f := Format{c.Bits, c.Group}
		d := c.D
		x := f32(c.Keys.X)
		n := len(x) / d
		rb := f.RowBytes(d)
		codes := make([]byte, n*rb)
		par := make([]uint16, 2*d)
		f.QuantizeKeys(codes, rb, par, x, d, n, d)
		sc, zr := make([]float32, d), make([]float32, d)
		Widen(sc, zr, par)
		row := make([]float32, d)
		for k := 0; k < n; k++ {
			f.DequantizeKey(row, codes[k*rb:], sc, zr)
			for i := 0; i < d; i++ {
				if int(f.Code(codes[k*rb:], i)) != c.Keys.Codes[k][i] {
					t.Fatalf("case %d %+v: key code [%d][%d] = %d, reference %d", ci, f, k, i, f.Code(codes[k*rb:], i), c.Keys.Codes[k][i])
				}
				if float64(row[i]) != c.Keys.Deq[k*d+i] {
					t.Fatalf("case %d %+v: key [%d][%d] dequantizes to %v, reference %v", ci, f, k, i, row[i], c.Keys.Deq[k*d+i])
				}
			}
		}
		for i, p := range par {
			if int(p) != c.Keys.Par[i] {
				t.Fatalf("case %d %+v: key parameter %d = %#04x, reference %#04x", ci, f, i, p, c.Keys.Par[i])
			}
		}
		vx := f32(c.Values.X)
		vc := make([]byte, rb)
		vp := make([]uint16, 2*f.ValueGroups(d))
		f.QuantizeValue(vc, vp, vx)
		f.DequantizeValue(row, vc, vp)
		for i := 0; i < d; i++ {
			if int(f.Code(vc, i)) != c.Values.Codes[i] || float64(row[i]) != c.Values.Deq[i] {
				t.Fatalf("case %d %+v: value %d: code %d -> %v, reference %d -> %v", ci, f, i, f.Code(vc, i), row[i], c.Values.Codes[i], c.Values.Deq[i])
			}
		}
		for i, p := range vp {
			if int(p) != c.Values.Par[i] {
				t.Fatalf("case %d %+v: value parameter %d = %#04x, reference %#04x", ci, f, i, p, c.Values.Par[i])
			}
		}
	}
}

// TestVectorsFromReference: tools/policies/reference.py --vectors still writes testdata/vectors.json byte for byte,
// so that the Python arithmetic the engine fixtures come from is the one TestReferenceVectors checks.
func TestVectorsFromReference(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	out, err := exec.Command(py, filepath.Join("..", "..", "tools", "policies", "reference.py"), "--vectors").Output()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Error("reference.py --vectors differs from testdata/vectors.json (regenerate it if the change is intended)")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		f  Format
		ok bool
	}{{Format{8, 32}, true}, {Format{4, 1}, true}, {Format{2, MaxGroup}, true}, {Format{3, 32}, false}, {Format{16, 32}, false},
		{Format{4, 0}, false}, {Format{4, MaxGroup + 1}, false}} {
		if err := c.f.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.f, err)
		}
	}
}
