#!/usr/bin/env bash
# llamacpp_session.sh: the llama.cpp side-by-side of issue #9 on the lent machine's CPU, in one or two device calls.
# Run from the repo root with, built and packed here first (bin/ and build/ are git-ignored; carry both):
#   CGO_ENABLED=0 go build -ldflags "-s -w" -o bin/snapeval ./cmd/snapeval
#   CGO_ENABLED=0 go test -c -o bin/model.test ./backends/cpu/model
#   build/llamacpp.tar.xz: a llama.cpp source snapshot (CPU sources only; see tools/bench/README.md), or the
#   path in LLAMACPP_TAR (for example bin/llamacpp.tar.xz, so that a later call can carry bin/ alone and keep build/)
# Modes:
#   build  untar + cmake (CPU only, native) llama-bench, write the random SmolLM2-135M-shape checkpoint and convert it
#          to GGUF BF16 and Q8_0 with convert_hf_to_gguf.py (outputs stay in build/, kept while the machine is warm)
#   side   llama-bench BF16 and snapeval --peer at 2/16 threads, twice each in turn (the side-by-side alone)
#   final  llama-bench BF16, snapeval --peer at 2/16 threads, a 2/4-thread decode A/B, the full bench at 2 and 16
#   int8   llama-bench Q8_0 and BF16 against snapeval bench --peer --weights int8 and bf16 at 2 and 16 threads
#   bench  build if missing, then llama-bench -p 512 -n 128 -t 2,16 -r 3 (BF16, Q8_0), the model package's tests
#          (bin/model.test, if built) and `snapeval bench --peer` on the same checkpoint at 2 and 16 threads (with
#          and without the AVX-512 tile when the tests pass there), then the full bench (claims) at FULL_THREADS
#          (default 16), one after the other (nothing else runs meanwhile); everything packed into $OUT/results.tgz
set -u
. tools/bench/lib.sh
MODE=${1:-bench}
# The device returns only a handful of files from $OUT: everything is written under $OUT/work and packed into
# $OUT/results.tgz at the end.
FINAL=${OUT:-out}
OUT=$FINAL/work
mkdir -p "$OUT"
ROOT=$(pwd)
LC=$ROOT/build/llama.cpp
CK=$ROOT/build/ckpt
JOBS=${JOBS:-$(nproc)}

build() {
  if [ -x "$LC/build/bin/llama-bench" ] && [ -f "$CK/model-bf16.gguf" ] && [ -f "$CK/model-q8_0.gguf" ]; then
    echo "build: already there"; return 0
  fi
  local t0=$(date +%s)
  rm -rf "$LC" && mkdir -p "$ROOT/build" && tar -C "$ROOT/build" -xJf "${LLAMACPP_TAR:-$ROOT/build/llamacpp.tar.xz}" || return 1
  cmake -S "$LC" -B "$LC/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_CUDA=OFF >"$OUT/cmake.log" 2>&1 \
    || { tail -40 "$OUT/cmake.log"; return 1; }
  cmake --build "$LC/build" --target llama-bench -j "$JOBS" >"$OUT/make.log" 2>&1 || { tail -40 "$OUT/make.log"; return 1; }
  echo "build: llama-bench built in $(( $(date +%s) - t0 )) s"
  python3 tools/bench/random_ckpt.py "$CK/hf" || return 1
  for t in bf16 q8_0; do
    python3 tools/bench/convert.py "$LC" "$CK/hf" --outtype $t --outfile "$CK/model-$t.gguf" >"$OUT/convert-$t.log" 2>&1 \
      || { tail -30 "$OUT/convert-$t.log"; return 1; }
  done
  ls -la "$CK" "$CK/hf"
  echo "build: done in $(( $(date +%s) - t0 )) s"
}

