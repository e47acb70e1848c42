package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/llm"
)

// writeTestRun writes a run directory (manifest + journal) holding recs.
func writeTestRun(t *testing.T, dir string, recs []eval.Record) {
	t.Helper()
	m := eval.Manifest{RunID: "cmd-test", Config: eval.RunConfig{Benches: []string{"synth"},
		Policies: []string{"full", "snapstream:budget=64", "streaming:sinks=4,recent=60"}}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := eval.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, r := range recs {
		line, _ := json.Marshal(r)
		buf.Write(append(line, '\n'))
	}
	if err := os.WriteFile(filepath.Join(dir, eval.JournalFile), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testRecords: 20 items; snapstream loses 1 of 20 (5 pp), streaming loses 8 of 20 (40 pp); withErr adds a timeout.
func testRecords(withErr bool) []eval.Record {
	var recs []eval.Record
	for i := range 20 {
		id := fmt.Sprintf("i%02d", i)
		for _, p := range []string{"full", "snapstream:budget=64", "streaming:sinks=4,recent=60"} {
			ok := !(p == "snapstream:budget=64" && i == 0) && !(strings.HasPrefix(p, "streaming") && i < 8)
			r := eval.Record{RunID: "cmd-test", Bench: "synth", ItemID: id, Policy: p, Correct: ok, Tags: "len=" + fmt.Sprint(i%2)}
			if ok {
				r.Score = 1
			}
			if withErr && p == "snapstream:budget=64" && i == 5 {
				r = eval.Record{RunID: "cmd-test", Bench: "synth", ItemID: id, Policy: p, ErrorKind: llm.ErrKindTimeout, Tags: r.Tags}
			}
			recs = append(recs, r)
		}
	}
	return recs
}

func TestReportCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	recs := testRecords(false)
	writeTestRun(t, dir, recs)
	var out bytes.Buffer
	if err := runReport(&reportOptions{Dirs: []string{dir}, Format: "md"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## synth", "| `snapstream:budget=64` | 20 | 20 | 0 | 95.0 | 95.0 | -5.0 |", "### by len"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	for _, f := range []string{"report.md", "report.csv", "report.svg", "report.png", "report-kv.svg", "report-kv.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !bytes.Equal(md, out.Bytes()) {
		t.Error("stdout differs from report.md")
	}

	// the same records split into two shards give the same report
	shards := []string{filepath.Join(t.TempDir(), "s0"), filepath.Join(t.TempDir(), "s1")}
	writeTestRun(t, shards[0], recs[:27])
	writeTestRun(t, shards[1], recs[27:])
	outDir := t.TempDir()
	var merged bytes.Buffer
	if err := runReport(&reportOptions{Dirs: shards, Format: "md", Out: outDir}, &merged, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(merged.Bytes(), out.Bytes()) {
		t.Errorf("merged shards give a different report:\n%s", merged.String())
	}

	var js bytes.Buffer
	if err := runReport(&reportOptions{Dirs: []string{dir}, Format: "json"}, &js, &bytes.Buffer{}); err != nil || !json.Valid(js.Bytes()) {
		t.Errorf("json report: %v", err)
	}
	// --max-drop sets the planning figures: 1 of 20 items lost needs more items for ±1 pp than for ±5 pp
	plan := func(drop float64) string {
		var md bytes.Buffer
		if err := runReport(&reportOptions{Dirs: []string{dir}, Format: "md", Out: t.TempDir(), MaxDrop: drop}, &md, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		_, line, _ := strings.Cut(md.String(), "\nPlanning (")
		line, _, _ = strings.Cut(line, "\n")
		return line
	}
	if p1, p5 := plan(1), plan(5); !strings.Contains(p1, "gate at `--max-drop 1` needs for ±1 pp") ||
		!strings.Contains(p5, "`snapstream:budget=64` ±") || p1 == p5 {
		t.Errorf("planning lines:\n%s\n%s", p1, p5)
	}
	if err := runReport(&reportOptions{Dirs: []string{dir}, Format: "md", MaxDrop: -1}, &js, &bytes.Buffer{}); exitCode(err) != exitUsage {
		t.Errorf("negative --max-drop: exit %d, want %d", exitCode(err), exitUsage)
	}
	if err := runReport(&reportOptions{Dirs: []string{dir}, Format: "html"}, &js, &bytes.Buffer{}); exitCode(err) != exitUsage {
		t.Errorf("bad format: exit %d, want %d", exitCode(err), exitUsage)
	}
	if err := runReport(&reportOptions{Dirs: []string{t.TempDir()}, Format: "md"}, &js, &bytes.Buffer{}); err == nil {
		t.Error("a directory without a manifest must fail")
	}
}

func TestExportCommand(t *testing.T) {
	dir := t.TempDir()
	writeTestRun(t, dir, testRecords(true))
	var out bytes.Buffer
	if err := runExport(&exportOptions{Dirs: []string{dir}, Format: "jsonl"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 60 {
		t.Fatalf("%d lines, want 60", len(lines))
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"bench", "item_id", "policy", "sample", "output", "extracted", "correct", "error"} {
		if _, ok := first[k]; !ok {
			t.Errorf("export line lacks %q: %s", k, lines[0])
		}
	}
	out.Reset()
	if err := runExport(&exportOptions{Dirs: []string{dir}, Format: "csv"}, &out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 61 || !strings.HasPrefix(out.String(), "run_id,bench,item_id,policy,sample,") {
		t.Errorf("csv: %d lines, header %q", n, strings.SplitN(out.String(), "\n", 2)[0])
	}
	if err := runExport(&exportOptions{Dirs: []string{dir}, Format: "xml"}, &out); exitCode(err) != exitUsage {
		t.Errorf("bad format: exit %d", exitCode(err))
	}
}

func TestGateCommand(t *testing.T) {
	clean, withErr := t.TempDir(), t.TempDir()
	writeTestRun(t, clean, testRecords(false))
	writeTestRun(t, withErr, testRecords(true))
	tests := []struct {
		name string
		dir  string
		o    gateOptions
		code int
		want string
	}{
		{"streaming loses 40 pp", clean, gateOptions{MaxDrop: 10, Use: "point"}, exitGateFailed, "gate FAIL: 1 of 2 checks passed"},
		{"generous", clean, gateOptions{MaxDrop: 50, Use: "point"}, exitOK, "gate PASS: 2 of 2 checks passed"},
		{"one policy", clean, gateOptions{MaxDrop: 10, Use: "point", Policy: "snapstream:budget=64"}, exitOK, "gate PASS: 1 of 1"},
		{"ci is stricter", clean, gateOptions{MaxDrop: 10, Use: "ci", Policy: "snapstream:budget=64"}, exitGateFailed, "CI upper loss 23.61 pp > max drop 10 pp"},
		{"errors fail", withErr, gateOptions{MaxDrop: 10, Use: "point", Policy: "snapstream:budget=64"}, exitGateFailed, "1 error records"},
		{"errors allowed", withErr, gateOptions{MaxDrop: 10, Use: "point", Policy: "snapstream:budget=64", AllowErrors: true}, exitOK, "PASS"},
		{"json", clean, gateOptions{MaxDrop: 10, Use: "point", JSON: true}, exitGateFailed, `"pass": false`},
		{"bad --use", clean, gateOptions{MaxDrop: 10, Use: "mean"}, exitUsage, ""},
		{"unknown bench", clean, gateOptions{MaxDrop: 10, Use: "point", Bench: "nope"}, exitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.Dirs = []string{tt.dir}
			var out bytes.Buffer
			err := runGate(&o, &out)
			if got := exitCode(err); got != tt.code {
				t.Fatalf("exit %d (%v), want %d\n%s", got, err, tt.code, out.String())
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out.String())
			}
		})
	}
}

// TestGateIncompleteRuns: a run with fewer records than planned, or one shard of several, fails the gate
// unless --allow-incomplete, and the report says so.
func TestGateIncompleteRuns(t *testing.T) {
	recs := testRecords(false)
	partial, shard := t.TempDir(), t.TempDir()
	writeTestRun(t, partial, recs[:45])
	writeTestRun(t, shard, recs)
	for dir, edit := range map[string]func(*eval.Manifest){
		partial: func(m *eval.Manifest) { m.Planned = len(recs) },
		shard:   func(m *eval.Manifest) { m.Planned = len(recs); m.Shard = "0/2" },
	} {
		m, err := eval.ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		edit(&m)
		if err := eval.WriteManifest(dir, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		dir, want string
	}{{partial, "run incomplete: 45 of 60 planned records"}, {shard, "covers shard 0/2 only"}} {
		var out bytes.Buffer
		err := runGate(&gateOptions{Dirs: []string{tc.dir}, MaxDrop: 90, Use: "point"}, &out)
		if exitCode(err) != exitGateFailed || !strings.Contains(out.String(), tc.want) {
			t.Errorf("gate over %s: exit %d, output:\n%s", tc.want, exitCode(err), out.String())
		}
		out.Reset()
		if err := runGate(&gateOptions{Dirs: []string{tc.dir}, MaxDrop: 90, Use: "point", AllowIncomplete: true}, &out); err != nil {
			t.Errorf("--allow-incomplete: %v\n%s", err, out.String())
		}
	}
	var md bytes.Buffer
	if err := runReport(&reportOptions{Dirs: []string{partial}, Format: "md", Out: t.TempDir()}, &md, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "**incomplete**: 45 of 60 planned records") {
		t.Errorf("report does not flag the incomplete run:\n%s", md.String()[:400])
	}
	if err := runReport(&reportOptions{Dirs: []string{shard, shard}, Format: "md", Out: t.TempDir()}, &md, &bytes.Buffer{}); err == nil {
		t.Error("the same directory given twice was merged")
	}
}
