package longbench1

import (
	"slices"

	"github.com/snapeval/snapeval/eval"
)

// Aggregate is LongBench's official summary (registered as the benchmark's eval.Aggregate), x100 like the
// paper and the README leaderboard:
//
//   - per category, the mean of its English tasks' scores (and the code tasks for Code Completion), a task's
//     score being the mean of its items' scores: the leaderboard's English columns, and "Avg", their mean;
//   - the same over the Chinese tasks ("zh ..." and "zh Avg", the code tasks counting in both languages), when
//     Chinese tasks were run;
//   - "All tasks": the mean of every task's score;
//   - for LongBench-E (items tagged with a length interval), "0-4k", "4-8k" and "8k+": the mean over tasks of
//     each task's score on the items of that interval (eval.py --e's per-task buckets, averaged).
//
// A category or average none of whose tasks were run is left out.
func Aggregate(items []eval.ItemScore) []eval.Metric {
	type acc struct {
		sum float64
		n   int
	}
	byTask := map[string]*acc{}
	byBucket := map[[2]string]*acc{}
	for _, it := range items {
		t := it.Tags["task"]
		if _, ok := TaskByName(t); !ok {
			continue
		}
		a := byTask[t]
		if a == nil {
			a = &acc{}
			byTask[t] = a
		}
		a.sum += it.Score
		a.n++
		if bk, ok := it.Tags["length"]; ok {
			k := [2]string{t, bk}
			if byBucket[k] == nil {
				byBucket[k] = &acc{}
			}
			byBucket[k].sum += it.Score
			byBucket[k].n++
		}
	}
	taskScore := func(t string) (float64, int, bool) {
		a := byTask[t]
		if a == nil || a.n == 0 {
			return 0, 0, false
		}
		return 100 * a.sum / float64(a.n), a.n, true
	}
	var out []eval.Metric
	// mean of task scores over the tasks of cat in lang (code tasks always in)
	category := func(cat, lang string) (eval.Metric, bool) {
		var m eval.Metric
		k := 0
		for _, t := range Tasks {
			if t.Category != cat || (t.Lang != lang && t.Lang != "code") {
				continue
			}
			if s, n, ok := taskScore(t.Name); ok {
				m.Value += s
				m.Items += n
				k++
			}
		}
		if k == 0 {
			return m, false
		}
		m.Value /= float64(k)
		return m, true
	}
	for _, lang := range []string{"en", "zh"} {
		prefix := ""
		if lang == "zh" {
			prefix = "zh "
		}
		// a language is shown when one of its own (non-code) tasks ran
		ran := slices.ContainsFunc(Tasks, func(t Task) bool { _, _, ok := taskScore(t.Name); return ok && t.Lang == lang })
		if !ran {
			continue
		}
		var avg eval.Metric
		k := 0
		for _, cat := range Categories {
			m, ok := category(cat, lang)
			if !ok {
				continue
			}
			m.Name = prefix + cat
			out = append(out, m)
			avg.Value += m.Value
			avg.Items += m.Items
			k++
		}
		avg.Name = prefix + "Avg"
		avg.Value /= float64(k)
		out = append(out, avg)
	}
	all := eval.Metric{Name: "All tasks"}
	k := 0
	for _, t := range Tasks {
		if s, n, ok := taskScore(t.Name); ok {
			all.Value += s
			all.Items += n
			k++
		}
	}
	if k == 0 {
		return out
	}
	all.Value /= float64(k)
	out = append(out, all)
	for _, bk := range Buckets {
		m := eval.Metric{Name: bk}
		k := 0
		for _, t := range Tasks {
			if a := byBucket[[2]string{t.Name, bk}]; a != nil && a.n > 0 {
				m.Value += 100 * a.sum / float64(a.n)
				m.Items += a.n
				k++
			}
		}
		if k > 0 {
			m.Value /= float64(k)
			out = append(out, m)
		}
	}
	return out
}
