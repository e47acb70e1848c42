package stats_test

import (
	"fmt"

	"github.com/snapeval/snapeval/stats"
)

func ExampleMcNemarExact() {
	// 1 pair the baseline got right and the policy wrong, 9 the other way round
	fmt.Printf("%.6f\n", stats.McNemarExact(1, 9))
	// Output: 0.021484
}

func ExamplePassAtK() {
	// 16 samples of one problem, 4 correct: the chance that at least one of 8 drawn samples is correct
	p, _ := stats.PassAtK(16, 4, 8)
	fmt.Printf("%.4f\n", p)
	// Output: 0.9615
}

func ExampleCompare() {
	base := []stats.Obs{{Item: "a", Score: 1, Correct: true}, {Item: "b", Score: 1, Correct: true}, {Item: "c"}}
	pol := []stats.Obs{{Item: "a", Score: 1, Correct: true}, {Item: "b"}, {Item: "c"}}
	c := stats.Compare(base, pol, stats.Options{})
	fmt.Printf("items %d, delta %+.1f pp, discordant %d/%d, p %.2f\n", c.Items, 100*c.Delta, c.BaseWins, c.PolicyWins, c.P)
	// Output: items 3, delta -33.3 pp, discordant 1/0, p 1.00
}
