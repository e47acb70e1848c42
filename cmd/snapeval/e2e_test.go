package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as the snapeval command in a subprocess (SNAPEVAL_AS_CLI holds its arguments
// as a JSON array), so end-to-end tests can start and kill real snapeval processes without building a binary.
func TestMain(m *testing.M) {
	if args := os.Getenv("SNAPEVAL_AS_CLI"); args != "" {
		var a []string
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			panic(err)
		}
		rootCmd.SetArgs(a)
		os.Exit(execute())
	}
	os.Exit(m.Run())
}

// cli returns a command running snapeval with args in a subprocess.
func cli(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(args)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "SNAPEVAL_AS_CLI="+string(a), "NO_COLOR=1")
	return cmd
}

var e2eRunArgs = []string{"run", "--model", "../../backends/cpu/testdata/models/qwen2-tied", "--bench", "ruler",
	"--bench-opt", "lengths=512", "--bench-opt", "tasks=niah_single,niah_multikey", "--bench-opt", "n=8",
	"--policy", "snapstream:budget=64", "--policy", "streaming:sinks=4,recent=60", "--max-new", "6",
	"--concurrency", "3", "--quiet"}

// TestRunKilledAndResumedEqualsUninterrupted kills `snapeval run` with SIGKILL several times mid-run, resumes it
// with the same command, and checks the records and the report are byte-identical to an uninterrupted run's.
func TestRunKilledAndResumedEqualsUninterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ref := filepath.Join(t.TempDir(), "ref")
	start := time.Now()
	if out, err := cli(t, append(e2eRunArgs, "--out", ref)...).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	whole := time.Since(start)
	refJournal, _ := os.ReadFile(filepath.Join(ref, "records.jsonl"))
	total := strings.Count(string(refJournal), "\n")

	// Kill at growing fractions of the uninterrupted run's duration; the last attempt is never killed.
	dir := filepath.Join(t.TempDir(), "killed")
	kills, midRun, finished := 0, 0, false
	for attempt := 0; attempt <= 8 && !finished; attempt++ {
		cmd := cli(t, append(e2eRunArgs, "--out", dir)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var kill <-chan time.Time
		if attempt < 8 {
			kill = time.After(whole * time.Duration(3+attempt) / 10)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run failed: %v\n%s", err, out.String())
			}
			finished = true
		case <-kill:
			cmd.Process.Kill()
			<-done
			kills++
			j, _ := os.ReadFile(filepath.Join(dir, "records.jsonl"))
			if n := strings.Count(string(j), "\n"); n > 0 && n < total {
				midRun++
			}
		}
	}
	if midRun == 0 {
		t.Fatalf("no kill landed mid-run (%d kills, uninterrupted run %v): the test proves nothing", kills, whole)
	}
	journal, _ := os.ReadFile(filepath.Join(dir, "records.jsonl"))
	t.Logf("killed %d times (%d mid-run); journal holds %d lines", kills, midRun, strings.Count(string(journal), "\n"))
	for _, f := range []string{"records.parquet", "report.md", "report.csv", "report.svg"} {
		a, errA := os.ReadFile(filepath.Join(ref, f))
		b, errB := os.ReadFile(filepath.Join(dir, f))
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v %v", f, errA, errB)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between the uninterrupted and the killed-and-resumed run", f)
		}
	}
}

// TestRunResumeRefusesOtherRun checks a run directory cannot be silently reused for another configuration.
func TestRunResumeRefusesOtherRun(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"run", "--model", "../../backends/cpu/testdata/models/qwen2-tied", "--bench", "ruler",
		"--bench-opt", "lengths=512", "--bench-opt", "tasks=niah_single", "--bench-opt", "n=1", "--max-new", "2", "--quiet", "--out", dir}
	if out, err := cli(t, args...).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := cli(t, append(args, "--seed", "9")...).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitUsage || !strings.Contains(string(out), "holds another run") {
		t.Fatalf("reusing the directory for another run: %v\n%s", err, out)
	}
}

// TestDefaultRunStructure runs the embedded default configuration (shipped model, built-in suite, the default
// policy matrix) at reduced size and checks the report's structure, not its numbers.
func TestDefaultRunStructure(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := filepath.Join(t.TempDir(), "default")
	cmd := cli(t, "run", "--bench-opt", "n=1", "--bench-opt", "lengths=512", "--bench-opt", "tasks=niah_single,vt", "--quiet", "--out", dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("default run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "run directory: "+dir) {
		t.Errorf("stdout does not name the run directory:\n%s", out)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append([]string{"full"}, defaultRunConfig().Policies...) {
		if !strings.Contains(string(md), "| `"+p+"` |") {
			t.Errorf("report.md has no row for policy %s", p)
		}
	}
	for _, want := range []string{"## ruler", "### by task", "### by length", "McNemar"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, f := range []string{"records.parquet", "records.jsonl", "manifest.json", "report.csv", "report.svg", "report.png"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	var m struct {
		Backend    string          `json:"backend_identity"`
		ModelShape json.RawMessage `json:"model_shape"`
	}
	data, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err := json.Unmarshal(data, &m); err != nil || !strings.Contains(m.Backend, "snaptiny") || len(m.ModelShape) == 0 {
		t.Errorf("manifest backend %q shape %s: %v", m.Backend, m.ModelShape, err)
	}
}

// TestOfficialBenchmarksEndToEnd runs LongBench-v2 and AIME24 (small data sets in the real upstream schemas)
// through the runner on the CPU backend, full versus two SnapStream budgets, and checks the official breakdowns.
func TestOfficialBenchmarksEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := filepath.Join(t.TempDir(), "official")
	out, err := cli(t, "run", "--model", "../../backends/cpu/testdata/models/qwen2-tied", "--backend-opt", "chat_style=chatml",
		"--bench", "longbench-v2,aime24", "--data", "longbench-v2=testdata/longbench_small.json",
		"--data", "aime24=testdata/aime_small.jsonl", "--samples", "2", "--max-new", "8",
		"--policy", "snapstream:budget=64", "--policy", "snapstream:budget=128", "--quiet", "--out", dir).Output()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	md := string(out)
	for _, want := range []string{"## longbench-v2", "### by difficulty", "### by length", "## aime24", "pass@2",
		"`snapstream:budget=64`", "`snapstream:budget=128`"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, "records.jsonl"))
	if n := strings.Count(string(data), "\n"); n != (6+3)*3*2 {
		t.Errorf("%d records, want (6+3 items) x 3 policies x 2 samples = 54", n)
	}
}
