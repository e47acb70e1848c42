package livecodebench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/snapeval/snapeval/datasets"
)

// latestFile is the number of raw files upstream (test.jsonl .. test6.jsonl).
const latestFile = 6

// FileName is the upstream name of raw file n (1 -> test.jsonl, 2 -> test2.jsonl, ...).
func FileName(n int) string {
	if n == 1 {
		return "test.jsonl"
	}
	return "test" + strconv.Itoa(n) + ".jsonl"
}

var (
	reRelease = regexp.MustCompile(`^release_v([1-9][0-9]*)$`)
	reSingle  = regexp.MustCompile(`^v([1-9][0-9]*)$`)
	reRange   = regexp.MustCompile(`^v([1-9][0-9]*)_v([1-9][0-9]*)$`)
)

// ReleaseFiles maps a version tag to its raw files as the official dataset script does: release_vN is cumulative
// (test.jsonl .. testN.jsonl), release_latest is every file, vN is file N alone, vI_vJ is files I..J (I < J).
func ReleaseFiles(tag string) ([]string, error) {
	lo, hi := 0, 0
	if tag == "release_latest" {
		lo, hi = 1, latestFile
	} else if m := reRelease.FindStringSubmatch(tag); m != nil {
		hi, _ = strconv.Atoi(m[1])
		lo = 1
	} else if m := reSingle.FindStringSubmatch(tag); m != nil {
		lo, _ = strconv.Atoi(m[1])
		hi = lo
	} else if m := reRange.FindStringSubmatch(tag); m != nil {
		lo, _ = strconv.Atoi(m[1])
		hi, _ = strconv.Atoi(m[2])
		if lo >= hi {
			return nil, fmt.Errorf("release %q: range must go up (vI_vJ with I < J)", tag)
		}
	} else {
		return nil, fmt.Errorf("release %q: want release_vN, release_latest, vN or vI_vJ", tag)
	}
	if hi > latestFile {
		return nil, fmt.Errorf("release %q: only %d files exist upstream", tag, latestFile)
	}
	var out []string
	for n := lo; n <= hi; n++ {
		out = append(out, FileName(n))
	}
	return out, nil
}

// Window selects problems by contest date: From <= date (when set) and date <= To (when set), both compared
// with the date at midnight as the official loader does (start_date / end_date, "YYYY-MM-DD", inclusive);
// Before (when set) excludes date >= Before.
type Window struct {
	From, To, Before time.Time
}

// R1Window is the DeepSeek-R1 evaluation window on release_v5: 2024-08-01 <= date < 2025-02-01 (279 problems).
var R1Window = Window{From: day(2024, 8, 1), Before: day(2025, 2, 1)}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// Contains reports whether t is in the window.
func (w Window) Contains(t time.Time) bool {
	if !w.From.IsZero() && t.Before(w.From) {
		return false
	}
	if !w.To.IsZero() && t.After(w.To) {
		return false
	}
	if !w.Before.IsZero() && !t.Before(w.Before) {
		return false
	}
	return true
}

// ReadRows reads rows from a JSONL file (one row per line) or a JSON array file.
// Errors name the file and line.
func ReadRows(path string) ([]Row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseRows(path, b)
}

func parseRows(name string, b []byte) ([]Row, error) {
	trim := bytes.TrimSpace(b)
	if len(trim) > 0 && trim[0] == '[' {
		var rows []Row
		if err := json.Unmarshal(trim, &rows); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		return rows, nil
	}
	var rows []Row
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
	line := 0
	for sc.Scan() {
		line++
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		var r Row
		if err := json.Unmarshal(l, &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %v", name, line+1, err)
	}
	return rows, nil
}

// Load reads, decodes and filters the problems of files (in order), keeping those in the window.
// Duplicate question ids are an error.
func Load(files []string, w Window) ([]*Problem, error) {
	var out []*Problem
	seen := map[string]string{}
	for _, f := range files {
		rows, err := ReadRows(f)
		if err != nil {
			return nil, err
		}
		for i, r := range rows {
			p, err := r.Decode()
			if err != nil {
				return nil, fmt.Errorf("%s: row %d: %v", f, i+1, err)
			}
			if prev, dup := seen[p.QuestionID]; dup {
				return nil, fmt.Errorf("%s: row %d: question %s already in %s", f, i+1, p.QuestionID, prev)
			}
			seen[p.QuestionID] = f
			if w.Contains(p.Date) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// selectFiles picks the release's files from explicit files (matched by base name) or from a directory.
func selectFiles(release string, files []string, dir string) ([]string, error) {
	if len(files) > 0 && release == "" {
		return files, nil
	}
	if release == "" {
		release = DefaultRelease
	}
	want, err := ReleaseFiles(release)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		if dir == "" {
			// The locked dataset in the snapeval cache (`snapeval data pull livecodebench`).
			dir = filepath.Dir(datasets.Path("", Name, want[0]))
		}
		var out []string
		for _, w := range want {
			p := filepath.Join(dir, w)
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("livecodebench: release %s needs %s: %v (run `snapeval data pull livecodebench`, or pass the files)", release, w, err)
			}
			out = append(out, p)
		}
		return out, nil
	}
	byBase := map[string]string{}
	for _, f := range files {
		byBase[filepath.Base(f)] = f
	}
	var out []string
	for _, w := range want {
		p, ok := byBase[w]
		if !ok {
			return nil, fmt.Errorf("livecodebench: release %s needs %s, which is not among the given files", release, w)
		}
		out = append(out, p)
	}
	return out, nil
}