bench() {
  build || { echo "build failed"; return 1; }
  { lscpu; echo; free -g; echo; uname -a; } >"$OUT/machine.txt" 2>&1
  grep -E "Model name|^CPU\(s\)|Thread|Socket|L3|Flags" "$OUT/machine.txt" | cut -c1-300
  local LB=$LC/build/bin/llama-bench
  for t in bf16 q8_0; do
    echo "== llama-bench $t"
    "$LB" -m "$CK/model-$t.gguf" -p 512 -n 128 -t 2,16 -r 3 -o json -oe md >"$OUT/llama-$t.json" 2>"$OUT/llama-$t.md"
    cat "$OUT/llama-$t.md" | grep -v "^load\|^llama_\|^print_info\|^ggml" | tail -8
  done
  # The AVX-512 prefill tile is opt-in until its tests have passed on an AVX-512 CPU: run them here first
  # (bin/model.test from `go test -c -o bin/model.test ./backends/cpu/model`, run in its package directory).
  local AVX512=0
  if [ -x bin/model.test ]; then
    echo "== backends/cpu/model tests on this CPU"
    if (cd backends/cpu/model && ../../../bin/model.test -test.count=1 >"$OUT/model-test.log" 2>&1); then
      echo "PASS"; grep -q avx512f /proc/cpuinfo && AVX512=1
    else
      echo "FAIL"; tail -30 "$OUT/model-test.log"
    fi
  fi
  for th in 2 16; do
    for a in 0 $AVX512; do
      echo "== snapeval bench --peer --threads $th SNAPEVAL_CPU_AVX512=$a"
      SNAPEVAL_CPU_AVX512=$a GOMAXPROCS=$th bin/snapeval bench --peer --model "$CK/hf" --threads $th --json \
        >"$OUT/snapeval-peer-t$th-avx512_$a.json" 2>"$OUT/snapeval-peer-t$th-avx512_$a.log"
      grep -E '"(prefill_tok_s|tg128_tok_s|decode_tok_s|bandwidth_gbs)"' "$OUT/snapeval-peer-t$th-avx512_$a.json" | tr -d '\n'; echo
      [ "$AVX512" = 0 ] && break
    done
  done
  # SnapStream's claims (minutes: 8k and 32k prefills): FULL_THREADS="2 16" for both, "" to skip.
  for th in ${FULL_THREADS-16}; do
    echo "== snapeval bench --threads $th (full: claims too)"
    GOMAXPROCS=$th bin/snapeval bench --model "$CK/hf" --threads $th --json >"$OUT/snapeval-t$th.json" 2>"$OUT/snapeval-t$th.log"
    tail -2 "$OUT/snapeval-t$th.log"
  done
  cp "$CK/hf/config.json" "$OUT/ckpt-config.json"
}

