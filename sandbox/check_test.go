package sandbox

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

type agreementCase struct {
	Name       string     `json:"name"`
	Code       string     `json:"code"`
	FuncName   string     `json:"func_name"`
	Tests      []TestCase `json:"tests"`
	Want       string     `json:"want"`
	FailedTest *int       `json:"failed_test"`
}

// TestAgreement runs problems whose verdicts follow from the official LiveCodeBench checker's rules
// (lcb_runner/evaluation/testing_util.py): preamble imports, recursion limit, Decimal comparison, tuple == list.
func TestAgreement(t *testing.T) {
	b, err := os.ReadFile("testdata/agreement.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []agreementCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	s := newTestSandbox(t, 2)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			v, err := s.Check(context.Background(), Problem{Code: c.Code, Tests: c.Tests, FuncName: c.FuncName})
			if err != nil {
				t.Fatal(err)
			}
			if v.Verdict != c.Want {
				t.Errorf("verdict %s (%s), want %s", v.Verdict, v.Detail, c.Want)
			}
			if c.FailedTest != nil && v.FailedTest != *c.FailedTest {
				t.Errorf("failed test %d, want %d", v.FailedTest, *c.FailedTest)
			}
			if c.Want == Pass && (v.FailedTest != -1 || v.Passed != len(c.Tests)) {
				t.Errorf("pass with failed test %d, passed %d of %d", v.FailedTest, v.Passed, len(c.Tests))
			}
		})
	}
}

func TestCheckBadTests(t *testing.T) {
	s := newTestSandbox(t, 2)
	bad := []Problem{
		{Code: "x=1", Tests: []TestCase{{Input: "1", Output: "1", Type: "functional"}}},
		{Code: "x=1", FuncName: "f", Tests: []TestCase{{Input: "{", Output: "1", Type: "functional"}}},
		{Code: "x=1", FuncName: "f", Tests: []TestCase{{Input: "1", Output: "", Type: "functional"}}},
		{Code: "x=1", Tests: []TestCase{{Input: "1", Output: "1", Type: "weird"}}},
	}
	for i, p := range bad {
		if _, err := s.Check(context.Background(), p); err == nil {
			t.Errorf("case %d: bad test data accepted", i)
		}
	}
}

func TestCheckCanceled(t *testing.T) {
	s := newTestSandbox(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Check(ctx, stdinProblem("print(1)", "1")); err == nil {
		t.Error("canceled context: no error")
	}
}
