# Shared plumbing of the one-call GPU session scripts (torch_session.sh, bench_session.sh, tp_session.sh), sourced
# after they set DEADLINE, START (epoch seconds), R (the log folder), SUMMARY and PHASES (the phases asked for).
# TAIL is how many lines of each phase's log go to the summary (default 40).

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