# recheck: one shorter call (~6 min) after kernel work: llama-bench BF16 only, snapeval --peer at 2 and 16 threads
# (the 16-thread one twice, the second with a CPU profile of our binary), BenchmarkDecodeBatch at 16 and 2
# threads alternating bin/model.test with bin/model-A.test (a baseline build, if present), then the full bench
# (claims) at 16 threads.
recheck() {
  build || { echo "build failed"; return 1; }
  machine "$OUT"
  echo "== llama-bench bf16"
  "$LC/build/bin/llama-bench" -m "$CK/model-bf16.gguf" -p 512 -n 128 -t 2,16 -r 3 -o json -oe md \
    >"$OUT/llama-bf16.json" 2>"$OUT/llama-bf16.md"
  grep -v "^load\|^llama_\|^print_info\|^ggml" "$OUT/llama-bf16.md" | tail -6
  for run in t2 t16 t16-prof; do
    th=${run#t}; th=${th%-prof}; prof=()
    [ "$run" = t16-prof ] && prof=(--cpuprofile "$OUT/peer-t16.prof")
    echo "== snapeval bench --peer --threads $th ${prof[*]}"
    GOMAXPROCS=$th bin/snapeval bench --peer --model "$CK/hf" --threads $th --json "${prof[@]}" \
      >"$OUT/snapeval-peer-$run.json" 2>"$OUT/snapeval-peer-$run.log"
    grep -E '"(prefill_tok_s|tg128_tok_s|decode_tok_s|decode_batch_tok_s|bandwidth_gbs)"' "$OUT/snapeval-peer-$run.json" | tr -d '\n'; echo
  done
  decode_ab "$OUT" 2 "16 2" DecodeBatch
  echo "== snapeval bench --threads 16 (full: claims too)"
  GOMAXPROCS=16 bin/snapeval bench --model "$CK/hf" --threads 16 --json >"$OUT/snapeval-t16.json" 2>"$OUT/snapeval-t16.log"
  grep -E '"(table5_throughput_ratio|flat_ratio_32k_1k|selection_share_8k|selection_share_32k|decode_batch_tok_s)"' "$OUT/snapeval-t16.json" | tr -d '\n'; echo
}

# side_by_side SUFFIX: llama-bench BF16 (pp512, tg128 at 2 and 16 threads), then `snapeval bench --peer` at 2
# and 16 threads; outputs llama-bf16SUFFIX.{json,md} and snapeval-peer-t<N>SUFFIX.{json,log}.
side_by_side() {
  local sfx=$1 th
  echo "== llama-bench bf16 $sfx"
  "$LC/build/bin/llama-bench" -m "$CK/model-bf16.gguf" -p 512 -n 128 -t 2,16 -r 3 -o json -oe md \
    >"$OUT/llama-bf16$sfx.json" 2>"$OUT/llama-bf16$sfx.md"
  grep -v "^load\|^llama_\|^print_info\|^ggml" "$OUT/llama-bf16$sfx.md" | tail -6
  for th in 2 16; do
    echo "== snapeval bench --peer --threads $th $sfx"
    GOMAXPROCS=$th bin/snapeval bench --peer --model "$CK/hf" --threads $th --json \
      >"$OUT/snapeval-peer-t$th$sfx.json" 2>"$OUT/snapeval-peer-t$th$sfx.log"
    grep -E '"(bandwidth_gbs|prefill_tok_s|tg128_tok_s|decode_tok_s|decode_batch_tok_s|decode_bandwidth_fraction)"' "$OUT/snapeval-peer-t$th$sfx.json" | tr -d '\n'; echo
  done
}

# final: one call (~7 min with the llama.cpp build) after a change of the 2-thread path: llama-bench BF16,
# `snapeval bench --peer` at 2 and 16 threads, BenchmarkDecodeBatch (1, 4, 8 sequences) at 2 and 4 threads alternating
# bin/model-A.test (a baseline build) with bin/model.test, then the full bench (claims) at 2 and at 16 threads.
final() {
  build || { echo "build failed"; return 1; }
  machine "$OUT"
  model_tests "$OUT"
  side_by_side ""
  decode_ab "$OUT" 3 "2 4" 'DecodeBatch/^seqs=(1|4|8)$'
  for th in 2 16; do
    echo "== snapeval bench --threads $th (full: claims too)"
    s=$(date +%s)
    GOMAXPROCS=$th bin/snapeval bench --model "$CK/hf" --threads $th --json >"$OUT/snapeval-t$th.json" 2>"$OUT/snapeval-t$th.log"
    echo "$(( $(date +%s) - s )) s: $(grep -E '"(table5_throughput_ratio|flat_ratio_32k_1k|selection_share_8k|selection_share_32k|decode_batch_tok_s|decode_bandwidth_fraction)"' "$OUT/snapeval-t$th.json" | tr -d '\n')"
  done
  cp "$CK/hf/config.json" "$OUT/ckpt-config.json"
}

# int8: llama-bench Q8_0 and BF16 against `snapeval bench --peer` with --weights int8 and bf16, at 2 and 16
# threads, one after the other (~5 min with the llama.cpp build).
int8() {
  build || { echo "build failed"; return 1; }
  machine "$OUT"
  model_tests "$OUT"
  for t in q8_0 bf16; do
    echo "== llama-bench $t"
    "$LC/build/bin/llama-bench" -m "$CK/model-$t.gguf" -p 512 -n 128 -t 2,16 -r 3 -o json -oe md \
      >"$OUT/llama-$t.json" 2>"$OUT/llama-$t.md"
    grep -v "^load\|^llama_\|^print_info\|^ggml" "$OUT/llama-$t.md" | tail -4
  done
  for th in 2 16; do
    for w in int8 bf16; do
      echo "== snapeval bench --peer --threads $th --weights $w"
      GOMAXPROCS=$th bin/snapeval bench --peer --model "$CK/hf" --threads $th --weights $w --json \
        >"$OUT/snapeval-peer-t$th-$w.json" 2>"$OUT/snapeval-peer-t$th-$w.log"
      grep -E '"(prefill_tok_s|tg128_tok_s|decode_tok_s|decode_batch_tok_s|weight_bytes)"' "$OUT/snapeval-peer-t$th-$w.json" | tr -d '\n'; echo
    done
  done
}

# side: the side-by-side alone (~4 min with the llama.cpp build): llama-bench BF16 then `snapeval bench --peer` at 2
# and 16 threads, and the same again (SIDE_ROUNDS, default 2), so that each side is measured with the other in between.
side() {
  build || { echo "build failed"; return 1; }
  machine "$OUT"
  local i
  for i in $(seq 1 "${SIDE_ROUNDS:-2}"); do side_by_side "-$i"; done
  cp "$CK/hf/config.json" "$OUT/ckpt-config.json"
}

case "$MODE" in
  build) build; rc=$? ;;
  bench) bench; rc=$? ;;
  recheck) recheck; rc=$? ;;
  int8) int8; rc=$? ;;
  final) final; rc=$? ;;
  side) side; rc=$? ;;
  *) echo "usage: $0 build|bench|recheck|int8|final|side"; exit 2 ;;
esac
tar -C "$FINAL" -czf "$FINAL/results.tgz" work && rm -rf "$OUT"
exit $rc
