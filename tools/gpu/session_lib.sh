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

# kill_mid_run DIR BASE PIDRE LOGRE WHAT RUNARGS...: runs `snapeval run RUNARGS --out DIR` in the background; once 20
# records are written, SIGKILLs the pid given by the last number of the last match of the grep pattern PIDRE in
# DIR/torch-worker.log
# (WHAT names it in the output); after the run, prints the log lines matching LOGRE and compares DIR with BASE (the
# undisturbed run of the same matrix), which must hold the same records. Fails when no kill landed mid-run.
kill_mid_run() {
  local D=$1 base=$2 pidre=$3 logre=$4 what=$5
  shift 5
  "$SNAP" run "$@" --out "$D" --quiet --no-report &
  local pid=$! killed=""
  for _ in $(seq 1 600); do
    sleep 0.2
    local n=0
    [ -f "$D/records.jsonl" ] && n=$(wc -l < "$D/records.jsonl")
    if [ -z "$killed" ] && [ "$n" -ge 20 ]; then
      local wp
      wp=$(grep -o "$pidre" "$D/torch-worker.log" | tail -1 | grep -oE '[0-9]+' | tail -1)
      if [ -n "$wp" ]; then kill -9 "$wp" && killed=$wp && echo "killed $what (pid $wp) after $n records"; fi
    fi
    kill -0 "$pid" 2>/dev/null || break
  done
  wait "$pid"
  echo "run exit $?"
  [ -n "$killed" ] || { echo "no kill landed mid-run: the test proves nothing"; return 1; }
  grep -E "$logre" "$D/torch-worker.log" | head -20
  [ -d "$base" ] || { echo "no undisturbed run to compare with at $base"; return 1; }
  "$CHECK" compare -a "$base" -b "$D" -expect-same -json "$R/kill.json"
}
export -f kill_mid_run

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
