package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/sandbox"
)

func TestRunGradeCommand(t *testing.T) {
	in := filepath.Join("..", "..", "datasets", "regrade", "testdata", "aime_outputs.jsonl")
	out := filepath.Join(t.TempDir(), "graded.jsonl")
	var stdout, stderr bytes.Buffer
	err := runGrade(context.Background(), &gradeOptions{Bench: "aime24", Input: in, Out: out}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if n := bytes.Count(b, []byte("\n")); n != 3 || !strings.Contains(string(b), `"id":"2024-I-1","extracted":"204","correct":true`) {
		t.Fatalf("output:\n%s", b)
	}
	if !strings.Contains(stderr.String(), "3 graded, 1 correct (33.3%)") {
		t.Fatalf("stderr %q", stderr.String())
	}
	for _, o := range []*gradeOptions{
		{Bench: "aime24"},
		{Bench: "nope", Input: in},
		{Bench: "aime24", Input: in, Options: []string{"grader"}},
		{Bench: "aime24", Input: in, Options: []string{"grader=unknown"}},
	} {
		if err := runGrade(context.Background(), o, &stdout, &stderr); dataExitCode(err) != exitUsage {
			t.Errorf("%+v: err %v, want a usage error", o, err)
		}
	}
}

// TestRunGradeClosesSandbox is issue 18's item 7: grading LiveCodeBench outputs must release the sandbox (its
// uids, cgroups and directories) before runGrade returns.
func TestRunGradeClosesSandbox(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	rows, err := os.ReadFile(filepath.Join("..", "..", "eval", "livecodebench", "testdata", "rows.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var row map[string]any
	if err := json.Unmarshal(bytes.SplitN(rows, []byte("\n"), 2)[0], &row); err != nil {
		t.Fatal(err)
	}
	row["output"] = "```python\nprint('YES')\n```"
	line, _ := json.Marshal(row)
	in := filepath.Join(t.TempDir(), "outputs.jsonl")
	os.WriteFile(in, append(line, '\n'), 0o644)
	before := sandbox.Open()
	var stdout, stderr bytes.Buffer
	if err := runGrade(context.Background(), &gradeOptions{Bench: "livecodebench", Input: in}, &stdout, &stderr); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"verdict":"wrong_answer"`) {
		t.Errorf("graded %s", stdout.String())
	}
	if n := sandbox.Open(); n != before {
		t.Errorf("%d sandboxes open after runGrade returned, %d before", n, before)
	}
	// Stopped (Ctrl-C): exit 3, and the sandbox closed all the same.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = runGrade(ctx, &gradeOptions{Bench: "livecodebench", Input: in}, &stdout, &stderr)
	if dataExitCode(err) != exitIncomplete {
		t.Errorf("stopped grade: %v, want exit %d", err, exitIncomplete)
	}
	if n := sandbox.Open(); n != before {
		t.Errorf("%d sandboxes open after a stopped runGrade, %d before", n, before)
	}
}

func TestRunDataCommands(t *testing.T) {
	dir := t.TempDir()
	data := []byte(`[{"a":1}]`)
	lock := `{"version":1,"datasets":[{"name":"toy","repo":"o/toy","revision":"0123456789abcdef0123456789abcdef01234567","license":"mit",
"files":[{"path":"d.json","size":9,"sha256":"` + sha256hex(data) + `","rows":1,"format":"json"}]}]}`
	lp := filepath.Join(dir, "datasets.lock")
	os.WriteFile(lp, []byte(lock), 0o644)
	o := &dataOptions{Lock: lp, Cache: filepath.Join(dir, "cache")}
	var out bytes.Buffer
	if err := runDataList(o, &out); err != nil || !strings.Contains(out.String(), "toy") || !strings.Contains(out.String(), "missing") {
		t.Fatalf("list: %v\n%s", err, out.String())
	}
	if err := runDataVerify(o, []string{"toy"}, &out); dataExitCode(err) != exitGateFailed {
		t.Fatalf("verify of a missing named dataset: %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "cache", "toy"), 0o755)
	os.WriteFile(filepath.Join(dir, "cache", "toy", "d.json"), data, 0o644)
	out.Reset()
	if err := runDataVerify(o, nil, &out); err != nil || !strings.Contains(out.String(), " ok ") {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
}

func sha256hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// dataExitCode is the exit code execute() would give err.
func dataExitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitUsage
}
