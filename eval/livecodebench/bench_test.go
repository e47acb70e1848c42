package livecodebench

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"testing"

	"github.com/snapeval/snapeval/eval"
)

// BenchmarkGradeThroughput grades the real o1-mini program for 1873_A (a correct program: all 5 tests run,
// 1 public + 4 private, each a fresh sandboxed process) with as many programs in flight as the sandbox has slots.
// Reported: programs/s and tests/s.
func BenchmarkGradeThroughput(b *testing.B) {
	raw, err := os.ReadFile("testdata/extract_cases.json")
	if err != nil {
		b.Fatal(err)
	}
	var cases []struct{ Output string }
	if err := json.Unmarshal(raw, &cases); err != nil {
		b.Fatal(err)
	}
	bm, err := New(eval.BenchOptions{Files: []string{"testdata/rows.jsonl"}})
	if err != nil {
		b.Fatal(err)
	}
	defer bm.Close()
	items, err := bm.Items(context.Background(), nil)
	if err != nil {
		b.Fatal(err)
	}
	it := items[0]
	if g, err := bm.Grade(context.Background(), it, cases[0].Output); err != nil || !g.Correct {
		b.Fatalf("warm-up: %+v %v", g, err)
	}
	workers := 64 // more than the sandbox has slots: Grade blocks for a free one, so all slots stay busy
	b.ResetTimer()
	var wg sync.WaitGroup
	next := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if g, err := bm.Grade(context.Background(), it, cases[0].Output); err != nil || !g.Correct {
					b.Errorf("%+v %v", g, err)
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/sec, "programs/s")
	b.ReportMetric(float64(b.N*len(it.Data.(*Problem).Tests))/sec, "tests/s")
}
