package main

// The backends and benchmarks compiled into snapeval register themselves by name.
import (
	_ "github.com/snapeval/snapeval/backends/cpu"       // backend "cpu"
	_ "github.com/snapeval/snapeval/backends/openai"    // backend "openai"
	_ "github.com/snapeval/snapeval/backends/sn40l"     // backend "sn40l"
	_ "github.com/snapeval/snapeval/backends/torch"     // backend "torch"
	_ "github.com/snapeval/snapeval/eval/aime"          // benchmark "aime24"
	_ "github.com/snapeval/snapeval/eval/infinitebench" // benchmark "infinitebench"
	_ "github.com/snapeval/snapeval/eval/livecodebench" // benchmark "livecodebench"
	_ "github.com/snapeval/snapeval/eval/longbench"     // benchmark "longbench-v2"
	_ "github.com/snapeval/snapeval/eval/longbench1"    // benchmark "longbench" (v1 and LongBench-E)
	_ "github.com/snapeval/snapeval/eval/ruler"         // benchmark "ruler"
	_ "github.com/snapeval/snapeval/eval/synthetic"     // benchmark "synth"
)
