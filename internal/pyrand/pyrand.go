// Package pyrand reproduces the random streams of CPython's random module and of NumPy's legacy
// numpy.random.RandomState, bit for bit, so that a Go port of a Python data generator can produce the very items the
// Python script writes for the same seed.
//
// Both libraries run the Mersenne Twister MT19937; they differ in how an integer seed is expanded into its state
// (CPython: init_by_array over the 32-bit words of abs(seed); NumPy's legacy seeding: init_genrand(seed)) and in how
// bounded integers are drawn from it (CPython: rejection on getrandbits(bit_length(n)); NumPy: rejection on the
// smallest covering bit mask). The methods here follow CPython 3.9-3.13 and NumPy 1.17 and later, whose algorithms
// for these calls have not changed in those versions. tools/pyrand/check.py prints the reference values the tests
// compare against.
package pyrand

import "math"

const (
	mtN       = 624
	mtM       = 397
	matrixA   = 0x9908b0df
	upperMask = 0x80000000
	lowerMask = 0x7fffffff
)

// mt is the MT19937 state.
type mt struct {
	state [mtN]uint32
	index int
}

// initGenrand is MT19937's init_genrand (Knuth's multiplier).
func (m *mt) initGenrand(s uint32) {
	m.state[0] = s
	for i := 1; i < mtN; i++ {
		m.state[i] = 1812433253*(m.state[i-1]^(m.state[i-1]>>30)) + uint32(i)
	}
	m.index = mtN
}

// initByArray is MT19937's init_by_array.
func (m *mt) initByArray(key []uint32) {
	m.initGenrand(19650218)
	i, j := 1, 0
	k := max(mtN, len(key))
	for ; k > 0; k-- {
		m.state[i] = (m.state[i] ^ ((m.state[i-1] ^ (m.state[i-1] >> 30)) * 1664525)) + key[j] + uint32(j)
		i++
		j++
		if i >= mtN {
			m.state[0] = m.state[mtN-1]
			i = 1
		}
		if j >= len(key) {
			j = 0
		}
	}
	for k = mtN - 1; k > 0; k-- {
		m.state[i] = (m.state[i] ^ ((m.state[i-1] ^ (m.state[i-1] >> 30)) * 1566083941)) - uint32(i)
		i++
		if i >= mtN {
			m.state[0] = m.state[mtN-1]
			i = 1
		}
	}
	m.state[0] = 0x80000000
	m.index = mtN
}

// uint32 is genrand_uint32: the next tempered 32-bit output.
func (m *mt) uint32() uint32 {
	if m.index >= mtN {
		for k := range mtN {
			y := (m.state[k] & upperMask) | (m.state[(k+1)%mtN] & lowerMask)
			v := m.state[(k+mtM)%mtN] ^ (y >> 1)
			if y&1 != 0 {
				v ^= matrixA
			}
			m.state[k] = v
		}
		m.index = 0
	}
	y := m.state[m.index]
	m.index++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// random53 is genrand_res53: a float64 in [0, 1) from two outputs (CPython's random() and NumPy's random_sample()).
func (m *mt) random53() float64 {
	a := m.uint32() >> 5
	b := m.uint32() >> 6
	return (float64(a)*67108864.0 + float64(b)) * (1.0 / 9007199254740992.0)
}

// Random is CPython's random.Random.
type Random struct{ m mt }

// New returns random.Random(seed) for a non-negative integer seed (CPython seeds with abs(seed)).
func New(seed int64) *Random {
	r := &Random{}
	r.Seed(seed)
	return r
}

// Seed is random.seed(seed) for an int: init_by_array over the 32-bit words of abs(seed), least significant first
// (one zero word for 0).
func (r *Random) Seed(seed int64) {
	u := uint64(seed)
	if seed < 0 {
		u = uint64(-seed)
	}
	key := []uint32{uint32(u)}
	if u>>32 != 0 {
		key = append(key, uint32(u>>32))
	}
	r.m.initByArray(key)
}

// Float64 is random.random().
func (r *Random) Float64() float64 { return r.m.random53() }

// Bits is random.getrandbits(k) for 0 <= k <= 64.
func (r *Random) Bits(k int) uint64 {
	if k <= 0 {
		return 0
	}
	if k <= 32 {
		return uint64(r.m.uint32() >> (32 - k))
	}
	lo := uint64(r.m.uint32())
	hi := uint64(r.m.uint32() >> (64 - k))
	return lo | hi<<32
}

// Bits128 is random.getrandbits(128) as (high, low) 64-bit halves.
func (r *Random) Bits128() (hi, lo uint64) {
	w := [4]uint64{}
	for i := range w {
		w[i] = uint64(r.m.uint32())
	}
	return w[2] | w[3]<<32, w[0] | w[1]<<32
}

// Below is random._randbelow(n) (the getrandbits variant): an int in [0, n); 0 when n <= 0.
func (r *Random) Below(n int) int {
	if n <= 0 {
		return 0
	}
	k := bitLength(uint64(n))
	v := r.Bits(k)
	for v >= uint64(n) {
		v = r.Bits(k)
	}
	return int(v)
}

func bitLength(n uint64) int {
	k := 0
	for n != 0 {
		k++
		n >>= 1
	}
	return k
}

// IntN is random.randint(a, b): an int in [a, b].
func (r *Random) IntN(a, b int) int { return a + r.Below(b-a+1) }

// Choice is the index random.choice(seq) takes for a sequence of length n.
func (r *Random) Choice(n int) int { return r.Below(n) }

// ChoicesIndex is the index one draw of random.choices(seq) (no weights) takes: floor(random() * n).
func (r *Random) ChoicesIndex(n int) int { return int(math.Floor(r.Float64() * float64(n))) }

// Shuffle is random.shuffle(x) for a sequence of length n, swapping through swap.
func (r *Random) Shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		j := r.Below(i + 1)
		swap(i, j)
	}
}

