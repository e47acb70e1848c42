package ruler

import (
	"context"
	"testing"
)

func TestScore(t *testing.T) {
	for _, c := range []struct {
		name   string
		fam    Family
		output string
		refs   []string
		score  float64
	}{
		{"all found", FamilyNIAH, " 1234567 and 7654321.", []string{"1234567", "7654321"}, 1},
		{"half found", FamilyNIAH, "1234567", []string{"1234567", "7654321"}, 0.5},
		{"case-insensitive substring", FamilyCWE, "APPLE-pie, Banana", []string{"apple", "banana"}, 1},
		{"substring counts inside a longer number", FamilyNIAH, "12345678", []string{"1234567"}, 1},
		{"control characters become newlines", FamilyVT, "\x00ABCDE\x01FGHIJ\t", []string{"ABCDE\nFGHIJ"}, 1},
		{"qa: any reference", FamilyQA, "It ends in the Mediterranean.", []string{"Mediterranean Sea", "Mediterranean"}, 1},
		{"qa: none", FamilyQA, "Atlantic", []string{"Mediterranean Sea"}, 0},
		{"empty reference matches", FamilyQA, "x", []string{""}, 1},
		{"no references", FamilyNIAH, "x", nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := Score(c.fam, c.output, c.refs)
			if g.Score != c.score || g.Correct != (c.score == 1) {
				t.Errorf("Score = %+v, want %v", g, c.score)
			}
		})
	}
}

func TestPostprocess(t *testing.T) {
	if got := Postprocess("  \x1fa\x02b \n"); got != "a\nb" {
		t.Errorf("Postprocess = %q", got)
	}
}

func TestParseRowAndGrade(t *testing.T) {
	b, err := New(eval0())
	if err != nil {
		t.Fatal(err)
	}
	it, err := b.ParseRow([]byte(`{"index": 7, "task": "qa_2", "outputs": ["yes"], "pred": "ignored", "output": "Yes."}`))
	if err != nil {
		t.Fatal(err)
	}
	if it.ID != "qa_2/0/007" {
		t.Errorf("id %q", it.ID)
	}
	g, err := b.Grade(context.Background(), it, "Yes.")
	if err != nil || g.Score != 1 {
		t.Errorf("grade %+v %v", g, err)
	}
	for _, bad := range []string{
		`{"index": 1, "outputs": ["a"]}`,
		`{"index": 1, "task": "nope", "outputs": ["a"]}`,
		`{"task": "vt", "outputs": ["a"]}`,
		`{"index": 1, "task": "vt"}`,
		`{"index": 1, "task": "vt", "outputs": [null]}`,
		`{"index": 1, "task": "vt", "outputs": "a"}`,
		`[1]`,
	} {
		if _, err := b.ParseRow([]byte(bad)); err == nil {
			t.Errorf("ParseRow(%s) accepted", bad)
		}
	}
}

func FuzzParseRow(f *testing.F) {
	b, _ := New(eval0())
	f.Add([]byte(`{"index": 7, "task": "qa_2", "outputs": ["yes"], "output": "Yes."}`))
	f.Add([]byte(`{"index": 1.5e3, "task": "vt", "outputs": []}`))
	f.Add([]byte(`{"index": "x"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		it, err := b.ParseRow(raw)
		if err != nil {
			return
		}
		if _, err := b.Grade(context.Background(), it, string(raw)); err != nil {
			t.Fatalf("grade after a parsed row: %v", err)
		}
	})
}

func FuzzParsePrepared(f *testing.F) {
	f.Add([]byte(`{"index": 3, "input": "a", "outputs": ["b"], "length": 9, "length_w_model_temp": 9, "answer_prefix": " A", "token_position_answer": 1}`))
	f.Add([]byte(`{"index": 0, "input": "", "outputs": []}`))
	f.Add([]byte(`{"outputs": [null]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := ParsePrepared(raw)
		if err != nil {
			return
		}
		if r.Outputs == nil && len(r.Outputs) != 0 {
			t.Fatal("nil outputs")
		}
	})
}
