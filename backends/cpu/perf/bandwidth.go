package perf

import (
	"sync"
	"time"
)

// Bandwidth measures the memory read bandwidth in GB/s: threads goroutines sum disjoint parts of a
// buffer of mib MiB (far larger than the caches) with the widest kernel this build has; the best of
// passes passes counts.
func Bandwidth(mib, threads, passes int) float64 {
	if threads < 1 {
		threads = 1
	}
	x := make([]float32, mib<<18)
	for i := range x {
		x[i] = float32(i & 7)
	}
	best := 0.0
	sums := make([]float32, threads)
	for p := 0; p < passes; p++ {
		var wg sync.WaitGroup
		t0 := time.Now()
		for k := 0; k < threads; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sums[k] = sum(x[k*len(x)/threads : (k+1)*len(x)/threads])
			}()
		}
		wg.Wait()
		gbs := float64(4*len(x)) / time.Since(t0).Seconds() / 1e9
		best = max(best, gbs)
	}
	return best
}

// sumGo is the portable reading kernel (eight independent chains).
func sumGo(x []float32) float32 {
	var a [8]float32
	i := 0
	for ; i+8 <= len(x); i += 8 {
		v := x[i : i+8 : i+8]
		a[0] += v[0]
		a[1] += v[1]
		a[2] += v[2]
		a[3] += v[3]
		a[4] += v[4]
		a[5] += v[5]
		a[6] += v[6]
		a[7] += v[7]
	}
	for ; i < len(x); i++ {
		a[0] += x[i]
	}
	return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7]
}
