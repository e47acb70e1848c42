// Package benchtest is the contract every eval.Benchmark keeps, written once as a test suite that runs over
// every registered benchmark (this package's TestEveryBenchmark opens each on its small testdata fixture):
//
//	benchtest.Run(t, benchtest.Case{
//		Name: "mybench",
//		Open: func() (eval.Benchmark, error) {
//			return eval.OpenBenchmark("mybench", eval.BenchOptions{Files: []string{"../mybench/testdata/rows.jsonl"}})
//		},
//		Rows: benchtest.ReadRows(t, "../mybench/testdata/rows.jsonl"),
//	})
//
// The suite checks: Name and Defaults are sane (Samples >= 1, MaxNew > 0, sampling parameters in range); Items is
// deterministic (twice on one benchmark and once on another instance: same ids, order, tags and data), non-empty,
// with unique non-empty ids; Request renders exactly one of Messages and Prompt, well-formed and deterministic,
// leaving Key, Policy and Seed to the runner; the gold answer (eval.GoldAnswerer, required) grades correct with
// score 1; empty and garbage outputs and another item's gold grade wrong (score 0 for garbage) without
// error; items of another benchmark are refused with an error, never a panic; a RowParser reads every upstream row
// of the fixture into exactly the item Items gives, and refuses malformed rows; a FileBacked benchmark names
// the files it read; a Chained benchmark's follow-up
// is well-formed, deterministic and built from the first output.
package benchtest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"testing"

	"github.com/snapeval/snapeval/datasets"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/internal/contract"
	"github.com/snapeval/snapeval/llm"
)

// Case describes a benchmark under test, opened on fixture data.
type Case struct {
	// Name is the registry name the benchmark must report ("" skips the check).
	Name string
	// Open builds a fresh benchmark; the suite opens two. A benchmark that is an io.Closer is closed at the end.
	Open func() (eval.Benchmark, error)
	// Tokenizer is passed to Items (nil: as with a backend that has none).
	Tokenizer llm.Tokenizer
	// Rows are the fixture's upstream rows (ReadRows reads them), required when the benchmark is an
	// eval.RowParser: each must parse into exactly the item Items gives for its id.
	Rows [][]byte
	// MaxGrade bounds the items graded (0: all); benchmarks that grade in a sandbox keep it small.
	MaxGrade int
	// Chained says that in this configuration the benchmark asks twice (eval.Chained.FollowUp returns ok).
	Chained bool
}

// Garbage are outputs every grader must grade wrong, with score 0 and no error.
var Garbage = []string{
	"",
	"   \n\t",
	"qzx vvk jjw",
	"I cannot help with that.",
	"\\boxed{}",
	"The correct answer is",
	"```python\n```",
	"```python\nimport sys\nsys.exit(0)\n```",
}

// ReadRows reads the upstream rows of fixture files (JSON, JSONL or parquet, by extension) for Case.Rows.
func ReadRows(t testing.TB, files ...string) [][]byte {
	t.Helper()
	var rows [][]byte
	for _, f := range files {
		err := datasets.ReadFile(f, "", func(_ int, raw []byte) error {
			rows = append(rows, append([]byte(nil), raw...))
			return nil
		})
		if err != nil {
			t.Fatalf("benchtest: %v", err)
		}
	}
	return rows
}

// Run runs the contract suite on the benchmark c describes, each check as a subtest.
func Run(t *testing.T, c Case) {
	t.Helper()
	run(contract.Wrap(t), c)
}

// foreign is an item of no benchmark: every benchmark must refuse it with an error.
var foreign = eval.Item{ID: "benchtest-foreign", Data: struct{ Question string }{"2+2?"}}

func run(t contract.T, c Case) {
	t.Helper()
	if c.Open == nil {
		t.Fatalf("benchtest: Case.Open is nil")
	}
	b := open(t, c)
	items, err := b.Items(t.Context(), c.Tokenizer)
	if err != nil {
		t.Fatalf("Items: %v", err)
	}
	s := &suite{c: c, b: b, items: items, graded: items}
	if c.MaxGrade > 0 && len(items) > c.MaxGrade {
		s.graded = items[:c.MaxGrade]
	}
	t.Run("defaults", s.defaults)
	t.Run("items", s.itemsCheck)
	t.Run("request", s.request)
	t.Run("foreign_item", s.foreignItem)
	t.Run("gold", s.gold)
	t.Run("garbage", s.garbage)
	t.Run("row_parser", s.rowParser)
	t.Run("files", s.files)
	t.Run("chained", s.chained)
}

