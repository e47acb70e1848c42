#!/usr/bin/env bash
# ab_session.sh: a short device call (~4 min) that checks a kernel change on the lent machine's CPU without
# llama.cpp: the model package's tests, BenchmarkDecodeBatch alternating a baseline test binary (A) with the
# current one (B) at 16 and 2 threads, `snapeval bench --peer` at 16 and 2 threads, the full bench at 16.
# Build here first (bin/ is git-ignored; carry ["bin"]):
#   CGO_ENABLED=0 go build -ldflags "-s -w" -o bin/snapeval ./cmd/snapeval
#   CGO_ENABLED=0 go test -c -o bin/model.test ./backends/cpu/model
#   git worktree add /tmp/base REV && (cd /tmp/base && CGO_ENABLED=0 go test -c -o /tmp/model-A.test ./backends/cpu/model) &&
#     cp /tmp/model-A.test bin/model-A.test
# then, on the device: OUT=$OUT bash tools/bench/ab_session.sh   (everything lands in $OUT/results.tgz)
set -u
FINAL=${OUT:-out}
W=$FINAL/w
mkdir -p "$W"
python3 tools/bench/random_ckpt.py build/ckpt/hf >"$W/ckpt.log" 2>&1 || { tail "$W/ckpt.log"; exit 1; }
lscpu >"$W/machine.txt"
grep -E "Model name|^CPU\(s\)" "$W/machine.txt"
(cd backends/cpu/model && ../../../bin/model.test -test.count=1 >"$W/model-test.log" 2>&1; echo "model tests rc=$?")
for cpu in 16 2; do
  for round in 1 2; do
    for v in A B; do
      t=bin/model.test
      [ $v = A ] && t=bin/model-A.test
      [ -x "$t" ] || continue
      f=$W/decodebatch-cpu$cpu-$v-$round.txt
      (cd backends/cpu/model && "../../../$t" -test.run '^$' -test.bench 'DecodeBatch/^seqs=(1|4|8)$' -test.cpu $cpu -test.benchtime 1s) >"$f" 2>&1
      echo "$v cpu$cpu round $round: $(grep tok/s "$f" | awk '{print $1, $3, $(NF-1)}' | sed 's/BenchmarkDecodeBatch\///' | tr '\n' ' ')"
    done
  done
done
for th in 16 2; do
  GOMAXPROCS=$th bin/snapeval bench --peer --model build/ckpt/hf --threads $th --json >"$W/peer-t$th.json" 2>"$W/peer-t$th.log"
  grep -E '"(bandwidth_gbs|prefill_tok_s|decode_tok_s|tg128_tok_s|decode_bandwidth_fraction)"' "$W/peer-t$th.json" | tr -d '\n'; echo
done
GOMAXPROCS=16 bin/snapeval bench --model build/ckpt/hf --threads 16 --json >"$W/full-t16.json" 2>"$W/full-t16.log"
grep -E '"(table5_throughput_ratio|flat_ratio_32k_1k|selection_share_8k|selection_share_32k|decode_batch_tok_s|decode_bandwidth_fraction)"' "$W/full-t16.json" | tr -d '\n'; echo
tar -C "$FINAL" -czf "$FINAL/results.tgz" w && rm -rf "$W"