// Sample returns the indices random.sample(population, k) picks from a population of n (k <= n), in order. It
// follows CPython's two strategies: a partial shuffle of a pool when n is small relative to k, else rejection of
// repeats.
func (r *Random) Sample(n, k int) []int {
	if k < 0 || k > n {
		panic("pyrand: sample larger than population or is negative")
	}
	out := make([]int, k)
	setsize := 21
	if k > 5 {
		setsize += int(math.Pow(4, math.Ceil(math.Log(float64(k*3))/math.Log(4))))
	}
	if n <= setsize {
		pool := make([]int, n)
		for i := range pool {
			pool[i] = i
		}
		for i := range k {
			j := r.Below(n - i)
			out[i] = pool[j]
			pool[j] = pool[n-i-1]
		}
		return out
	}
	selected := make(map[int]struct{}, k)
	for i := range k {
		j := r.Below(n)
		for {
			if _, dup := selected[j]; !dup {
				break
			}
			j = r.Below(n)
		}
		selected[j] = struct{}{}
		out[i] = j
	}
	return out
}

// NumPy is numpy.random.RandomState (the legacy generator behind numpy.random.seed and numpy.random.randint).
type NumPy struct{ m mt }

// NewNumPy returns the state numpy.random.seed(seed) sets for 0 <= seed < 2**32 (init_genrand).
func NewNumPy(seed uint32) *NumPy {
	n := &NumPy{}
	n.m.initGenrand(seed)
	return n
}

// Float64 is numpy.random.random_sample().
func (n *NumPy) Float64() float64 { return n.m.random53() }

// IntN is numpy.random.randint(low, high) for a scalar draw with high - low - 1 < 2**32 - 1: an int in
// [low, high), drawn by masked rejection on 32-bit outputs as the legacy generator does.
func (n *NumPy) IntN(low, high int) int {
	rng := uint64(high - low - 1)
	if rng == 0 {
		return low
	}
	if rng >= 0xffffffff {
		panic("pyrand: numpy randint range beyond 32 bits is not implemented")
	}
	mask := rng
	mask |= mask >> 1
	mask |= mask >> 2
	mask |= mask >> 4
	mask |= mask >> 8
	mask |= mask >> 16
	for {
		v := uint64(n.m.uint32()) & mask
		if v <= rng {
			return low + int(v)
		}
	}
}

// UUID4 is str(uuid.UUID(int=x, version=4)) for x = hi<<64 | lo: the variant and version bits are forced, the rest
// kept, and the 128 bits written as 8-4-4-4-12 lower-case hex digits.
func UUID4(hi, lo uint64) string {
	lo = lo&^(0xc000<<48) | 0x8000<<48
	hi = hi&^(0xf000) | 4<<12
	const digits = "0123456789abcdef"
	var b [36]byte
	p := 0
	for i := range 32 {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b[p] = '-'
			p++
		}
		var nib uint64
		if i < 16 {
			nib = hi >> (60 - 4*i) & 0xf
		} else {
			nib = lo >> (60 - 4*(i-16)) & 0xf
		}
		b[p] = digits[nib]
		p++
	}
	return string(b[:])
}
