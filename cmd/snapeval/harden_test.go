package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapeval/snapeval/eval"
)

// TestUsageErrorsNameTheProblem: bad flags and files that were accepted silently, crashed the process or hung it
// are each one line naming the flag, file or value, with exit code 2, before any work starts.
func TestUsageErrorsNameTheProblem(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty-vocab.json")
	os.WriteFile(empty, []byte(`{"model":{"type":"BPE","vocab":{},"merges":[]}}`), 0o644)
	tok := filepath.Join("..", "..", "models", "snaptiny", "tokenizer.json")
	out := filepath.Join(dir, "out")
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"snapkv cache past the positions", []string{"run", "--policy", "snapkv:topk=100000000"}, "", "exceeds the model's 4096 positions"},
		{"snapstream cache past the positions", []string{"run", "--policy", "snapstream:budget=2147483647"}, "", "exceeds the model's 4096 positions"},
		{"streaming cache past the positions", []string{"run", "--policy", "streaming:sinks=4,recent=200000000"}, "", "exceeds the model's 4096 positions"},
		{"cache over the memory budget", []string{"run", "--policy", "snapstream:budget=4096", "--backend-opt", "memory_mb=1"}, "", "memory budget of 1.0 MiB"},
		{"negative temperature", []string{"run", "--temperature", "-1"}, "", "--temperature -1: want a number in [0, 2]"},
		{"top-p above 1", []string{"run", "--top-p", "5"}, "", "--top-p 5: want a number in (0, 1]"},
		{"zero samples", []string{"run", "--samples", "0"}, "", "--samples 0: want a number >= 1"},
		{"zero max new", []string{"run", "--max-new", "0"}, "", "--max-new 0: want a number >= 1"},
		{"negative limit", []string{"run", "--limit", "-3"}, "", "--limit -3: want a number >= 0"},
		{"tokenizer with an empty vocabulary", []string{"run", "--tokenizer", empty}, "", "model.vocab: empty"},
		{"decode an unknown id", []string{"tokenize", "--tokenizer", tok, "--decode"}, "5 999999", "id 999999 (at index 1) is not in the vocabulary"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args[0] == "run" {
				args = append(args, "--out", out, "--quiet")
			}
			cmd := cli(t, args...)
			cmd.Stdin = strings.NewReader(tc.stdin)
			b, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != exitUsage || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%v: %v\n%s\nwant exit 2 saying %q", args, err, b, tc.want)
			}
			if n := strings.Count(strings.TrimSpace(string(b)), "\n"); n > 0 {
				t.Errorf("%d lines of output, want one:\n%s", n+1, b)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(out, "records.jsonl")); err == nil {
		t.Error("a refused run wrote records")
	}
}

// TestRunStopsOnSIGTERM: one SIGTERM mid-run stops `snapeval run` with exit code 3 and the records finished so far
// journaled.
func TestRunStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := filepath.Join(t.TempDir(), "run")
	cmd := cli(t, append(e2eRunArgs, "--out", dir)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
	for sent := false; ; {
		select {
		case err := <-done:
			if !sent {
				t.Fatalf("the run ended before any record was journaled: %v\n%s", err, out.String())
			}
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != exitIncomplete || !strings.Contains(out.String(), "terminated signal received") {
				t.Fatalf("after SIGTERM: %v\n%s\nwant exit 3 saying the run stopped on the signal", err, out.String())
			}
			if _, recs, err := eval.LoadRun(dir); err != nil || len(recs) == 0 {
				t.Fatalf("journal after the stop: %d records, %v", len(recs), err)
			}
			return
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("still running 2 minutes after start (SIGTERM sent: %v)\n%s", sent, out.String())
		case <-time.After(20 * time.Millisecond):
			if b, _ := os.ReadFile(filepath.Join(dir, "records.jsonl")); !sent && len(b) > 0 {
				cmd.Process.Signal(syscall.SIGTERM)
				sent = true
			}
		}
	}
}

// startServe starts `snapeval serve` with args on a free port and returns its base URL (http://host:port) and the
// process; the process is stopped (SIGTERM) when the test ends.
func startServe(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := cli(t, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if _, url, ok := strings.Cut(sc.Text(), " on http://"); ok {
			go io.Copy(io.Discard, stderr)
			return "http://" + strings.TrimSuffix(url, "/v1"), cmd
		}
	}
	t.Fatalf("serve did not start")
	return "", nil
}

