package model

import (
	"fmt"
	"math"
	"testing"
)

// TestTiledAttentionMatchesPerQuery runs dense prefills of a prompt spanning several key tiles through
// the tiled (online-softmax) attention and the per-query reference, on both kernel paths: the logits
// agree to float rounding, and the tiled result is bit-identical whatever the prefill chunking.
func TestTiledAttentionMatchesPerQuery(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		pool := NewPool(2)
		defer pool.Close()
		for _, name := range fixtures {
			m, ref := loadFixture(t, name)
			ids := make([]int, 0, 5*kTile+7)
			for len(ids) < cap(ids) {
				ids = append(ids, ref.PromptIDs[len(ids)%len(ref.PromptIDs)]+len(ids)%3)
			}
			ws := NewWorkspace(pool)
			flashOff = true
			want, _ := prefillLogits(t, m, ws, ids, len(ids))
			flashOff = false
			var first []float32
			for _, chunk := range []int{len(ids), 37, qTile, 1} {
				got, _ := prefillLogits(t, m, ws, ids, chunk)
				var num, den float64
				for i := range got {
					num = math.Max(num, math.Abs(float64(got[i]-want[i])))
					den = math.Max(den, math.Abs(float64(want[i])))
				}
				if num/den > 1e-5 {
					t.Errorf("%s chunk %d: tiled vs per-query logits differ by %.3g relative", name, chunk, num/den)
				}
				if first == nil {
					first = got
					continue
				}
				for i := range got {
					if got[i] != first[i] {
						t.Fatalf("%s chunk %d: logit %d = %v, %v in one chunk", name, chunk, i, got[i], first[i])
					}
				}
			}
		}
	})
}

// BenchmarkPrefillAttention times the attention of one layer for a dense 2048-token prompt (the last
// 256-token chunk), tiled and per query.
func BenchmarkPrefillAttention(b *testing.B) {
	m, _ := loadFixture(b, "llama-gqa")
	pool := NewPool(0)
	defer pool.Close()
	const P, chunk = 2048, 256
	ids := make([]int, P)
	for i := range ids {
		ids[i] = (i * 7) % m.Cfg.Vocab
	}
	ws := NewWorkspace(pool)
	seq := m.NewSeq(P)
	for p := 0; p < P-chunk; p += chunk {
		if err := m.Forward(ws, []Segment{{Seq: seq, Tokens: ids[p : p+chunk], Pos: p}}); err != nil {
			b.Fatal(err)
		}
	}
	for _, off := range []bool{false, true} {
		b.Run(fmt.Sprintf("perquery=%v", off), func(b *testing.B) {
			flashOff = off
			defer func() { flashOff = false }()
			for i := 0; i < b.N; i++ {
				seg := Segment{Seq: seq, Tokens: ids[P-chunk:], Pos: P - chunk}
				if err := m.Forward(ws, []Segment{seg}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
