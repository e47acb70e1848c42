package eval

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapeval/snapeval/llm"
)

func loaded(t *testing.T, b Benchmark) LoadedBench {
	t.Helper()
	items, err := b.Items(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return LoadedBench{Bench: b, Items: items}
}

func runAll(t *testing.T, dir string, be llm.Generator, benches []LoadedBench, policies []string, shard Shard) Summary {
	t.Helper()
	tasks, err := BuildTasks(benches, policies, 7, shard, Overrides{Samples: 2})
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := &Runner{Backend: be, Store: st, RunID: "r1", BackendID: "hash", Concurrency: 4, GradeConcurrency: 2, RetryErrors: true}
	sum, err := r.Run(context.Background(), tasks)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestRunnerRecordsEveryCell(t *testing.T) {
	dir := t.TempDir()
	b := loaded(t, &echoBench{name: "echo", n: 10, tags: true})
	sum := runAll(t, dir, &hashBackend{}, []LoadedBench{b}, []string{"full", "fail:x", "overflow:y"}, Shard{})
	if sum.Total != 60 || sum.Done != 60 || sum.Stopped {
		t.Fatalf("summary %+v, want 60 done", sum)
	}
	recs, _, err := readJournal(filepath.Join(dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 60 {
		t.Fatalf("%d records, want 60", len(recs))
	}
	var backendErrs, overflow int
	for _, r := range recs {
		switch r.ErrorKind {
		case llm.ErrKindBackend:
			backendErrs++
			if r.Policy != "fail:x" || r.Correct || r.Output != "" {
				t.Errorf("bad error record %+v", r)
			}
		case llm.ErrKindContextOverflow:
			overflow++
		case "":
			if r.Tags == "" || r.PromptHash == "" || r.Seed == 0 {
				t.Errorf("record lacks tags, hash or seed: %+v", r)
			}
		}
	}
	if backendErrs == 0 || overflow == 0 || sum.Errors != backendErrs+overflow {
		t.Fatalf("errors: backend %d overflow %d summary %d", backendErrs, overflow, sum.Errors)
	}
}

func TestSeedsPairedAcrossPolicies(t *testing.T) {
	b := loaded(t, &echoBench{name: "echo", n: 3})
	tasks, err := BuildTasks([]LoadedBench{b}, []string{"full", "p"}, 1, Shard{}, Overrides{Samples: 3})
	if err != nil {
		t.Fatal(err)
	}
	seeds := map[string]uint64{}
	distinct := map[uint64]bool{}
	for _, tk := range tasks {
		k := tk.Item.ID + "/" + strconv.Itoa(tk.Sample)
		if s, ok := seeds[k]; ok && s != tk.Request.Sampling.Seed {
			t.Fatalf("seed of %s differs between policies", k)
		}
		seeds[k] = tk.Request.Sampling.Seed
		distinct[tk.Request.Sampling.Seed] = true
	}
	if len(distinct) != 9 {
		t.Fatalf("%d distinct seeds, want 9", len(distinct))
	}
	// Stable across releases: changing the derivation would silently change every sampled result.
	if got := SampleSeed(42, "aime24", "2024-I-1", 0); got != SampleSeed(42, "aime24", "2024-I-1", 0) || got == SampleSeed(43, "aime24", "2024-I-1", 0) {
		t.Fatal("seed derivation not a function of the run seed")
	}
}

func TestResumeDoesNothingTwice(t *testing.T) {
	dir := t.TempDir()
	b := loaded(t, &echoBench{name: "echo", n: 6})
	be := &hashBackend{}
	runAll(t, dir, be, []LoadedBench{b}, []string{"full", "p"}, Shard{})
	first := be.calls.Load()
	sum := runAll(t, dir, be, []LoadedBench{b}, []string{"full", "p"}, Shard{})
	if be.calls.Load() != first || sum.Skipped != sum.Total {
		t.Fatalf("resume re-ran work: calls %d -> %d, summary %+v", first, be.calls.Load(), sum)
	}
}

func TestQuotaStopsCleanlyAndResumes(t *testing.T) {
	dir := t.TempDir()
	b := loaded(t, &echoBench{name: "echo", n: 10})
	ref := t.TempDir()
	runAll(t, ref, &hashBackend{}, []LoadedBench{b}, []string{"full", "p"}, Shard{})

	sum := runAll(t, dir, &hashBackend{quotaAt: 15}, []LoadedBench{b}, []string{"full", "p"}, Shard{})
	if !sum.Stopped || !bytes.Contains([]byte(sum.StopReason), []byte("quota")) {
		t.Fatalf("summary %+v: want stopped on quota", sum)
	}
	for _, r := range mustRecords(t, dir) {
		if r.IsError() {
			t.Fatalf("quota refusal recorded as %+v", r)
		}
	}
	runAll(t, dir, &hashBackend{}, []LoadedBench{b}, []string{"full", "p"}, Shard{})
	assertSameRecords(t, ref, dir)
}

func TestShardsMergeToWholeRun(t *testing.T) {
	b := loaded(t, &echoBench{name: "echo", n: 25, tags: true})
	pol := []string{"full", "p"}
	whole := t.TempDir()
	runAll(t, whole, &hashBackend{}, []LoadedBench{b}, pol, Shard{})
	writeTestManifest(t, whole, "")
	var dirs []string
	total := 0
	for i := range 3 {
		d := t.TempDir()
		sum := runAll(t, d, &hashBackend{}, []LoadedBench{b}, pol, Shard{i, 3})
		if sum.Total == 0 {
			t.Fatalf("shard %d/3 is empty", i)
		}
		total += sum.Total
		writeTestManifest(t, d, Shard{i, 3}.String())
		dirs = append(dirs, d)
	}
	if total != 100 {
		t.Fatalf("shards hold %d tasks, want 100", total)
	}
	_, merged, err := LoadRuns(dirs)
	if err != nil {
		t.Fatal(err)
	}
	_, ref, err := LoadRun(whole)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(jsonOf(t, merged), jsonOf(t, ref)) {
		t.Fatal("merged shards differ from the whole run")
	}
	// Merging directories of different runs is refused.
	other := t.TempDir()
	runAll(t, other, &hashBackend{}, []LoadedBench{b}, pol, Shard{})
	m := Manifest{RunID: "other", Config: RunConfig{Benches: []string{"echo"}, Policies: pol}}
	if err := WriteManifest(other, m); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadRuns([]string{whole, other}); err == nil {
		t.Fatal("merging different runs succeeded")
	}
}

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Shard
		ok   bool
	}{{"", Shard{}, true}, {"0/1", Shard{0, 1}, true}, {"3/4", Shard{3, 4}, true}, {"4/4", Shard{}, false},
		{"-1/2", Shard{}, false}, {"1", Shard{}, false}, {"a/b", Shard{}, false}, {"0/0", Shard{}, false}} {
		got, err := ParseShard(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseShard(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// TestKillAndResume kills a real subprocess (this test binary re-executed) with SIGKILL in the middle of a run,
// several times, then finishes the run and checks the records equal those of an uninterrupted run.
func TestKillAndResume(t *testing.T) {
	if os.Getenv("SNAPEVAL_KILL_CHILD") != "" {
		t.Skip("child")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ref := t.TempDir()
	b := loaded(t, &echoBench{name: "echo", n: 40, tags: true})
	runAll(t, ref, &hashBackend{}, []LoadedBench{b}, []string{"full", "fail:x"}, Shard{})

	dir := t.TempDir()
	kills, finished := 0, false
	// Kill the child at growing delays; the last attempt is never killed, so the run always finishes.
	for attempt := 0; attempt <= 12 && !finished; attempt++ {
		cmd := exec.Command(exe, "-test.run=^TestKillChild$", "-test.v")
		cmd.Env = append(os.Environ(), "SNAPEVAL_KILL_CHILD="+dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var kill <-chan time.Time
		if attempt < 12 {
			kill = time.After(time.Duration(30+attempt*6) * time.Millisecond)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("child failed: %v\n%s", err, out.String())
			}
			finished = true
		case <-kill:
			cmd.Process.Kill()
			<-done
			kills++
		}
	}
	if kills < 3 {
		t.Fatalf("the child was killed only %d times mid-run: the test proves little", kills)
	}
	t.Logf("killed the child %d times", kills)
	assertSameRecords(t, ref, dir)
}

// TestKillChild is the subprocess of TestKillAndResume.
func TestKillChild(t *testing.T) {
	dir := os.Getenv("SNAPEVAL_KILL_CHILD")
	if dir == "" {
		t.Skip("only run as a subprocess of TestKillAndResume")
	}
	b := loaded(t, &echoBench{name: "echo", n: 40, tags: true})
	runAll(t, dir, &hashBackend{delay: 3 * time.Millisecond}, []LoadedBench{b}, []string{"full", "fail:x"}, Shard{})
}

func mustRecords(t *testing.T, dir string) []Record {
	t.Helper()
	recs, _, err := readJournal(filepath.Join(dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func writeTestManifest(t *testing.T, dir, shard string) {
	t.Helper()
	m := Manifest{RunID: "r1", Shard: shard, Config: RunConfig{Benches: []string{"echo"}, Policies: []string{"full", "p"}}}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
}

// assertSameRecords compares the final sorted record sets (and their parquet bytes) of two run directories.
func assertSameRecords(t *testing.T, a, b string) {
	t.Helper()
	ra, rb := mustRecords(t, a), mustRecords(t, b)
	dedup := func(rs []Record) []Record {
		m := map[Key]Record{}
		for _, r := range rs {
			m[r.Key()] = r
		}
		out := []Record{}
		for _, r := range m {
			out = append(out, r)
		}
		SortRecords(out, nil, nil)
		return out
	}
	ra, rb = dedup(ra), dedup(rb)
	if !bytes.Equal(jsonOf(t, ra), jsonOf(t, rb)) {
		t.Fatalf("records differ: %d vs %d", len(ra), len(rb))
	}
	pa, pb := filepath.Join(t.TempDir(), "a.parquet"), filepath.Join(t.TempDir(), "b.parquet")
	if err := WriteParquet(pa, ra); err != nil {
		t.Fatal(err)
	}
	if err := WriteParquet(pb, rb); err != nil {
		t.Fatal(err)
	}
	da, _ := os.ReadFile(pa)
	db, _ := os.ReadFile(pb)
	if !bytes.Equal(da, db) {
		t.Fatal("parquet files differ")
	}
}

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, r := range v.([]Record) {
		b, err := jsonMarshal(r)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	return buf.Bytes()
}

var _ = errors.New

// chainBench asks twice: the second request quotes the first output; the grade needs both passes to have run.
type chainBench struct{ echoBench }

func (c *chainBench) FollowUp(it Item, first string) (llm.Request, bool, error) {
	return llm.Request{Prompt: "say " + first + "!", Sampling: llm.Sampling{MaxNew: 3}}, true, nil
}

func (c *chainBench) Grade(ctx context.Context, it Item, out string) (Grade, error) {
	ok := out == it.Data.(string)+"!"
	return Grade{Extracted: out, Correct: ok, Score: map[bool]float64{true: 1}[ok]}, nil
}

func TestChainedBenchmarkAsksTwice(t *testing.T) {
	dir := t.TempDir()
	b := loaded(t, &chainBench{echoBench{name: "chain", n: 4}})
	be := &hashBackend{}
	runAll(t, dir, be, []LoadedBench{b}, []string{"full"}, Shard{})
	recs := mustRecords(t, dir)
	if len(recs) != 8 || be.calls.Load() != 16 {
		t.Fatalf("%d records from %d calls, want 8 from 16", len(recs), be.calls.Load())
	}
	for _, r := range recs {
		if !r.Correct || r.FirstOutput == "" || r.OutputTokens != 4 {
			t.Fatalf("chained record %+v", r)
		}
	}
}

// TestRunStopsWhenEndpointDown: once the endpoint stops accepting connections, the run stops after
// DefaultStopAfterUnreachable failures in a row, records none of them (a resumed run redoes them), and resuming
// once the endpoint is back gives the records of a run that never saw it down.
func TestRunStopsWhenEndpointDown(t *testing.T) {
	b := loaded(t, &echoBench{name: "echo", n: 30})
	pol := []string{"full", "p"}
	ref := t.TempDir()
	runAll(t, ref, &hashBackend{}, []LoadedBench{b}, pol, Shard{})

	dir := t.TempDir()
	be := &hashBackend{down: func(n int64) bool { return n > 20 }}
	tasks, err := BuildTasks([]LoadedBench{b}, pol, 7, Shard{}, Overrides{Samples: 2})
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	// One request at a time, so that every answer comes before the endpoint goes down.
	r := &Runner{Backend: be, Store: st, RunID: "r1", BackendID: "hash", Concurrency: 1, GradeConcurrency: 2, RetryErrors: true}
	sum, err := r.Run(context.Background(), tasks)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Stopped || !bytes.Contains([]byte(sum.StopReason), []byte("endpoint unreachable: the last 8 requests could not connect")) {
		t.Fatalf("summary %+v: want stopped on an unreachable endpoint", sum)
	}
	if calls := be.calls.Load(); calls > 20+DefaultStopAfterUnreachable+3 { // 3: one in flight, one queued, one sent
		t.Errorf("%d requests sent, %d after the endpoint went down", calls, calls-20)
	}
	recs := mustRecords(t, dir)
	for _, r := range recs {
		if r.IsError() {
			t.Fatalf("a failure to connect was recorded: %+v", r)
		}
	}
	if len(recs) != 20 || sum.Done != 20 {
		t.Fatalf("%d records (%d done), want the 20 answered before the endpoint went down", len(recs), sum.Done)
	}
	runAll(t, dir, &hashBackend{}, []LoadedBench{b}, pol, Shard{})
	assertSameRecords(t, ref, dir)
}

// TestUnreachableStreakBroken: failures to connect between answered requests are ordinary error records, and the
// run goes on to the end.
func TestUnreachableStreakBroken(t *testing.T) {
	b := loaded(t, &echoBench{name: "echo", n: 30})
	dir := t.TempDir()
	sum := runAll(t, dir, &hashBackend{down: func(n int64) bool { return n%4 != 0 }}, []LoadedBench{b}, []string{"full", "p"}, Shard{})
	if sum.Stopped || sum.Done != sum.Total || sum.Errors == 0 {
		t.Fatalf("summary %+v: want a whole run with error records", sum)
	}
	errs := 0
	for _, r := range mustRecords(t, dir) {
		if r.IsError() {
			errs++
			if r.ErrorKind != llm.ErrKindBackend || !bytes.Contains([]byte(r.Error), []byte("connection refused")) {
				t.Errorf("error record %+v", r)
			}
		}
	}
	if errs != sum.Errors || errs < sum.Total/2 {
		t.Fatalf("%d error records, summary %d of %d", errs, sum.Errors, sum.Total)
	}
}

// sizedBench is echoBench declaring that it sizes prompts in tokens.
type sizedBench struct{ echoBench }

func (b sizedBench) SizesPromptsInTokens() (sized, estimate bool) { return true, b.name != "exact" }

func TestCheckTokenizer(t *testing.T) {
	tok := llm.Tokenizer(nil)
	sized := &sizedBench{echoBench{name: "ruler"}}
	if err := CheckTokenizer(sized, tok, "openai", false); err == nil ||
		!strings.Contains(err.Error(), "benchmark ruler sizes its prompts in the model's tokens, but backend openai") ||
		!strings.Contains(err.Error(), "--tokenizer") || !strings.Contains(err.Error(), "approx_tokens=true") {
		t.Errorf("no tokenizer: %v", err)
	}
	if err := CheckTokenizer(sized, tok, "openai", true); err != nil {
		t.Errorf("approx_tokens: %v", err)
	}
	if err := CheckTokenizer(&echoBench{name: "aime24"}, tok, "openai", false); err != nil {
		t.Errorf("a benchmark that does not size prompts: %v", err)
	}
	if err := CheckTokenizer(sized, wordCounter{}, "openai", false); err != nil {
		t.Errorf("with a tokenizer: %v", err)
	}
	exact := &sizedBench{echoBench{name: "exact"}}
	if err := CheckTokenizer(exact, tok, "openai", true); err == nil || !strings.Contains(err.Error(), "cannot run on estimated lengths") {
		t.Errorf("approx_tokens for a benchmark that cannot estimate: %v", err)
	}
	if !EstimatesTokens(sized, tok) || EstimatesTokens(sized, wordCounter{}) || EstimatesTokens(&echoBench{name: "aime24"}, tok) {
		t.Error("EstimatesTokens")
	}
}

type wordCounter struct{}

func (wordCounter) Encode(s string) []int { return make([]int, len(strings.Fields(s))) }
func (wordCounter) Decode([]int) string   { return "" }
