package synthetic

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestScore(t *testing.T) {
	tests := []struct {
		name      string
		answers   []string
		output    string
		score     float64
		correct   bool
		extracted string
		verdict   string
	}{
		{"exact", []string{"656430"}, " 656430", 1, true, "656430", VerdictPass},
		{"in sentence", []string{"656430"}, "The number is 656430.", 1, true, "656430", VerdictPass},
		{"glued digit", []string{"65643"}, " 656430", 0, false, "", VerdictWrong},
		{"glued later", []string{"656430"}, "1656430 and 656430", 1, true, "656430", VerdictPass},
		{"partial", []string{"1", "2", "3", "4"}, "4, 2, 9", 0.5, false, "2, 4", VerdictPartial},
		{"case", []string{"QXKLP", "apple"}, "qxklp APPLE", 1, true, "QXKLP, apple", VerdictPass},
		{"word boundary", []string{"art"}, "party art-deco", 1, true, "art", VerdictPass},
		{"inside word", []string{"art"}, "party", 0, false, "", VerdictWrong},
		{"empty", []string{"1"}, "  \n", 0, false, "", VerdictNoAnswer},
		{"no answers", nil, "x", 0, false, "", VerdictWrong},
		{"unicode neighbours", []string{"42"}, "é42é", 0, false, "", VerdictWrong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := Score(tc.answers, tc.output)
			if g.Score != tc.score || g.Correct != tc.correct || g.Extracted != tc.extracted || g.Verdict != tc.verdict {
				t.Errorf("Score = %+v", g)
			}
		})
	}
}

func FuzzScore(f *testing.F) {
	f.Add("656430", "The special magic number is 656430.")
	f.Add("QXKLP BRTMS", "qxklp, brtms")
	f.Add("a", "")
	f.Add("", "\xff\xfe")
	f.Add("12 12", "12")
	f.Fuzz(func(t *testing.T, answers, output string) {
		as := strings.Fields(answers)
		g := Score(as, output)
		if g.Score < 0 || g.Score > 1 {
			t.Fatalf("score %v", g.Score)
		}
		if g.Correct != (len(as) > 0 && g.Score == 1) {
			t.Fatalf("correct %v with score %v", g.Correct, g.Score)
		}
		if g.Extracted != "" {
			for _, e := range strings.Split(g.Extracted, ", ") {
				if !slices.Contains(as, e) {
					t.Fatalf("extracted %q is not an answer", e)
				}
			}
		}
		if utf8.ValidString(output) && len(as) == 1 && strings.Contains(strings.ToLower(output), strings.ToLower(as[0])) == false && g.Score != 0 {
			t.Fatalf("found %q that is not in %q", as[0], output)
		}
	})
}