func open(t contract.T, c Case) eval.Benchmark {
	t.Helper()
	b, err := c.Open()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if cl, ok := b.(io.Closer); ok {
		t.Cleanup(func() { cl.Close() })
	}
	return b
}

type suite struct {
	c             Case
	b             eval.Benchmark
	items, graded []eval.Item
}

func (s *suite) defaults(t contract.T) {
	if s.b.Name() == "" {
		t.Errorf("Name is empty")
	}
	if s.c.Name != "" && s.b.Name() != s.c.Name {
		t.Errorf("Name = %q, registered as %q", s.b.Name(), s.c.Name)
	}
	d := s.b.Defaults()
	if d.Samples < 1 {
		t.Errorf("Defaults.Samples = %d, want >= 1", d.Samples)
	}
	if d.Sampling.MaxNew <= 0 {
		t.Errorf("Defaults.Sampling.MaxNew = %d, want > 0", d.Sampling.MaxNew)
	}
	if err := checkSampling(d.Sampling); err != nil {
		t.Errorf("Defaults.Sampling: %v", err)
	}
	if d.Sampling.Seed != 0 {
		t.Errorf("Defaults.Sampling.Seed = %d: the seed is the runner's", d.Sampling.Seed)
	}
}

// checkSampling checks that sampling parameters are in range.
func checkSampling(sp llm.Sampling) error {
	switch {
	case !(sp.Temperature >= 0 && sp.Temperature <= 2):
		return fmt.Errorf("temperature %v outside [0, 2]", sp.Temperature)
	case !(sp.TopP >= 0 && sp.TopP <= 1):
		return fmt.Errorf("top_p %v outside [0, 1]", sp.TopP)
	case sp.TopK < 0:
		return fmt.Errorf("top_k %d negative", sp.TopK)
	case sp.MaxNew < 0:
		return fmt.Errorf("max_new %d negative", sp.MaxNew)
	}
	for i, st := range sp.Stop {
		if st == "" {
			return fmt.Errorf("stop[%d] is empty", i)
		}
	}
	return nil
}

// sameItems reports the first difference between two item lists ("" when they are equal).
func sameItems(a, b []eval.Item) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d items, then %d", len(a), len(b))
	}
	for i := range a {
		switch {
		case a[i].ID != b[i].ID:
			return fmt.Sprintf("item %d: id %q, then %q", i, a[i].ID, b[i].ID)
		case !reflect.DeepEqual(a[i].Tags, b[i].Tags):
			return fmt.Sprintf("item %s: tags %v, then %v", a[i].ID, a[i].Tags, b[i].Tags)
		case !reflect.DeepEqual(a[i].Data, b[i].Data):
			return fmt.Sprintf("item %s: data differs (%T)", a[i].ID, a[i].Data)
		}
	}
	return ""
}

func (s *suite) itemsCheck(t contract.T) {
	if len(s.items) == 0 {
		t.Fatalf("Items returned no items")
	}
	seen := map[string]bool{}
	for i, it := range s.items {
		switch {
		case it.ID == "":
			t.Errorf("item %d has an empty id", i)
		case seen[it.ID]:
			t.Errorf("item id %q repeats", it.ID)
		}
		seen[it.ID] = true
		for k := range it.Tags {
			if k == "" {
				t.Errorf("item %s has a tag with an empty name", it.ID)
			}
		}
	}
	again, err := s.b.Items(t.Context(), s.c.Tokenizer)
	if err != nil {
		t.Fatalf("Items, second call: %v", err)
	}
	if d := sameItems(s.items, again); d != "" {
		t.Errorf("Items is not deterministic on one benchmark: %s", d)
	}
	other := open(t, s.c)
	fresh, err := other.Items(t.Context(), s.c.Tokenizer)
	if err != nil {
		t.Fatalf("Items on a second instance: %v", err)
	}
	if d := sameItems(s.items, fresh); d != "" {
		t.Errorf("Items differs between two instances opened alike: %s", d)
	}
}

