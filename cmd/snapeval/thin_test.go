package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The commands are options structs and run functions: tests call them in-process with their own IO.

func TestRunSynthInProcess(t *testing.T) {
	var out, log bytes.Buffer
	o := &synthOptions{Seed: 1, N: 1, Lengths: "256", Tasks: "all", Split: "train", Out: "-", CharsPerToken: 4}
	if err := runSynth(o, &out, &log); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(out.String(), "\n"); lines == 0 || !strings.Contains(log.String(), "wrote") {
		t.Errorf("%d lines, log %q", lines, log.String())
	}
	file := filepath.Join(t.TempDir(), "train.jsonl")
	o.Out = file
	if err := runSynth(o, &bytes.Buffer{}, &log); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); !bytes.Equal(b, out.Bytes()) {
		t.Error("file and stdout differ")
	}
	o.Tasks = "nope"
	if err := runSynth(o, &out, &log); exitCode(err) != exitUsage {
		t.Errorf("bad --tasks: %v", err)
	}
}

func TestRunBenchUsage(t *testing.T) {
	for name, o := range map[string]*benchOptions{
		"model and shape": {Model: "x", ShapeSet: true, Weights: "bf16"},
		"negative":        {Threads: -1, Weights: "bf16"},
		"weights":         {Weights: "fp4"},
		"unknown shape":   {Shape: "gpt-9", Weights: "bf16"},
	} {
		if err := runBench(context.Background(), o, &bytes.Buffer{}, &bytes.Buffer{}); exitCode(err) != exitUsage {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
}

func TestRunTokenizeInProcess(t *testing.T) {
	tok := "../../backends/cpu/tokenizer/testdata/chatml/tokenizer.json"
	if _, err := os.Stat(tok); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	var enc bytes.Buffer
	if err := runTokenize(&tokenizeOptions{File: tok}, strings.NewReader("hello world"), &enc); err != nil {
		t.Fatal(err)
	}
	var ids struct{ IDs []int }
	if err := json.Unmarshal(enc.Bytes(), &ids); err != nil || len(ids.IDs) == 0 {
		t.Fatalf("encode: %q, %v", enc.String(), err)
	}
	var dec bytes.Buffer
	in, _ := json.Marshal(ids.IDs)
	if err := runTokenize(&tokenizeOptions{File: tok, Decode: true}, bytes.NewReader(in), &dec); err != nil {
		t.Fatal(err)
	}
	if dec.String() != "{\"text\":\"hello world\"}\n" {
		t.Errorf("decode: %q", dec.String())
	}
	if err := runTokenize(&tokenizeOptions{File: tok, Decode: true, Special: true}, strings.NewReader("1"), &dec); exitCode(err) != exitUsage {
		t.Errorf("--special with --decode: %v", err)
	}
}
