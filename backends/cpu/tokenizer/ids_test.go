package tokenizer

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseIDs(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr string
	}{
		{"[1, 2, 3]\n", []int{1, 2, 3}, ""},
		{"1,2 3\n4", []int{1, 2, 3, 4}, ""},
		{" 5 , 6 ,", []int{5, 6}, ""},
		{"", []int{}, ""},
		{"[]", []int{}, ""},
		{`{"ids":[7,8]}` + "\n", []int{7, 8}, ""},
		{`{"text":"x"}`, nil, `without "ids"`},
		{"[1, \"a\"]", nil, "invalid JSON array"},
		{"1 x 3", nil, `item 2: "x" is not an integer`},
	}
	for _, tc := range tests {
		got, err := ParseIDs(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseIDs(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseIDs(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseIDs(f *testing.F) {
	f.Add("[1,2,3]")
	f.Add("1, 2 3")
	f.Add("[")
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := ParseIDs(s)
		trimmed := strings.TrimSpace(s)
		if err == nil && !strings.HasPrefix(trimmed, "[") && !strings.HasPrefix(trimmed, "{") {
			// Re-serialised ids parse back to the same list.
			var parts []string
			for _, id := range ids {
				parts = append(parts, strconv.Itoa(id))
			}
			back, err := ParseIDs(strings.Join(parts, ","))
			if err != nil || !slices.Equal(back, ids) {
				t.Errorf("round trip of %v: %v, %v", ids, back, err)
			}
		}
	})
}