// checkRequest checks a rendered request's shape.
func checkRequest(r llm.Request) error {
	if (len(r.Messages) > 0) == (r.Prompt != "") {
		return fmt.Errorf("%d messages and a prompt of %d bytes: want exactly one of them", len(r.Messages), len(r.Prompt))
	}
	for i, m := range r.Messages {
		switch {
		case m.Role != "system" && m.Role != "user" && m.Role != "assistant":
			return fmt.Errorf("message %d: role %q (want system, user or assistant)", i, m.Role)
		case m.Content == "":
			return fmt.Errorf("message %d (%s) is empty", i, m.Role)
		}
	}
	if r.Key != "" || r.Policy != "" || r.Sampling.Seed != 0 {
		return fmt.Errorf("key %q, policy %q, seed %d set: those are the runner's", r.Key, r.Policy, r.Sampling.Seed)
	}
	return checkSampling(r.Sampling)
}

func (s *suite) request(t contract.T) {
	for _, it := range s.items {
		r, err := s.b.Request(it)
		if err != nil {
			t.Errorf("Request(%s): %v", it.ID, err)
			continue
		}
		if err := checkRequest(r); err != nil {
			t.Errorf("Request(%s): %v", it.ID, err)
		}
		r2, err := s.b.Request(it)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Errorf("Request(%s) is not deterministic (second call: err %v)", it.ID, err)
		}
	}
}

// panicError is a panic caught by guarded.
type panicError struct{ v any }

func (e panicError) Error() string { return fmt.Sprintf("panic: %v", e.v) }

// guarded calls f and turns a panic into a panicError.
func guarded(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError{p}
		}
	}()
	return f()
}

// refused checks that err refuses bad input: an error, not a panic and not nil.
func refused(t contract.T, what string, err error) {
	t.Helper()
	var p panicError
	switch {
	case err == nil:
		t.Errorf("%s: accepted, want an error", what)
	case errors.As(err, &p):
		t.Errorf("%s: %v, want an error", what, err)
	}
}

func (s *suite) foreignItem(t contract.T) {
	refused(t, "Request of another benchmark's item", guarded(func() error { _, err := s.b.Request(foreign); return err }))
	refused(t, "Grade of another benchmark's item", guarded(func() error { _, err := s.b.Grade(t.Context(), foreign, "4"); return err }))
	if g, ok := s.b.(eval.GoldAnswerer); ok {
		if err := guarded(func() error {
			if out, ok := g.Gold(foreign); ok {
				return fmt.Errorf("a gold answer %q", out)
			}
			return nil
		}); err != nil {
			t.Errorf("Gold of another benchmark's item: %v", err)
		}
	}
}

// gradeWrong checks that output grades wrong for it without error (score 0 when zero is set).
func (s *suite) gradeWrong(t contract.T, it eval.Item, what, output string, zero bool) {
	t.Helper()
	var g eval.Grade
	err := guarded(func() (err error) { g, err = s.b.Grade(t.Context(), it, output); return err })
	switch {
	case err != nil:
		t.Errorf("%s: %s: grading %q failed: %v", it.ID, what, output, err)
	case g.Correct:
		t.Errorf("%s: %s %q graded correct (%+v)", it.ID, what, output, g)
	case zero && g.Score != 0:
		t.Errorf("%s: %s %q scored %v, want 0", it.ID, what, output, g.Score)
	case g.Score < 0 || g.Score >= 1:
		t.Errorf("%s: %s %q: score %v outside [0, 1) for a wrong answer", it.ID, what, output, g.Score)
	}
}

func (s *suite) gold(t contract.T) {
	ga, ok := s.b.(eval.GoldAnswerer)
	if !ok {
		t.Fatalf("%T does not implement eval.GoldAnswerer: every benchmark must say what output its grader accepts", s.b)
	}
	for _, it := range s.graded {
		out, ok := ga.Gold(it)
		if !ok {
			t.Errorf("%s: no gold answer", it.ID)
			continue
		}
		g, err := s.b.Grade(t.Context(), it, out)
		switch {
		case err != nil:
			t.Errorf("%s: grading the gold answer: %v", it.ID, err)
		case !g.Correct || g.Score != 1:
			t.Errorf("%s: the gold answer %q graded %+v, want correct with score 1", it.ID, out, g)
		}
	}
}

func (s *suite) garbage(t contract.T) {
	ga, _ := s.b.(eval.GoldAnswerer)
	for i, it := range s.graded {
		for _, out := range Garbage {
			s.gradeWrong(t, it, "garbage", out, true)
		}
		if ga == nil || len(s.graded) < 2 {
			continue
		}
		other := s.graded[(i+1)%len(s.graded)]
		mine, ok1 := ga.Gold(it)
		theirs, ok2 := ga.Gold(other)
		if ok1 && ok2 && mine != theirs {
			s.gradeWrong(t, it, "the gold answer of "+other.ID, theirs, false)
		}
	}
}

