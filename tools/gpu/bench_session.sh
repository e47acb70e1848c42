#!/usr/bin/env bash
# One GPU session for the torch backend's performance figures (issue #21): everything in one device call, results
# packed under $OUT.
#
#   tools/gpu/bench_session.sh [PHASE...]      (default: env graphs bench, within DEADLINE seconds)
#
# Phases:
#   env     the machine: nvidia-smi (summary and -q), CPU, memory, Python, torch, CUDA, cuDNN, transformers, snapeval
#   graphs  the worker's static-decode tests on this machine's torch (worker/tests/test_static.py: the CUDA graph
#           path against the eager per-sequence path, float32 with TF32 off; pool, compaction, conformance fixtures;
#           TritonTest: the decode_attn=triton kernel against SDPA and splitk's emulation, in a CUDA graph, in the engine)
#           and its transformers glue on a tiny random llama (test_hf_bench.py: the decode step of transformers' own
#           model captured in CUDA graphs, the bench's transformers side), seconds before the bench relies on them
#   bench   snapeval bench --backend torch --shape llama3.1-8b --json (every figure of issue #21 in one worker
#           process; --deadline is what is left of DEADLINE), then the table re-made from the kept raw result (so a
#           bench killed at its limit still reports what it measured)
#
# It needs, in $CARRY (default .devcarry), built on the development machine (tools/gpu/README.md):
#   bin/snapeval(.gz)   a CGO_ENABLED=0 build of ./cmd/snapeval (the worker's Python code is embedded in it)
#   REVISION            git rev-parse HEAD of that build (machine.txt records it)
#   repo/               backends/torch, backends/cpu/testdata, compress/testdata, tools/train/tinyllama.py and
#                       tools/gpu of the commit under test (for the graphs phase)
# and a python3 with torch and transformers (the lent GPU machines have them; no network is needed).
# Results: $OUT/summary.txt (the table and each phase's tail), $OUT/bench.json (the report), $OUT/bench-raw.json
# (the worker's raw result), $OUT/machine.txt and $OUT/results.tgz (every log); keep them under
# tools/gpu/results/<date>-bench/.
set -u -o pipefail
CARRY=${CARRY:-.devcarry}
OUT=${OUT:-/tmp/bench-session-out}
DEADLINE=${DEADLINE:-540}
EXTRA=${BENCH_ARGS:-}
R=/tmp/bench-session
TAIL=40
# shellcheck source=session_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/session_lib.sh" || exit 2
session_start snapeval
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PHASES=("$@")
[ ${#PHASES[@]} -eq 0 ] && PHASES=(env graphs bench)

env_info() {
  {
    date -u +%FT%TZ
    uname -a
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.memory,power.limit,pcie.link.gen.max --format=csv
    nvidia-smi
    python3 -c 'import sys, torch, transformers; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "transformers", transformers.__version__, "gpu", torch.cuda.get_device_name(0), "sm", torch.cuda.get_device_properties(0).multi_processor_count)'
    python3 -c 'import triton; print("triton", triton.__version__)' 2>/dev/null || echo "triton: not importable"
    "$SNAP" version
    echo "revision: $(cat "$CARRY/REVISION" 2>/dev/null || echo unknown)"
    lscpu | head -20
    free -g
    nvidia-smi -q
  } > "$R/machine.txt" 2>&1
  head -n 40 "$R/machine.txt"
}

graphs() { cd "$REPO/backends/torch/worker" && python3 -m unittest -v tests.test_static tests.test_splitk tests.test_hf_bench; }

bench() {
  local l=$(( $(left) - 90 ))  # snapeval stops its worker 60 s after --deadline: within this phase's limit
  "$SNAP" bench --backend torch --shape llama3.1-8b --json --raw "$R/bench-raw.json" --deadline "${l}s" $EXTRA \
    > "$R/bench.json" 2> "$R/bench-progress.log"
  local rc=$?
  echo "bench exit $rc"
  tail -n 30 "$R/bench-progress.log"
  if [ -s "$R/bench-raw.json" ]; then
    "$SNAP" bench --backend torch --report "$R/bench-raw.json" > "$R/bench.txt" 2>&1
    cat "$R/bench.txt"
  else
    echo "no raw result: the worker did not get to its first figure"
  fi
  return $rc
}

export -f env_info graphs bench left
export REPO R SNAP START DEADLINE EXTRA CARRY

want env && phase env 30 env_info
want graphs && phase graphs 150 graphs  # Triton compiles its kernels for each shape TritonTest tries
want bench && phase bench 600 bench
note "total $(( $(date +%s) - START ))s"
[ -f "$R/bench.txt" ] && { echo "=== the bench's table (bench.txt)"; cat "$R/bench.txt"; } >> "$SUMMARY"
for f in bench.json bench-raw.json bench.txt machine.txt; do [ -f "$R/$f" ] && cp "$R/$f" "$OUT/"; done
tar czf "$OUT/results.tgz" -C "$R" . 2>/dev/null
cp "$SUMMARY" "$OUT/summary.txt"
