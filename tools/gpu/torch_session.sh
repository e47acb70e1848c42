#!/usr/bin/env bash
# One GPU session for the torch backend (issue #20): every check in one device call, results packed under $OUT.
#
#   tools/gpu/torch_session.sh [PHASE...]      (default: all phases, most important first, within DEADLINE seconds)
#
# Phases: env pytests conformance inspect longctx crossengine kill. It needs, in $CARRY (default .devcarry):
#   bin/snapeval, bin/gpucheck   CGO_ENABLED=0 builds of ./cmd/snapeval and ./tools/gpu/gpucheck (or .gz of them)
#   repo/                        backends/torch, backends/cpu/testdata, compress/testdata, tools/train/tinyllama.py,
#                                tools/gpu and models/snaptiny/tokenizer.json of the commit under test
#   cpurun/                      the cpu backend's run of the default suite (`snapeval run`), for crossengine
# and a python3 with torch and transformers (the lent GPU machines have them). Raw logs and JSON go to
# $OUT/results.tgz, a summary to $OUT/summary.txt; copy them to tools/gpu/results/<date>/.
set -u -o pipefail
CARRY=${CARRY:-.devcarry}
OUT=${OUT:-/tmp/torch-session-out}
DEADLINE=${DEADLINE:-560}
R=/tmp/torch-session
TAIL=60
# shellcheck source=session_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/session_lib.sh" || exit 2
session_start snapeval gpucheck
PHASES=("$@")
[ ${#PHASES[@]} -eq 0 ] && PHASES=(env pytests conformance longctx crossengine inspect kill)

env_info() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c 'import sys, torch, transformers; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, torch.cuda.get_device_name(0))'
  "$SNAP" version 2>/dev/null || true
}

inspect_check() {
  for m in llama-gqa qwen2-tied; do
    local d=$REPO/backends/cpu/testdata/models/$m
    local spec
    spec=$(python3 -c "import json; print(json.load(open('$REPO/backends/torch/testdata/plans.json'))['fixtures']['$m'][1]['spec'])")
    "$SNAP" inspect --backend torch --backend-opt dtype=float32 --model "$d" --prompt-ids "@$d/reference.json" --policy "$spec" --max-new 24 > "$R/inspect-$m.json" || return 1
    python3 - "$R/inspect-$m.json" "$d/reference.json" <<'PY' || return 1
import json, sys
got, ref = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
case = ref["cases"][1]
den = max(abs(x) for x in ref["logits_last"])
rel = max(abs(a - b) for a, b in zip(got["logits_last"], ref["logits_last"])) / den
ok = got["kept"] == case["kept"] and got["greedy"] == case["greedy"] and rel <= 1e-4
print(sys.argv[1], got["policy"], "capacity", got["capacity"], "kept equal", got["kept"] == case["kept"],
      "greedy equal", got["greedy"] == case["greedy"], "logits rel err %.2e" % rel, "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
  done
}

longctx() {
  local M
  M=$(shape_model)
  "$CHECK" longctx -model "$M" -backend-opt random_weights=true -backend-opt dtype=bfloat16 -backend-opt max_batch=8 \
    -json "$R/longctx.json"
}

crossengine() {
  "$SNAP" run --backend torch --backend-opt dtype=float32 --backend-opt max_batch=64 --concurrency 64 \
    --out "$R/torch-f32" --quiet --no-report
  echo "run exit $?"
  "$CHECK" compare -a "$CARRY/cpurun" -b "$R/torch-f32" -trace -backend-opt dtype=float32 -json "$R/crossengine.json"
}

kill_test() {
  kill_mid_run "$R/torch-kill" "$R/torch-f32" 'worker pid [0-9]* running' 'ended|restarting|retrying' "the worker" \
    --backend torch --backend-opt dtype=float32 --backend-opt max_batch=16 --concurrency 16 --limit 40
}

pytests() { cd "$REPO/backends/torch/worker" && python3 -m unittest discover -s tests -t .; }
conformance() { python3 "$REPO/tools/gpu/conformance.py" --repo "$REPO" --out "$R/conformance.json"; }
export -f env_info pytests conformance inspect_check longctx crossengine kill_test
export REPO R SNAP CHECK CARRY

want env && phase env 60 env_info
want pytests && phase pytests 90 pytests
want conformance && phase conformance 180 conformance
want longctx && phase longctx 300 longctx
want crossengine && phase crossengine 240 crossengine
want inspect && phase inspect 60 inspect_check
want kill && phase kill 150 kill_test
note "total $(( $(date +%s) - START ))s"
tar czf "$OUT/results.tgz" -C "$R" . 2>/dev/null
cp "$SUMMARY" "$OUT/summary.txt"