// TestServeDefaultsAndHelp: `snapeval serve` with no --model serves the embedded model, as `run` does, and the curl
// example of its help works against it as written.
func TestServeDefaultsAndHelp(t *testing.T) {
	help, err := cli(t, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("serve --help: %v", err)
	}
	var path, body string
	for _, line := range strings.Split(string(help), "\n") {
		if _, rest, ok := strings.Cut(line, "curl -s 127.0.0.1:8080"); ok {
			path, body, _ = strings.Cut(rest, " -d ")
			body = strings.Trim(body, "'")
		}
	}
	if path == "" || strings.Contains(string(help), "SmolLM2") {
		t.Fatalf("serve --help has no curl example for 127.0.0.1:8080, or names a model that is not shipped:\n%s", help)
	}
	base, _ := startServe(t)
	resp, err := http.Get(base + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	models, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(models), `"id":"snaptiny"`) {
		t.Errorf("/v1/models of serve without --model: %s", models)
	}
	resp, err = http.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(out), `"finish_reason"`) {
		t.Fatalf("the help's example %s %s: %d %s", path, body, resp.StatusCode, out)
	}
}

// servedRecords maps item|policy to what the records of dir say (output, verdict, prompt tokens, error kind).
func servedRecords(t *testing.T, dir string) map[string]string {
	t.Helper()
	_, recs, err := eval.LoadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, r := range recs {
		m[r.ItemID+"|"+r.Policy] = fmt.Sprintf("%q %v %s %d %s", r.Output, r.Correct, r.Verdict, r.PromptTokens, r.ErrorKind)
	}
	return m
}

// TestRunThroughServeWithoutFlagsAndDeadEndpoint: against `snapeval serve`, `run --backend openai` needs neither
// --tokenizer nor forward_policy (the server publishes both); when the server dies mid-run the run stops with exit 3
// and one line instead of writing an error per request, and resuming once it is back gives the records of a run on
// the cpu backend directly.
func TestRunThroughServeWithoutFlagsAndDeadEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	common := []string{"--bench-opt", "n=4", "--bench-opt", "lengths=512", "--bench-opt", "tasks=niah_single,cwe",
		"--policy", "snapstream:budget=128", "--quiet", "--no-report"}
	direct := filepath.Join(t.TempDir(), "direct")
	if out, err := cli(t, append([]string{"run", "--out", direct}, common...)...).CombinedOutput(); err != nil {
		t.Fatalf("direct: %v\n%s", err, out)
	}
	base, srv := startServe(t)
	addr := strings.TrimPrefix(base, "http://")
	via := filepath.Join(t.TempDir(), "via")
	args := append([]string{"run", "--out", via, "--backend", "openai", "--base-url", base + "/v1", "--concurrency", "2",
		"--backend-opt", "max_retries=1", "--backend-opt", "backoff_base=10ms"}, common...)
	run := cli(t, args...)
	var out strings.Builder
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	var err error
	for killed := false; ; { // kill the server once the first records are in
		select {
		case err = <-done:
		case <-time.After(10 * time.Millisecond):
			if b, _ := os.ReadFile(filepath.Join(via, "records.jsonl")); !killed && len(b) > 0 {
				srv.Process.Kill()
				srv.Wait()
				killed = true
			}
			continue
		}
		if !killed {
			t.Fatalf("the run ended before the server was killed: %v\n%s", err, out.String())
		}
		break
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitIncomplete || !strings.Contains(out.String(), "endpoint unreachable: the last 8 requests could not connect") {
		t.Fatalf("run after the server died: %v\n%s\nwant exit 3 saying the endpoint is unreachable", err, out.String())
	}
	if n := strings.Count(out.String(), "snapeval:"); n != 2 { // the run's first line and the stop line
		t.Errorf("%d lines from snapeval, want 2:\n%s", n, out.String())
	}
	for k, v := range servedRecords(t, via) {
		if strings.HasSuffix(v, " backend") {
			t.Errorf("%s: a failure to connect was recorded: %s", k, v)
		}
	}
	cmd := cli(t, "serve", "--addr", addr) // back on the same address
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	bufio.NewReader(stderr).ReadString('\n')
	go io.Copy(io.Discard, stderr)
	if b, err := cli(t, args...).CombinedOutput(); err != nil {
		t.Fatalf("resumed through serve: %v\n%s", err, b)
	}
	a, b := servedRecords(t, direct), servedRecords(t, via)
	if len(a) != 16 || len(b) != len(a) {
		t.Fatalf("%d direct records, %d through serve; want 16 each", len(a), len(b))
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s: direct %s, through serve %s", k, v, b[k])
		}
	}
	m, err := eval.ReadManifest(via)
	if err != nil || !strings.HasPrefix(m.TokenizerSource, "served by "+base+"/v1 (sha256 ") {
		t.Errorf("manifest tokenizer_source %q (%v), want the served tokenizer", m.TokenizerSource, err)
	}
}

