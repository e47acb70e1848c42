package torch

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/snapeval/snapeval/compress"
)

// fakeBench is the fake worker's `bench --spec SPEC --out RESULT`: fixed timings for every figure of the spec, the
// KV bytes of the formula for the model's config.json, so that the Go side's report is tested with no Python.
// FAKE_BENCH_FAIL=id makes that figure fail; FAKE_BENCH_KV=n adds n bytes to every reported KV size;
// FAKE_BENCH_FATAL=msg writes only a setup error; FAKE_BENCH_EXIT=n exits n after writing the result.
func fakeBench(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	specPath := fs.String("spec", "", "")
	out := fs.String("out", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	write := func(v any) {
		b, _ := json.Marshal(v)
		os.WriteFile(*out, b, 0o644)
	}
	if msg := os.Getenv("FAKE_BENCH_FATAL"); msg != "" {
		write(map[string]any{"fatal": msg})
		return 2
	}
	var spec struct {
		Model   string           `json:"model"`
		Figures []map[string]any `json:"figures"`
	}
	b, err := os.ReadFile(*specPath)
	if err != nil || json.Unmarshal(b, &spec) != nil {
		return 3
	}
	cfg, err := os.ReadFile(filepath.Join(spec.Model, "config.json"))
	if err != nil {
		return 4
	}
	sh, err := parseShape("config.json", cfg)
	if err != nil {
		return 5
	}
	extra := int64(envInt("FAKE_BENCH_KV", 0))
	kv := func(capacity int) int64 {
		return compress.KVBytes(capacity, sh.Layers, sh.KVHeads, sh.HeadDim, 2) + extra
	}
	planOf := func(v any) wirePlan {
		var p wirePlan
		b, _ := json.Marshal(v)
		json.Unmarshal(b, &p)
		return p
	}
	figs := map[string]any{}
	var order []string
	for _, f := range spec.Figures {
		id, kind := f["id"].(string), f["kind"].(string)
		order = append(order, id)
		res := map[string]any{"ok": true, "peak_bytes": 1 << 30, "spec": map[string]any{"id": id, "policy": f["policy"], "kv_budget_bytes": f["kv_budget_bytes"]}}
		switch kind {
		case "bandwidth":
			res["gbs"] = []float64{2000, 2500, 2400}
		case "decode":
			p := planOf(f["plan"])
			res["context"], res["capacity"], res["step_ms"], res["replay_ms"] = p.PromptLen, p.Capacity, []float64{10, 9, 11}, 8.5
			res["live_slots_mean"], res["slot_bytes"] = float64(p.PromptLen+10), kv(1)-extra
			res["static"] = map[string]any{"cuda_graphs": true, "graph_error": "", "decode_attn": map[string]any{"1": "triton"},
				"triton_check": map[string]any{"1": map[string]any{"ok": true, "max_err": 0.004, "tol": 0.02}}}
		case "flat":
			var ctx, caps []int
			var kvs []int64
			for _, c := range f["contexts"].([]any) {
				p := planOf(c.(map[string]any)["plan"])
				ctx, caps, kvs = append(ctx, p.PromptLen), append(caps, p.Capacity), append(kvs, kv(p.Capacity))
			}
			a, b := strconv.Itoa(ctx[0]), strconv.Itoa(ctx[1])
			res["contexts"], res["capacity"], res["kv_bytes"] = ctx, caps, kvs
			res["rounds"] = []map[string]float64{{a: 10, b: 10.4}, {a: 10, b: 10.2}, {a: 10.2, b: 10.2}}
		case "table5":
			var sides []map[string]any
			for _, s := range f["sides"].([]any) {
				m := s.(map[string]any)
				p := planOf(m["plan"])
				sides = append(sides, map[string]any{"side": m["side"], "batch": m["batch"], "capacity": p.Capacity, "prompt": p.PromptLen, "kv_bytes_seq": kv(p.Capacity)})
			}
			res["sides"] = sides
			res["rounds"] = []map[string]float64{{"full": 20, "snapstream": 22}, {"full": 21, "snapstream": 22}, {"full": 20, "snapstream": 24}}
		case "vs_transformers":
			var cfgs []map[string]any
			for _, c := range f["configs"].([]any) {
				m := c.(map[string]any)
				p := planOf(m["plan"])
				cfgs = append(cfgs, map[string]any{"batch": m["batch"], "context": p.PromptLen, "peak_bytes": map[string]int64{"snapeval": 2 << 30, "transformers": 3 << 30},
					"rounds": []map[string]float64{{"snapeval_ms": 10, "transformers_ms": 30}, {"snapeval_ms": 12, "transformers_ms": 30}}})
			}
			res["configs"] = cfgs
		case "prefill":
			plans := f["plans"].(map[string]any)
			full, snap := planOf(plans["full"]), planOf(plans["snapstream"])
			rd := []map[string]float64{{"full": 100, "snapstream": 103}, {"full": 100, "snapstream": 104}}
			if f["transformers"] == true {
				rd[0]["transformers"], rd[1]["transformers"] = 90, 92
			}
			res["prompt"], res["rounds"] = full.PromptLen, rd
			res["kv_bytes"] = map[string]int64{"full": kv(full.Capacity), "snapstream": kv(snap.Capacity)}
			res["capacity"] = map[string]int{"full": full.Capacity, "snapstream": snap.Capacity}
			res["side_peak_bytes"] = map[string]int64{"full": 5 << 30, "snapstream": 4 << 30}
		case "profile":
			top := []map[string]any{{"name": "void gemv_kernel<...>", "count": 96, "self_device_us": 4000, "cpu_us": 10}}
			res["decode_graph"] = map[string]any{"table": "Name  Self CUDA\ngemv  4 ms", "top": top}
			res["prefill"] = map[string]any{"table": "Name  Self CUDA\nflash  900 ms", "top": top}
		}
		if id == os.Getenv("FAKE_BENCH_FAIL") {
			res = map[string]any{"ok": false, "error": "OutOfMemoryError: CUDA out of memory (fake)"}
		}
		figs[id] = res
	}
	write(map[string]any{"info": map[string]any{"gpu": "Fake GPU", "torch": "0.0-fake", "transformers": "0.0-fake", "cuda": "13.0",
		"dtype": "bfloat16", "layers": sh.Layers, "kv_heads": sh.KVHeads, "head_dim": sh.HeadDim, "elem_bytes": 2, "params": 500000000,
		"weight_bytes": 1000000000, "weight_bytes_read": 900000000, "device_memory_bytes": 80 << 30},
		"figures": figs, "order": order, "elapsed_s": 12.5, "load_s": 3})
	if n := envInt("FAKE_BENCH_EXIT", 0); n != 0 {
		fmt.Fprintln(os.Stderr, "fake bench: exiting", n)
		return n
	}
	return 0
}
