package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// rawTorchBench is a worker result with two figures: the copy bandwidth and the single-sequence decode.
const rawTorchBench = `{"info":{"gpu":"Test GPU","torch":"2.11","transformers":"5.17","layers":32,"kv_heads":8,"head_dim":128,"elem_bytes":2,
"weight_bytes_read":15000000000,"params":8000000000},"order":["bandwidth","decode"],"load_s":20,"elapsed_s":40,
"figures":{"bandwidth":{"ok":true,"gbs":[2900,3000,2950]},
"decode":{"ok":true,"context":4096,"step_ms":[7,7.5,7.2],"replay_ms":6.9,"live_slots_mean":4100,"slot_bytes":131072,"peak_bytes":17000000000}}}`

// fakePython writes a script that stands for `python -m snapworker bench --spec S --out R`: it checks the spec
// names the llama3.1-8b shape's config and writes rawTorchBench to R.
func fakePython(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw.json")
	if err := os.WriteFile(raw, []byte(rawTorchBench), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
# args: -m snapworker bench --spec SPEC --out OUT
[ "$1 $2 $3" = "-m snapworker bench" ] || { echo "unexpected args: $*" >&2; exit 9; }
spec=$5; out=$7
grep -q '"random_weights": true' "$spec" || { echo "spec without random weights" >&2; exit 8; }
echo "bench: loading (fake)" >&2
cp ` + raw + ` "$out"
`
	py := filepath.Join(dir, "python")
	if err := os.WriteFile(py, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return py
}

func TestTorchBenchThroughTheCLI(t *testing.T) {
	py := fakePython(t)
	keep := filepath.Join(t.TempDir(), "kept.json")
	cmd := cli(t, "bench", "--backend", "torch", "--backend-opt", "python="+py, "--json", "--raw", keep)
	cmd.Env = append(cmd.Env, "SNAPEVAL_CACHE="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var r struct {
		Model                   string  `json:"model"`
		GPU                     string  `json:"gpu"`
		DecodeBandwidthFraction float64 `json:"decode_bandwidth_fraction"`
		Targets                 []struct {
			Claim string `json:"claim"`
			Met   *bool  `json:"met"`
		} `json:"targets"`
		Errors map[string]string `json:"errors"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := float64(15000000000+4100*131072) / 0.0072 / 3000e9
	if r.GPU != "Test GPU" || !strings.HasPrefix(r.Model, "llama3.1-8b") || r.DecodeBandwidthFraction < want*0.999 || r.DecodeBandwidthFraction > want*1.001 {
		t.Errorf("report %+v, want fraction %v", r, want)
	}
	if !strings.Contains(r.Errors["table5"], "not measured") {
		t.Errorf("errors %v", r.Errors)
	}
	// The kept raw file re-reports without a GPU.
	tab, err := cli(t, "bench", "--backend", "torch", "--report", keep).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Test GPU", "single-sequence decode", "met", "not measured: table5"} {
		if !strings.Contains(string(tab), s) {
			t.Errorf("table lacks %q:\n%s", s, tab)
		}
	}
}

func TestTorchBenchUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--backend", "torch", "--threads", "4"}, "--threads are the cpu bench's flags"},
		{[]string{"bench", "--backend", "gpu"}, `--backend "gpu": want cpu or torch`},
		{[]string{"bench", "--raw", "x.json"}, "the torch bench's"},
		{[]string{"bench", "--backend", "torch", "--backend-opt", "max_batch=4"}, "--backend-opt max_batch"},
		{[]string{"bench", "--backend", "torch", "--backend-opt", "dtype=int4"}, "dtype"},
		{[]string{"bench", "--backend", "torch", "--shape", "gpt-5"}, "unknown shape"},
		{[]string{"bench", "--backend", "torch", "--figures", "decode,nope"}, `unknown figure "nope"`},
		{[]string{"bench", "--backend", "torch", "--model", "/nonexistent", "--shape", "llama3.1-8b"}, "not both"},
		{[]string{"bench", "--backend", "torch", "--report", "/nonexistent.json"}, "--report"},
		{[]string{"bench", "--backend", "torch", "--backend-opt", "python=/nonexistent/python3"}, "cannot run /nonexistent/python3"},
	} {
		cmd := cli(t, c.args...)
		cmd.Env = append(cmd.Env, "SNAPEVAL_CACHE="+t.TempDir())
		b, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if c.want == "--report" {
			if !ok || !strings.Contains(string(b), c.want) {
				t.Errorf("%v: %v\n%s", c.args, err, b)
			}
			continue
		}
		if !ok || ee.ExitCode() != exitUsage || !strings.Contains(string(b), c.want) {
			t.Errorf("%v: %v\n%s\nwant exit 2 saying %q", c.args, err, b, c.want)
		}
	}
}
