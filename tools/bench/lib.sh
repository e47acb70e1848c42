# lib.sh: helpers shared by the device-call scripts (sourced from the repo root; nothing runs on its own).

# machine DIR: the CPU, memory and kernel into DIR/machine.txt; prints the model name and CPU count.
machine() {
  { lscpu; echo; free -g; echo; uname -a; } >"$1/machine.txt" 2>&1
  grep -E "Model name|^CPU\(s\)" "$1/machine.txt"
}

# model_tests DIR: the model package's tests (bin/model.test, if built) into DIR/model-test.log; prints rc and
# returns it.
model_tests() {
  [ -x bin/model.test ] || return 0
  (cd backends/cpu/model && ../../../bin/model.test -test.count=1 >"$1/model-test.log" 2>&1)
  local rc=$?
  echo "model tests rc=$rc"
  return $rc
}

# decode_ab DIR ROUNDS "CPUS" BENCH: BenchmarkDecodeBatch runs matching BENCH (a -test.bench pattern) at each of
# CPUS, ROUNDS rounds, alternating bin/model-A.test (a baseline build, if present) with bin/model.test; each
# output into DIR/decodebatch-cpu<N>-<A|B>-<round>.txt, one summary line each.
decode_ab() {
  local dir=$1 rounds=$2 cpus=$3 bench=$4 round cpu v t f
  for round in $(seq 1 "$rounds"); do
    for cpu in $cpus; do
      for v in A B; do
        t=bin/model.test; [ $v = A ] && t=bin/model-A.test
        [ -x "$t" ] || continue
        f="$dir/decodebatch-cpu$cpu-$v-$round.txt"
        (cd backends/cpu/model && "../../../$t" -test.run '^$' -test.bench "$bench" -test.cpu "$cpu" -test.benchtime 1s) >"$f" 2>&1
        echo "$v cpu$cpu round $round: $(grep tok/s "$f" | awk '{print $1, $3, $(NF-1)}' | sed 's/BenchmarkDecodeBatch\///' | tr '\n' ' ')"
      done
    done
  done
}
