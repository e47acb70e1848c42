package engine

import (
	"errors"
	"testing"

	"github.com/snapeval/snapeval/compress"
)

func TestSynthetic(t *testing.T) {
	m, _ := loadFixture(t, "llama-gqa")
	c := &m.Cfg
	for _, tc := range []struct {
		spec      string
		ctx, live int
	}{{"full", 300, 300}, {"snapstream:budget=64", 300, 64}, {"streaming:sinks=4,recent=28", 20, 20},
		{"h2o:budget=64", 300, 64}, {"tova:budget=64", 30, 30}, {"pyramidkv:budget=64", 300, 32 + 63}, {"adakv:base=snapstream,budget=64", 300, 64}} {
		t.Run(tc.spec, func(t *testing.T) {
			y, err := NewSynthetic(m, Options{Threads: 2}, 3, tc.ctx, 4, compress.MustParse(tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			defer y.Close()
			if got := y.LiveSlots(); got != tc.live {
				t.Errorf("live slots = %d, want %d", got, tc.live)
			}
			if want := compress.KVBytes(y.Plan().Capacity, c.Layers, c.KVHeads, c.HeadDim, 4); y.KVBytes() != want {
				t.Errorf("KVBytes = %d, want %d", y.KVBytes(), want)
			}
			for i := 0; i < 4; i++ {
				if err := y.Step(); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			if err := y.Step(); !errors.Is(err, ErrNoRoom) {
				t.Errorf("step past the room: err = %v, want ErrNoRoom", err)
			}
		})
	}
	if _, err := NewSynthetic(m, Options{}, 0, 10, 1, compress.MustParse("full")); err == nil {
		t.Error("n = 0 accepted")
	}
}
