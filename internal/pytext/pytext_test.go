package pytext

import (
	"slices"
	"testing"
)

// The expectations are Python 3's own results.
func TestPythonSemantics(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"lower dotted I", Lower("İx"), "i̇x"},
		{"lower final sigma", Lower("ΣΟΦΟΣ ΣΟΦΟΣ."), "σοφος σοφος."},
		{"lower lone sigma", Lower("Σ"), "σ"},
		{"lower ascii", Lower("AbC"), "abc"},
		{"upper", Upper("gaggi é"), "GAGGI É"},
		{"strip", Strip("\u3000 x\u00a0\n"), "x"},
		{"normalize", NormalizeAnswer("The  Answer: an Apple, théa!"), "answer apple théa"},
		{"normalize underscore word", NormalizeAnswer("a_b an_the"), "ab anthe"},
		{"normalize zh", NormalizeZhAnswer("杭州。 Hang Zhou！"), "杭州hangzhou"},
		{"first line", FirstLine("\n\nfirst\nsecond"), "first"},
		{"digits", ASCIIDigits("٣4𝟗"), "349"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if got := Split(" a\u2003b\x1cc "); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Split: %q", got)
	}
	if got := DigitRuns("a12b٣4c"); !slices.Equal(got, []string{"12", "٣4"}) {
		t.Errorf("DigitRuns: %q", got)
	}
	if got := F1([]string{"a", "a", "b"}, []string{"a", "c"}); got != 0.4 {
		t.Errorf("F1 = %v", got)
	}
	if F1(nil, []string{"a"}) != 0 || F1([]string{"x"}, []string{"y"}) != 0 {
		t.Error("F1 without overlap must be 0")
	}
}
