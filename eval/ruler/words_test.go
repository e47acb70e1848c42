package ruler

import "testing"

// The counts and sample entries were printed by CPython 3.11 from the same lists:
// len(sorted(set(f"{a}-{n}" ...))) == 6171620, len(sorted(set(nouns+adjs+verbs))) == 8166.
func TestWordLists(t *testing.T) {
	k := niahWords()
	if k.len() != 6171620 {
		t.Errorf("niah words: %d, want 6171620", k.len())
	}
	for i, want := range map[int]string{0: "Early-ATM", 1000000: "courageous-ikebana", k.len() - 1: "zonked-zucchini"} {
		if got := k.at(i); got != want {
			t.Errorf("words[%d] = %q, CPython %q", i, got, want)
		}
	}
	for i := 1; i < k.len(); i += 997 {
		if !(k.at(i-1) < k.at(i)) {
			t.Fatalf("niah words not strictly sorted at %d: %q >= %q", i, k.at(i-1), k.at(i))
		}
	}
	if got := len(cweWords()); got != 8166 {
		t.Errorf("cwe pool: %d, want 8166", got)
	}
}