func (s *suite) rowParser(t contract.T) {
	rp, ok := s.b.(eval.RowParser)
	if !ok {
		t.Skipf("%T is not an eval.RowParser", s.b)
	}
	if len(s.c.Rows) == 0 {
		t.Fatalf("%T is an eval.RowParser: give its fixture's rows in Case.Rows", s.b)
	}
	plain, err := s.b.Items(t.Context(), nil)
	if err != nil {
		t.Fatalf("Items without a tokenizer: %v", err)
	}
	parsed := map[string]eval.Item{}
	for i, raw := range s.c.Rows {
		it, err := rp.ParseRow(raw)
		if err != nil {
			t.Errorf("ParseRow(row %d): %v", i, err)
			continue
		}
		again, err := rp.ParseRow(raw)
		if err != nil || sameItems([]eval.Item{it}, []eval.Item{again}) != "" {
			t.Errorf("ParseRow(row %d) is not deterministic (second call: err %v)", i, err)
		}
		if _, dup := parsed[it.ID]; dup {
			t.Errorf("rows parse to the id %q twice", it.ID)
		}
		parsed[it.ID] = it
	}
	for _, it := range plain {
		p, ok := parsed[it.ID]
		if !ok {
			t.Errorf("item %s of Items comes from no row of Case.Rows", it.ID)
			continue
		}
		if d := sameItems([]eval.Item{it}, []eval.Item{p}); d != "" {
			t.Errorf("ParseRow and Items disagree: %s", d)
		}
	}
	for _, bad := range []string{"", "{", "null", "[]", "{}", `"row"`, `{"id": {"nested": true}}`} {
		refused(t, fmt.Sprintf("ParseRow(%q)", bad), guarded(func() error { _, err := rp.ParseRow([]byte(bad)); return err }))
	}
}

// files checks an eval.FileBacked benchmark opened on its fixture: it names the files it read, each of which exists
// (the run hashes them into the manifest).
func (s *suite) files(t contract.T) {
	fb, ok := s.b.(eval.FileBacked)
	if !ok {
		t.Skipf("%T is not an eval.FileBacked", s.b)
	}
	files := fb.Files()
	if len(files) == 0 {
		t.Fatalf("Files() is empty, yet Items read %d items", len(s.items))
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			t.Errorf("Files() names %q, which is not a readable file (%v)", f, err)
		}
	}
	if again := fb.Files(); !reflect.DeepEqual(files, again) {
		t.Errorf("Files() changed between calls: %q then %q", files, again)
	}
}

func (s *suite) chained(t contract.T) {
	ch, ok := s.b.(eval.Chained)
	if !ok {
		if s.c.Chained {
			t.Fatalf("Case.Chained is set but %T is not an eval.Chained", s.b)
		}
		t.Skipf("%T is not an eval.Chained", s.b)
	}
	chains := 0
	for _, it := range s.items {
		a, okA, errA := ch.FollowUp(it, "First pass A: the reasoning.")
		b, okB, errB := ch.FollowUp(it, "First pass B: other reasoning.")
		a2, _, _ := ch.FollowUp(it, "First pass A: the reasoning.")
		if errA != nil || errB != nil {
			t.Errorf("FollowUp(%s): %v, %v", it.ID, errA, errB)
			continue
		}
		if okA != okB {
			t.Errorf("FollowUp(%s): ok depends on the first output (%v, %v)", it.ID, okA, okB)
			continue
		}
		if !okA {
			continue
		}
		chains++
		if err := checkRequest(a); err != nil {
			t.Errorf("FollowUp(%s): %v", it.ID, err)
		}
		if !reflect.DeepEqual(a, a2) {
			t.Errorf("FollowUp(%s) is not deterministic", it.ID)
		}
		if reflect.DeepEqual(a, b) {
			t.Errorf("FollowUp(%s) does not depend on the first output", it.ID)
		}
	}
	switch {
	case s.c.Chained && chains == 0:
		t.Errorf("Case.Chained is set but FollowUp returned ok for no item")
	case !s.c.Chained && chains > 0:
		t.Errorf("FollowUp returned ok for %d items but Case.Chained is not set", chains)
	}
}
