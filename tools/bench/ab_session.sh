#!/usr/bin/env bash
# ab_session.sh: a short device call (~4 min) that checks a kernel change on the lent machine's CPU without
# llama.cpp: the model package's tests, BenchmarkDecodeBatch alternating a baseline test binary (A) with the
# current one (B) at 16 and 2 threads, `snapeval bench --peer` at 16 and 2 threads, the full bench at 16
# (FULL16=n runs of it; FULL2=1 adds one at 2 threads; FULLX="8 12" one at each of those).
# Build here first (bin/ is git-ignored; carry ["bin"]):
#   CGO_ENABLED=0 go build -ldflags "-s -w" -o bin/snapeval ./cmd/snapeval
#   CGO_ENABLED=0 go test -c -o bin/model.test ./backends/cpu/model
#   git worktree add /tmp/base REV && (cd /tmp/base && CGO_ENABLED=0 go test -c -o /tmp/model-A.test ./backends/cpu/model) &&
#     cp /tmp/model-A.test bin/model-A.test
# then, on the device: OUT=$OUT bash tools/bench/ab_session.sh   (everything lands in $OUT/results.tgz)
set -u
. tools/bench/lib.sh
FINAL=${OUT:-out}
W=$FINAL/w
mkdir -p "$W"
python3 tools/bench/random_ckpt.py build/ckpt/hf >"$W/ckpt.log" 2>&1 || { tail "$W/ckpt.log"; exit 1; }
machine "$W"
model_tests "$W"
decode_ab "$W" 2 "16 2" 'DecodeBatch/^seqs=(1|4|8)$'
for th in 16 2; do
  GOMAXPROCS=$th bin/snapeval bench --peer --model build/ckpt/hf --threads $th --json >"$W/peer-t$th.json" 2>"$W/peer-t$th.log"
  grep -E '"(bandwidth_gbs|prefill_tok_s|decode_tok_s|tg128_tok_s|decode_bandwidth_fraction)"' "$W/peer-t$th.json" | tr -d '\n'; echo
done
# FULL16=n full benches at 16 threads (default 1); FULL2=1 adds one at 2 threads (a few minutes more).
full() {
  local th=$1 f=$2
  s=$(date +%s)
  GOMAXPROCS=$th bin/snapeval bench --model build/ckpt/hf --threads $th --json >"$W/$f.json" 2>"$W/$f.log"
  echo "$f ($(( $(date +%s) - s )) s): $(grep -E '"(table5_throughput_ratio|flat_ratio_32k_1k|selection_share_8k|selection_share_32k|decode_batch_tok_s|decode_bandwidth_fraction)"' "$W/$f.json" | tr -d '\n')"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d["table5"]; print("  table5 full %.1f ms, snap %.1f ms, rounds %s; flat rounds %s" % (t["full_step_ms"], t["snap_step_ms"], " ".join("%.2f" % x for x in t.get("round_ratios") or []), " ".join("%.2f" % x for x in d.get("flat_round_ratios") or [])))' "$W/$f.json"
}
for i in $(seq 1 "${FULL16:-1}"); do full 16 full-t16-$i; done
[ "${FULL2:-0}" = 1 ] && full 2 full-t2
# FULLX="8 12" adds one full bench at each of those thread counts.
for th in ${FULLX:-}; do full "$th" "full-t$th"; done
tar -C "$FINAL" -czf "$FINAL/results.tgz" w && rm -rf "$W"
