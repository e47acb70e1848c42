# Shared plumbing of the one-call GPU session scripts (torch_session.sh, bench_session.sh, tp_session.sh,
# policies_session.sh), sourced after they set CARRY, OUT, DEADLINE and R (the log folder); session_start then sets
# REPO, START (epoch seconds), SUMMARY, SNAP and CHECK. Each script sets PHASES (the phases asked for) before its
# phases run. TAIL is how many lines of each phase's log go to the summary (default 40).

# session_start BIN...: the carried repo, the log and output folders, the environment every phase runs in, the
# carried binaries BIN... unpacked (they travel gzipped), the clock and an empty summary.
session_start() {
  REPO=$(cd "$CARRY/repo" && pwd)
  mkdir -p "$R" "$OUT" "$CARRY/bin"
  export SNAPEVAL_CACHE=/tmp/snapeval-cache PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
  START=$(date +%s)
  local b
  for b in "$@"; do
    if [ -f "$CARRY/bin/$b.gz" ] && [ ! -x "$CARRY/bin/$b" ]; then gunzip -c "$CARRY/bin/$b.gz" > "$CARRY/bin/$b" && chmod +x "$CARRY/bin/$b"; fi
  done
  SNAP=$(cd "$CARRY/bin" && pwd)/snapeval
  CHECK=$(cd "$CARRY/bin" && pwd)/gpucheck
  SUMMARY=$R/summary.txt
  : > "$SUMMARY"
}

# shape_model: a model folder of Llama-3.1-8B's shape for random-weight runs (the carried config.json, and the
# shipped tokenizer for the Go side: the prompts are token ids); prints its path.
shape_model() {
  local M=/tmp/llama31-8b-shape
  mkdir -p "$M"
  cp "$REPO/tools/gpu/llama31-8b-shape/config.json" "$REPO/models/snaptiny/tokenizer.json" "$M/"
  echo "$M"
}
export -f shape_model

note() { echo "$*" | tee -a "$SUMMARY"; }
left() { echo $((DEADLINE - ($(date +%s) - START))); }

# phase NAME LIMIT CMD...: runs CMD with a time limit if the deadline allows, logs to $R/NAME.log.
phase() {
  local name=$1 limit=$2
  shift 2
  local l
  l=$(left)
  if [ "$l" -lt 20 ]; then note "=== $name: skipped (deadline)"; return 0; fi
  [ "$limit" -gt "$l" ] && limit=$l
  echo "=== $name (limit ${limit}s, $(date -u +%T))"
  local t0
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" bash -c "$*" > "$R/$name.log" 2>&1
  local rc=$?
  note "=== $name: rc=$rc in $(( $(date +%s) - t0 ))s"
  tail -n "${TAIL:-40}" "$R/$name.log" | tee -a "$SUMMARY"
}

want() { for p in "${PHASES[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
