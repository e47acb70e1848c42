package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/snapeval/snapeval/session"
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

var e2eRunArgs = []string{"run", "--model", "../../backends/cpu/testdata/models/qwen2-tied", "--bench", "synth",
	"--bench-opt", "lengths=512", "--bench-opt", "tasks=niah_single,niah_multikey", "--bench-opt", "n=16",
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

	// Kill when the journal has grown by a few more records than it held at the start of the attempt (so every
	// kill lands mid-run, however fast or loaded the machine is); the last attempt is never killed.
	dir := filepath.Join(t.TempDir(), "killed")
	lines := func() int {
		j, _ := os.ReadFile(filepath.Join(dir, "records.jsonl"))
		return strings.Count(string(j), "\n")
	}
	kills, midRun, finished := 0, 0, false
	for attempt := 0; attempt <= 4 && !finished; attempt++ {
		cmd := cli(t, append(e2eRunArgs, "--out", dir)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		before := lines()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		target := before + 1 + (total-before)/5
		tick := time.NewTicker(2 * time.Millisecond)
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run failed: %v\n%s", err, out.String())
				}
				finished = true
				break wait
			case <-tick.C:
				if attempt < 4 && lines() >= target {
					cmd.Process.Kill()
					<-done
					kills++
					if n := lines(); n > 0 && n < total {
						midRun++
					}
					break wait
				}
			}
		}
		tick.Stop()
	}
	if !finished {
		t.Fatal("the last attempt did not finish")
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
	args := []string{"run", "--model", "../../backends/cpu/testdata/models/qwen2-tied", "--bench", "synth",
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
	for _, p := range append([]string{"full"}, session.Default().Policies...) {
		if !strings.Contains(string(md), "| `"+p+"` |") {
			t.Errorf("report.md has no row for policy %s", p)
		}
	}
	for _, want := range []string{"## synth", "### by task", "### by length", "McNemar"} {
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

// TestRunRefusesCachedDataThatMismatchesTheLock plants a valid but different AIME file in the dataset cache:
// the run must stop with a usage error before any request, never evaluate other data than the lock pins.
func TestRunRefusesCachedDataThatMismatchesTheLock(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	cache := t.TempDir()
	type row struct {
		ID       string `parquet:"ID"`
		Problem  string `parquet:"Problem"`
		Solution string `parquet:"Solution"`
		Answer   string `parquet:"Answer"`
	}
	if err := os.MkdirAll(filepath.Join(cache, "aime24"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := parquet.WriteFile(filepath.Join(cache, "aime24", "aime_2024_problems.parquet"),
		[]row{{ID: "2024-I-1", Problem: "What is 1+1?", Solution: "", Answer: "2"}}); err != nil {
		t.Fatal(err)
	}
	cmd := cli(t, "run", "--model", "../../backends/cpu/testdata/models/qwen2-tied", "--backend-opt", "chat_style=chatml",
		"--bench", "aime24", "--max-new", "2", "--samples", "1", "--quiet", "--out", filepath.Join(t.TempDir(), "r"))
	cmd.Env = append(cmd.Env, "SNAPEVAL_CACHE="+cache)
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitUsage || !strings.Contains(string(out), "does not match datasets.lock") {
		t.Fatalf("tampered cache: %v\n%s", err, out)
	}
}

// TestRunThroughServeMatchesDirect serves the embedded model with `snapeval serve`, runs the suite through the
// openai backend against it, and checks every record's output, verdict and prompt size equal the direct CPU run's.
func TestRunThroughServeMatchesDirect(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := cli(t, "serve", "--model", "snaptiny", "--addr", addr)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatal("serve did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	common := []string{"--bench-opt", "n=1", "--bench-opt", "lengths=512", "--bench-opt", "tasks=niah_single,cwe", "--quiet", "--no-report"}
	direct := filepath.Join(t.TempDir(), "direct")
	if out, err := cli(t, append([]string{"run", "--out", direct}, common...)...).CombinedOutput(); err != nil {
		t.Fatalf("direct: %v\n%s", err, out)
	}
	via := filepath.Join(t.TempDir(), "via")
	if out, err := cli(t, append([]string{"run", "--out", via, "--backend", "openai", "--base-url", "http://" + addr + "/v1",
		"--model", "snaptiny", "--backend-opt", "forward_policy=true", "--tokenizer", "../../models/snaptiny/tokenizer.json"},
		common...)...).CombinedOutput(); err != nil {
		t.Fatalf("through serve: %v\n%s", err, out)
	}
	key := func(dir string) map[string]string {
		m := map[string]string{}
		data, _ := os.ReadFile(filepath.Join(dir, "records.jsonl"))
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var r struct {
				ItemID       string `json:"item_id"`
				Policy       string `json:"policy"`
				Output       string `json:"output"`
				Verdict      string `json:"verdict"`
				ErrorKind    string `json:"error_kind"`
				PromptTokens int    `json:"prompt_tokens"`
				Correct      bool   `json:"correct"`
			}
			json.Unmarshal([]byte(line), &r)
			m[r.ItemID+"|"+r.Policy] = fmt.Sprintf("%q %v %s %d %s", r.Output, r.Correct, r.Verdict, r.PromptTokens, r.ErrorKind)
		}
		return m
	}
	a, b := key(direct), key(via)
	if len(a) != 12 || len(b) != len(a) {
		t.Fatalf("%d direct records, %d through serve; want 12 each", len(a), len(b))
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s: direct %s, through serve %s", k, v, b[k])
		}
	}
}

// TestShippedModelSolvesSuite guards the embedded checkpoint: with the full cache, greedy decoding answers
// items of every task of the default suite (the model scores 100% on all six tasks in the default run; a
// checkpoint that regresses to guessing, or loses variable tracking or common-word extraction, fails here).
// Outputs are deterministic (greedy, fixed seeds).
func TestShippedModelSolvesSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := filepath.Join(t.TempDir(), "suite")
	cmd := cli(t, "run", "--bench-opt", "n=2", "--bench-opt", "lengths=512", "--bench-opt", "tasks=all",
		"--policy", "streaming:sinks=4,recent=60", "--quiet", "--out", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "records.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	full := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r struct {
			ItemID         string `json:"item_id"`
			Policy, Output string
			Correct        bool
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("records.jsonl: %v", err)
		}
		if r.Policy != "full" {
			continue
		}
		full++
		if !r.Correct {
			t.Errorf("full cache, item %s: wrong answer %q", r.ItemID, r.Output)
		}
	}
	if full != 12 {
		t.Errorf("%d full-cache records, want 12", full)
	}
}
