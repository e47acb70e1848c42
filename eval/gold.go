package eval

// GoldAnswerer is implemented by every benchmark: Gold writes, for one item, an output that the benchmark's
// grader must accept (the gold answer in the form a model would give it), so that the contract suite
// (eval/benchtest) can check that the gold answer grades correct. ok is false when item is not one of the
// benchmark's items or holds no gold answer.
type GoldAnswerer interface {
	Gold(item Item) (output string, ok bool)
}
