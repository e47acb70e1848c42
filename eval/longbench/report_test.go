package longbench

import (
	"testing"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/llm"
)

func rec(policy, tags string, correct bool, extracted, errKind string) eval.Record {
	return eval.Record{Bench: Name, Policy: policy, Tags: tags, Correct: correct, Extracted: extracted, ErrorKind: errKind}
}

func TestSummarize(t *testing.T) {
	const eS, hL, hM = "difficulty=easy;domain=x;length=short", "difficulty=hard;domain=x;length=long", "difficulty=hard;domain=y;length=medium"
	recs := []eval.Record{
		rec("full", eS, true, "A", ""),
		rec("full", eS, false, "", ""), // no answer
		rec("full", hL, false, "B", ""),
		rec("full", hM, true, "C", ""),
		rec("full", hM, false, "", llm.ErrKindBackend), // failed call: never in the official denominator
		rec("snapstream:budget=4096", eS, false, "B", ""),
		{Bench: "aime24", Policy: "full", Correct: true},
	}
	s := Summarize(recs, "full", false)
	if s.Overall.Graded != 4 || s.Overall.Errors != 1 || s.Overall.Correct != 2 || s.Overall.NoAnswer != 1 {
		t.Fatalf("%+v", s.Overall)
	}
	if s.Overall.Acc != 50 || s.Overall.AccAll != 40 {
		t.Fatalf("acc %v accAll %v", s.Overall.Acc, s.Overall.AccAll)
	}
	if s.ByDifficulty["easy"].Acc != 50 || s.ByDifficulty["hard"].Acc != 50 || s.ByLength["long"].Acc != 0 || s.ByLength["medium"].Acc != 100 {
		t.Fatalf("%+v %+v", s.ByDifficulty, s.ByLength)
	}
	c := Summarize(recs, "full", true)
	if c.Overall.Acc != 56.25 || c.ByLength["short"].Acc != 62.5 {
		t.Fatalf("compensated %+v %+v", c.Overall, c.ByLength["short"])
	}
	if got, want := c.Row(), "| full | 56.2 | 62.5 | 50.0 | 62.5 | 100.0 | 0.0 | 4 | 1 |"; got != want {
		t.Fatalf("row\n got %s\nwant %s", got, want)
	}
	all := SummarizeByPolicy(recs, false)
	if len(all) != 2 || all[0].Policy != "full" || all[1].Overall.Graded != 1 {
		t.Fatalf("%+v", all)
	}
}
