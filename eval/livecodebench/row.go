package livecodebench

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/snapeval/snapeval/sandbox"
)

// Row is one raw code_generation_lite row (all fields are strings upstream).
type Row struct {
	QuestionTitle   string `json:"question_title"`
	QuestionContent string `json:"question_content"`
	Platform        string `json:"platform"`
	QuestionID      string `json:"question_id"`
	ContestID       string `json:"contest_id"`
	ContestDate     string `json:"contest_date"`
	StarterCode     string `json:"starter_code"`
	Difficulty      string `json:"difficulty"`
	PublicTests     string `json:"public_test_cases"`
	PrivateTests    string `json:"private_test_cases"`
	Metadata        string `json:"metadata"`
}

// Problem is a decoded row: the row, its parsed date, its tests (public first) and the function name of
// functional tests.
type Problem struct {
	Row
	Date     time.Time
	Tests    []sandbox.TestCase
	Public   int // the first Public tests are the public ones
	FuncName string
}

// maxBlob caps a decompressed private-test blob (the largest real ones are tens of MB).
const maxBlob = 1 << 30

// DecodeTests decodes a test-case field: plain JSON, or base64 -> zlib -> pickle (one str) -> JSON.
func DecodeTests(field string) ([]sandbox.TestCase, error) {
	var tests []sandbox.TestCase
	if err := json.Unmarshal([]byte(field), &tests); err == nil {
		return tests, checkTests(tests)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(field))
	if err != nil {
		return nil, fmt.Errorf("test cases are neither JSON nor base64: %v", err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("test cases: zlib: %v", err)
	}
	plain, err := io.ReadAll(io.LimitReader(zr, maxBlob+1))
	if err != nil {
		return nil, fmt.Errorf("test cases: zlib: %v", err)
	}
	if len(plain) > maxBlob {
		return nil, fmt.Errorf("test cases: decompressed blob over %d bytes", maxBlob)
	}
	s, err := unpickleString(plain)
	if err != nil {
		return nil, fmt.Errorf("test cases: %v", err)
	}
	if err := json.Unmarshal([]byte(s), &tests); err != nil {
		return nil, fmt.Errorf("test cases: unpickled string is not a JSON list of tests: %v", err)
	}
	return tests, checkTests(tests)
}

func checkTests(tests []sandbox.TestCase) error {
	for i, t := range tests {
		if t.Type != "stdin" && t.Type != "functional" {
			return fmt.Errorf("test %d: testtype %q (want stdin or functional)", i, t.Type)
		}
	}
	return nil
}

// Decode parses a row's date, tests and metadata.
func (r Row) Decode() (*Problem, error) {
	p := &Problem{Row: r}
	if r.QuestionID == "" {
		return nil, fmt.Errorf("question_id is empty")
	}
	d, err := time.Parse("2006-01-02T15:04:05", r.ContestDate)
	if err != nil {
		if d, err = time.Parse(time.RFC3339, r.ContestDate); err != nil {
			return nil, fmt.Errorf("question %s: contest_date %q: %v", r.QuestionID, r.ContestDate, err)
		}
	}
	p.Date = d
	switch r.Difficulty {
	case "easy", "medium", "hard":
	default:
		return nil, fmt.Errorf("question %s: difficulty %q", r.QuestionID, r.Difficulty)
	}
	switch r.Platform {
	case "leetcode", "codeforces", "atcoder":
	default:
		return nil, fmt.Errorf("question %s: platform %q", r.QuestionID, r.Platform)
	}
	pub, err := DecodeTests(r.PublicTests)
	if err != nil {
		return nil, fmt.Errorf("question %s: public_test_cases: %v", r.QuestionID, err)
	}
	priv, err := DecodeTests(r.PrivateTests)
	if err != nil {
		return nil, fmt.Errorf("question %s: private_test_cases: %v", r.QuestionID, err)
	}
	p.Tests, p.Public = append(pub, priv...), len(pub)
	if r.Metadata != "" {
		var md struct {
			FuncName string `json:"func_name"`
		}
		if err := json.Unmarshal([]byte(r.Metadata), &md); err != nil {
			return nil, fmt.Errorf("question %s: metadata: %v", r.QuestionID, err)
		}
		p.FuncName = md.FuncName
	}
	for i, t := range p.Tests {
		if t.Type == "functional" && p.FuncName == "" {
			return nil, fmt.Errorf("question %s: test %d is functional but metadata has no func_name", r.QuestionID, i)
		}
	}
	return p, nil
}
