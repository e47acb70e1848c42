package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/spf13/cobra"
)

func TestParsePromptIDs(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "ids.json")
	obj := filepath.Join(dir, "ref.json")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(list, []byte("[5, 6]"), 0o644)
	os.WriteFile(obj, []byte(`{"prompt_ids": [7]}`), 0o644)
	os.WriteFile(bad, []byte(`{"x": 1}`), 0o644)
	tests := []struct {
		in   string
		want []int
		ok   bool
	}{
		{"1,2, 3", []int{1, 2, 3}, true},
		{"@" + list, []int{5, 6}, true},
		{"@" + obj, []int{7}, true},
		{"@" + bad, nil, false},
		{"1,,2", nil, false},
		{"@" + filepath.Join(dir, "none"), nil, false},
	}
	for _, tc := range tests {
		got, err := parsePromptIDs(tc.in)
		if (err == nil) != tc.ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parsePromptIDs(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestRunInspect(t *testing.T) {
	dir := filepath.Join("..", "..", "backends", "cpu", "testdata", "models", "llama-gqa")
	var out bytes.Buffer
	o := &inspectOptions{Model: dir, PromptIDs: "@" + filepath.Join(dir, "reference.json"), Policy: "streaming:sinks=4,recent=32", MaxNew: 24, Out: &out}
	if err := runInspect(&cobra.Command{}, o); err != nil {
		t.Fatal(err)
	}
	var got struct {
		PromptIDs []int     `json:"prompt_ids"`
		Kept      [][][]int `json:"kept"`
		Greedy    []int     `json:"greedy"`
		Logits    []float32 `json:"logits_last"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			Greedy []int     `json:"greedy"`
			Kept   [][][]int `json:"kept"`
		} `json:"cases"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "reference.json"))
	json.Unmarshal(b, &ref)
	c := ref.Cases[3] // streaming sinks=4 recent=32
	if len(got.PromptIDs) != 160 || !reflect.DeepEqual(got.Greedy, c.Greedy) || !reflect.DeepEqual(got.Kept, c.Kept) || len(got.Logits) != 1500 {
		t.Errorf("inspect output differs from the reference: greedy %v", got.Greedy)
	}
	if err := runInspect(&cobra.Command{}, &inspectOptions{Model: dir, Out: &out}); err == nil {
		t.Error("missing prompt accepted")
	}
	if err := runInspect(&cobra.Command{}, &inspectOptions{Backend: "cpu", BackendOpts: []string{"slots"}, Model: dir, PromptIDs: "1", Out: &out}); err == nil {
		t.Error("a bad --backend-opt was accepted")
	}
}
