#!/usr/bin/env bash
# One GPU session for issue #23's policies on the torch backend: every check in one device call, results under $OUT.
#
#   tools/gpu/policies_session.sh [PHASE...]      (default: all phases, most important first, within DEADLINE seconds)
#
# Phases: env conformance crossengine speed pytests (the default), and batch, long (asked for by name). It needs, in $CARRY (default .devcarry), what torch_session.sh
# needs (bin/snapeval, bin/gpucheck, repo/; see tools/gpu/README.md) and:
#   cpurun2/    the cpu backend's run of the default suite under every policy of tools/readme/other-policies.sh
#               (`snapeval run --bench synth --policy ... --no-report`), for crossengine
#   policies    that run's --policy arguments, one line
# and a python3 with torch and transformers (the lent GPU machines have them). Raw logs and JSON go to
# $OUT/results.tgz, a summary to $OUT/summary.txt; copy them to tools/gpu/results/<date>/.
set -u -o pipefail
CARRY=${CARRY:-.devcarry}
OUT=${OUT:-/tmp/policies-session-out}
DEADLINE=${DEADLINE:-560}
R=/tmp/policies-session
TAIL=45
# shellcheck source=session_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/session_lib.sh" || exit 2
session_start snapeval gpucheck
PHASES=("$@")
[ ${#PHASES[@]} -eq 0 ] && PHASES=(env conformance crossengine speed pytests)

env_info() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c 'import sys, torch, transformers; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, torch.cuda.get_device_name(0))'
  cat "$CARRY/REVISION" 2>/dev/null
}

# crossengine: the default suite under every #23 policy (and the default ones at 256) through the torch backend in
# float32, compared record by record with the cpu backend's run of the same matrix.
crossengine() {
  # shellcheck disable=SC2046
  "$SNAP" run --backend torch --backend-opt dtype=float32 --backend-opt max_batch=64 --concurrency 64 --bench synth \
    $(cat "$CARRY/policies") --out "$R/torch-f32" --quiet --no-report
  echo "run exit $?"
  "$CHECK" compare -a "$CARRY/cpurun2" -b "$R/torch-f32" -trace -backend-opt dtype=float32 -json "$R/crossengine.json"
}

# speed: an 8B-shape random model in bfloat16, 8k-token prompt, 64 new tokens, each policy alone at budget 1024:
# prefill seconds, decode ms/token, KV bytes (records' count) and peak memory.
speed() {
  local M
  M=$(shape_model)
  "$CHECK" longctx -model "$M" -backend-opt random_weights=true -backend-opt dtype=bfloat16 -backend-opt max_batch=8 \
    -lengths 8192 -max-new 64 -sequential -json "$R/speed.json" -policies \
    "snapstream:budget=1024;snapstream:budget=1024,rerotate=true;streaming:sinks=4,recent=1020,rerotate=true;knorm:budget=1024;kvquant:bits=4;kvquant:bits=8;h2o:budget=1024;tova:budget=1024;pyramidkv:budget=1024;pyramidkv:base=snapstream,budget=1024;adakv:budget=1024;adakv:base=snapstream,budget=1024;full;snapstream:budget=1024"
}

# batch: 8 sequences of one policy in flight together (8k prompts, 64 new tokens; decode ms/token is the step
# time), per policy: what the packed step costs at a batch, against snapstream's static step.
batch() {
  local M p
  M=$(shape_model)
  # BATCH_POLICIES (space-separated) replaces the default list.
  for p in ${BATCH_POLICIES:-snapstream:budget=1024 h2o:budget=1024 tova:budget=1024 pyramidkv:budget=1024 \
      kvquant:bits=4 snapstream:budget=1024,rerotate=true}; do
    echo "### $p x 8"
    "$CHECK" longctx -model "$M" -backend-opt random_weights=true -backend-opt dtype=bfloat16 -backend-opt max_batch=8 \
      -lengths 8192 -max-new 64 -json "$R/batch-${p//[:=,]/_}.json" -policies "$p;$p;$p;$p;$p;$p;$p;$p" | grep -v '^|---'
  done
}

# long: h2o's O(L^2) float64 prompt scores at a 32k prompt, beside snapstream, each alone.
long() {
  local M
  M=$(shape_model)
  "$CHECK" longctx -model "$M" -backend-opt random_weights=true -backend-opt dtype=bfloat16 -backend-opt max_batch=8 \
    -lengths 32768 -max-new 16 -sequential -json "$R/long.json" \
    -policies "snapstream:budget=4096;h2o:budget=4096;tova:budget=4096;knorm:budget=4096"
}

pytests() { cd "$REPO/backends/torch/worker" && python3 -m unittest discover -s tests -t .; }
conformance() {
  python3 "$REPO/tools/gpu/conformance.py" --repo "$REPO" --set policies --out "$R/conformance-policies.json"
}
export -f env_info pytests conformance crossengine speed batch long
export REPO R SNAP CHECK CARRY BATCH_POLICIES

want env && phase env 60 env_info
want conformance && phase conformance 150 conformance
want crossengine && phase crossengine 240 crossengine
want speed && phase speed 200 speed
want batch && phase batch 240 batch
want long && phase long 180 long
want pytests && phase pytests 150 pytests
note "total $(( $(date +%s) - START ))s"
tar czf "$OUT/results.tgz" -C "$R" . 2>/dev/null
cp "$SUMMARY" "$OUT/summary.txt"
