package serve

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapeval/snapeval/backends"
)

// BenchmarkServe measures requests/s and p50/p99 latency of non-streamed chat completions over loopback at
// 1, 8 and 32 concurrent clients, against the word test backend and the cpu backend on the qwen2-tied
// conformance checkpoint (16 new tokens, greedy). Run: go test -run '^$' -bench Serve -benchtime 2000x ./serve/
func BenchmarkServe(b *testing.B) {
	type target struct {
		name string
		be   func(b *testing.B) backends.Backend
		body string
	}
	targets := []target{
		{"words", func(*testing.B) backends.Backend { return &wordBackend{} },
			`{"messages":[{"role":"user","content":"alpha beta gamma delta"}],"max_tokens":16,"temperature":0}`},
		{"cpu-qwen2-tied", func(b *testing.B) backends.Backend { return openCPU(b) },
			`{"messages":[{"role":"user","content":"Repeat the key 4711, then count the windows in the cache."}],"max_tokens":16,"temperature":0}`},
	}
	for _, tg := range targets {
		for _, c := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/c=%d", tg.name, c), func(b *testing.B) {
				s, err := New(Config{Backend: tg.be(b), Model: "m", MaxConcurrent: 64, Log: log.New(io.Discard, "", 0)})
				if err != nil {
					b.Fatal(err)
				}
				srv := httptest.NewServer(s.Handler())
				defer srv.Close()
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
				defer client.CloseIdleConnections()
				lat := make([]time.Duration, b.N)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for range c {
					wg.Go(func() {
						for {
							i := int(next.Add(1)) - 1
							if i >= b.N {
								return
							}
							t0 := time.Now()
							resp, err := client.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(tg.body))
							if err != nil {
								b.Error(err)
								return
							}
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode != 200 {
								b.Errorf("status %d", resp.StatusCode)
								return
							}
							lat[i] = time.Since(t0)
						}
					})
				}
				wg.Wait()
				el := time.Since(start)
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
				b.ReportMetric(float64(lat[b.N/2].Microseconds())/1000, "p50_ms")
				b.ReportMetric(float64(lat[min(b.N-1, b.N*99/100)].Microseconds())/1000, "p99_ms")
			})
		}
	}
}
