package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Verdicts of a graded program.
const (
	Pass         = "pass"
	WrongAnswer  = "wrong_answer"
	TimeLimit    = "time_limit"
	RuntimeError = "runtime_error"
	CompileError = "compile_error"
)

// TestCase is one LiveCodeBench test: Type "stdin" (Input on standard input, Output the expected stdout) or
// "functional" (Input: one JSON value per line, one per argument; Output: one JSON value).
type TestCase struct {
	Input  string `json:"input"`
	Output string `json:"output"`
	Type   string `json:"testtype"`
}

// Problem is a program and the tests it must pass, in order (public tests first).
type Problem struct {
	Code  string
	Tests []TestCase
	// FuncName is the method (of class Solution, or a module-level function) that functional tests call.
	FuncName string
	// Limits override the sandbox's limits for each test of this program (zero fields: the sandbox's).
	Limits Limits
}

// Verdict is the outcome of grading one program.
type Verdict struct {
	Verdict string `json:"verdict"`
	// FailedTest is the index of the first failing test (-1 when all pass).
	FailedTest int `json:"failed_test"`
	// Passed is the number of tests passed before the first failure.
	Passed int `json:"passed"`
	Tests  int `json:"tests"`
	// Detail says why the failing test failed (expected/got, error message), truncated.
	Detail string `json:"detail,omitempty"`
	// Isolation lists the isolation the runs lacked ("network isolation unavailable: ..."); empty when complete.
	Isolation []string `json:"isolation,omitempty"`
	// CPU is the total CPU time of all runs.
	CPU time.Duration `json:"cpu_ns"`
}

// Check runs the program on each test in order and stops at the first failure. Every test is a fresh process;
// the expected outputs stay in this process (the program only ever sees its inputs).
// An error means the harness failed (bad test data, context canceled), never that the program failed.
func (s *Sandbox) Check(ctx context.Context, p Problem) (Verdict, error) {
	v := Verdict{Verdict: Pass, FailedTest: -1, Tests: len(p.Tests), Isolation: s.Isolation()}
	// Validate every test before running anything.
	want := make([]pyValue, len(p.Tests))
	for i, tc := range p.Tests {
		switch tc.Type {
		case "stdin":
		case "functional":
			if p.FuncName == "" {
				return v, fmt.Errorf("sandbox: test %d: functional test without a function name", i)
			}
			for j, line := range strings.Split(tc.Input, "\n") {
				if !json.Valid([]byte(line)) {
					return v, fmt.Errorf("sandbox: test %d: input line %d is not JSON: %q", i, j+1, truncate(line, 80))
				}
			}
			w, err := parseExpected(tc.Output)
			if err != nil {
				return v, fmt.Errorf("sandbox: test %d: expected output is not JSON (%v): %q", i, err, truncate(tc.Output, 80))
			}
			want[i] = w
		default:
			return v, fmt.Errorf("sandbox: test %d: unknown testtype %q", i, tc.Type)
		}
	}
	var sl *slot
	select {
	case sl = <-s.slots:
	case <-ctx.Done():
		return Verdict{}, ctx.Err()
	}
	defer func() { s.slots <- sl }()
	if strings.TrimSpace(p.Code) == "" {
		v.Verdict, v.FailedTest, v.Detail = CompileError, 0, "empty program"
		return v, nil
	}
	for i, tc := range p.Tests {
		spec := Spec{Program: p.Code, Limits: p.Limits}
		if tc.Type == "stdin" {
			spec.Mode, spec.Stdin = "stdin", tc.Input
		} else {
			spec.Mode, spec.FuncName, spec.CallInput = "call", p.FuncName, tc.Input
		}
		r, err := s.runIn(ctx, sl, spec)
		v.CPU += r.CPU
		if err != nil {
			return v, err
		}
		verdict, detail := classify(r, tc, want[i])
		if verdict != Pass {
			v.Verdict, v.FailedTest, v.Detail = verdict, i, detail
			return v, nil
		}
		v.Passed++
	}
	return v, nil
}

// classify turns one run into a verdict. Everything the program said (its status, its output, its answer) is
// only ever compared with the expected output held here: no field of the answer is a verdict.
func classify(r Result, tc TestCase, want pyValue) (string, string) {
	switch {
	case r.TimedOut:
		return TimeLimit, "wall-clock limit exceeded"
	case r.CPULimit:
		return TimeLimit, "CPU limit exceeded"
	case r.OutputLimit:
		return RuntimeError, "output limit exceeded"
	case r.MemoryLimit && (r.Signal != "" || r.ExitCode != 0 || r.Status.Status != "ok"):
		return RuntimeError, "memory limit exceeded"
	case r.Status.Status == "compile_error":
		return CompileError, truncate(r.Status.Error, 300)
	case r.Status.Status == "runtime_error":
		return RuntimeError, truncate(r.Status.Error, 300)
	case r.Status.Status != "ok" || r.Signal != "" || r.ExitCode != 0:
		// The process died without an answer (killed, os._exit, memory, ...), or answered nonsense.
		return RuntimeError, truncate(fmt.Sprintf("process ended without a result: status %q, exit %d, signal %q, stderr %q",
			r.Status.Status, r.ExitCode, r.Signal, lastLines(string(r.Stderr), 3)), 300)
	}
	if tc.Type == "functional" {
		got, err := parseAnswer(r.Status.Value)
		if err != nil {
			return RuntimeError, truncate(fmt.Sprintf("unreadable answer: %v", err), 300)
		}
		got = topLevel(got)
		if !pyEqual(got, want) {
			return WrongAnswer, truncate(fmt.Sprintf("got %s, expected %s", got.repr(150), truncate(tc.Output, 150)), 300)
		}
		return Pass, ""
	}
	if ok, why := CompareStdout(string(r.Stdout), tc.Output); !ok {
		return WrongAnswer, truncate(why, 300)
	}
	return Pass, ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
