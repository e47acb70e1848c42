package session

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		"https://api.example.com/v1":       "https://api.example.com/v1",
		"https://u:sk-secret@host/v1":      "https://REDACTED@host/v1",
		"http://host/v1?api_key=sk-secret": "http://host/v1?REDACTED",
		"http://host/v1?api_key=sk-s#frag": "http://host/v1?REDACTED#frag",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOptionsFor(t *testing.T) {
	opts := map[string]string{"n": "2", "longbench-v2.max_len": "1000", "aime24.grader": "qwen"}
	if got := optionsFor(opts, "longbench-v2"); !reflect.DeepEqual(got, map[string]string{"n": "2", "max_len": "1000"}) {
		t.Errorf("longbench-v2 options %v", got)
	}
	if got := optionsFor(opts, "synth"); !reflect.DeepEqual(got, map[string]string{"n": "2"}) {
		t.Errorf("synth options %v", got)
	}
	if optionsFor(nil, "synth") != nil {
		t.Error("no options should stay nil")
	}
}

func TestFreshRunDir(t *testing.T) {
	base := filepath.Join(t.TempDir(), "run-x")
	if got := freshRunDir(base); got != base {
		t.Fatal(got)
	}
	os.Mkdir(base, 0o755)
	os.Mkdir(base+"-2", 0o755)
	if got := freshRunDir(base); got != base+"-3" {
		t.Fatal(got)
	}
}
