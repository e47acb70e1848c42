package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/eval"
)

func TestCompareRecords(t *testing.T) {
	rec := func(item, pol, out string, ok bool) eval.Record {
		return eval.Record{Bench: "ruler", ItemID: item, Policy: pol, Output: out, Correct: ok, FinishReason: "stop", OutputTokens: len(out)}
	}
	a := []eval.Record{rec("i1", "full", "42", true), rec("i2", "full", "7", true), rec("i3", "full", "x", false), rec("i4", "full", "y", false)}
	b := []eval.Record{rec("i1", "full", "42", true), rec("i2", "full", "8", false), rec("i3", "full", "x", false), rec("i5", "full", "z", true)}
	c := compareRecords(a, b)
	if c.Both != 3 || c.Same != 2 || c.OnlyA != 1 || c.OnlyB != 1 || len(c.Diffs) != 1 {
		t.Fatalf("comparison %+v", c)
	}
	if d := c.Diffs[0]; !strings.Contains(d.Key, "i2") || !reflect.DeepEqual(d.Fields, []string{"output", "correct"}) {
		t.Errorf("diff %+v", d)
	}
	if c.AccuracyA["full"] != "2/3" || c.AccuracyB["full"] != "1/3" || c.DiffsByPolicy["full"] != 1 {
		t.Errorf("accuracy %v %v", c.AccuracyA, c.AccuracyB)
	}
}

func TestFirstDivergence(t *testing.T) {
	words := []string{"the", " cat", " sat", " on", " mat"}
	dec := func(ids []int) string {
		var s strings.Builder
		for _, i := range ids {
			s.WriteString(words[i])
		}
		return s.String()
	}
	cases := []struct {
		toks []int
		text string
		want int
	}{
		{[]int{0, 1, 2}, "the cat sat", -1},
		{[]int{0, 1, 2, 3}, "the cat sat", -1}, // A stopped at " sat"
		{[]int{0, 1, 3}, "the cat sat", 2},
		{[]int{1, 2}, "the cat", 0},
		{[]int{0, 4}, "the cat", 1},
	}
	for _, c := range cases {
		if got := firstDivergence(dec, c.toks, c.text); got != c.want {
			t.Errorf("firstDivergence(%v, %q) = %d, want %d", c.toks, c.text, got, c.want)
		}
	}
}
