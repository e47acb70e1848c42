#!/usr/bin/env bash
# llamacpp_session.sh: the llama.cpp side-by-side of issue #9 on the lent machine's CPU, in one or two device calls.
# Run from the repo root with, built and packed here first (bin/ and build/ are git-ignored; carry both):
#   CGO_ENABLED=0 go build -ldflags "-s -w" -o bin/snapeval ./cmd/snapeval
#   build/llamacpp.tar.xz: a llama.cpp source snapshot (CPU sources only; see tools/bench/README.md)
# Modes:
#   build  untar + cmake (CPU only, native) llama-bench, write the random SmolLM2-135M-shape checkpoint and convert it
#          to GGUF BF16 and Q8_0 with convert_hf_to_gguf.py (outputs stay in build/, kept while the machine is warm)
#   bench  build if missing, then llama-bench -p 512 -n 128 -t 2,16 -r 3 (BF16, Q8_0) and snapeval bench on the same
#          checkpoint at 2 and 16 threads, one after the other (nothing else runs meanwhile); results in $OUT
set -u
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
  rm -rf "$LC" && mkdir -p "$ROOT/build" && tar -C "$ROOT/build" -xJf "$ROOT/build/llamacpp.tar.xz" || return 1
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
  for th in 2 16; do
    echo "== snapeval bench --threads $th (llama-bench shape: prompt 512, 128 decoded tokens)"
    GOMAXPROCS=$th bin/snapeval bench --model "$CK/hf" --threads $th --json >"$OUT/snapeval-t$th.json" 2>"$OUT/snapeval-t$th.log"
    tail -3 "$OUT/snapeval-t$th.log"
  done
  cp "$CK/hf/config.json" "$OUT/ckpt-config.json"
}

case "$MODE" in
  build) build; rc=$? ;;
  bench) bench; rc=$? ;;
  *) echo "usage: $0 build|bench"; exit 2 ;;
esac
tar -C "$FINAL" -czf "$FINAL/results.tgz" work && rm -rf "$OUT"
exit $rc