// fakeOpenAI is an OpenAI-compatible server that is not snapeval: it publishes no tokenizer and echoes "x".
func fakeOpenAI(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/models":
			fmt.Fprint(w, `{"object":"list","data":[{"id":"m","object":"model","owned_by":"vllm"}]}`)
		case "/v1/completions":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"text\":\" x\",\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n")
		case "/v1/chat/completions":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// TestRunRefusesGuessedTokenLengths: a benchmark that sizes prompts in tokens does not run on a remote backend
// without the served model's tokenizer, unless approx_tokens=true allows estimates, which the manifest and the
// report then say.
func TestRunRefusesGuessedTokenLengths(t *testing.T) {
	base := fakeOpenAI(t)
	dir := t.TempDir()
	args := []string{"run", "--backend", "openai", "--base-url", base, "--model", "m", "--policy", "full",
		"--bench-opt", "n=1", "--bench-opt", "lengths=512", "--bench-opt", "tasks=niah_single", "--quiet"}
	b, err := cli(t, append(args, "--out", filepath.Join(dir, "refused"))...).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitUsage || !strings.Contains(string(b), "benchmark synth sizes its prompts in the model's tokens") ||
		!strings.Contains(string(b), "--tokenizer") || !strings.Contains(string(b), "approx_tokens=true") {
		t.Fatalf("without a tokenizer: %v\n%s\nwant exit 2 naming --tokenizer and approx_tokens", err, b)
	}
	out := filepath.Join(dir, "approx")
	if b, err := cli(t, append(args, "--out", out, "--backend-opt", "approx_tokens=true")...).CombinedOutput(); err != nil {
		t.Fatalf("with approx_tokens=true: %v\n%s", err, b)
	}
	m, err := eval.ReadManifest(out)
	if err != nil || m.TokenizerSource != eval.ApproxTokensNote || m.Config.BackendOpts["approx_tokens"] != "true" {
		t.Errorf("manifest: tokenizer_source %q, backend options %v (%v)", m.TokenizerSource, m.Config.BackendOpts, err)
	}
	if report, _ := os.ReadFile(filepath.Join(out, "report.md")); !strings.Contains(string(report), "prompt lengths are estimates") {
		t.Errorf("report.md does not flag the estimated lengths:\n%s", report)
	}
	// The official RULER generators cannot size on an estimate at all.
	b, err = cli(t, "run", "--backend", "openai", "--base-url", base, "--model", "m", "--policy", "full", "--bench", "ruler",
		"--backend-opt", "approx_tokens=true", "--quiet", "--out", filepath.Join(dir, "ruler")).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage || !strings.Contains(string(b), "benchmark ruler sizes its prompts in the model's tokens and cannot run on estimated lengths") {
		t.Errorf("official ruler with approx_tokens: %v\n%s", err, b)
	}
	// aime24 sends its problems as they are: it runs without a tokenizer.
	aime := append(args[:len(args)-7:len(args)-7], "--bench", "aime24", "--data", "aime24=../../eval/aime/testdata/excerpt.jsonl",
		"--limit", "1", "--samples", "1", "--quiet", "--out", filepath.Join(dir, "aime"))
	if b, err := cli(t, aime...).CombinedOutput(); err != nil {
		t.Errorf("aime24 without a tokenizer: %v\n%s", err, b)
	}
}

// TestRunRefusesADirectoryInUse: while another process writes a run directory, `run` on it exits 2 naming that
// process, and leaves the directory as it was.
func TestRunRefusesADirectoryInUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	st, err := eval.OpenStore(dir) // this test process holds the lock, as a concurrent run would
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err := cli(t, "run", "--limit", "1", "--quiet", "--out", dir).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitUsage || !strings.Contains(string(b), fmt.Sprintf("in use by another snapeval run (pid %d on host ", os.Getpid())) {
		t.Fatalf("run on a directory in use: %v\n%s\nwant exit 2 naming pid %d", err, b, os.Getpid())
	}
	if recs := st.Records(); len(recs) != 0 {
		t.Fatalf("%d records appeared", len(recs))
	}
}
