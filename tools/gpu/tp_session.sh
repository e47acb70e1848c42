#!/usr/bin/env bash
# One multi-GPU session for the torch backend's tensor parallelism (issue #24): every check in one device call
# (or two, by phases), results packed under $OUT. Needs a machine of 2 or more GPUs (nvidia-h100-x2 or larger).
#
#   tools/gpu/tp_session.sh [PHASE...]     (default: all phases, most important first, within DEADLINE seconds)
#
# Phases:
#   env       GPUs, driver, Python, torch, transformers, NCCL; refuses to go on with fewer than 2 GPUs
#   tpconf    tp_conformance.py: llama-gqa (2 KV heads) through transformers on cuda:0-1, float32 with TF32 off,
#             tp=2 against tp=1 and reference.json (kept positions, greedy tokens, KV bytes, logits): the static
#             decode replayed from each rank's CUDA graphs (every rank must have replayed, with the same steps), the
#             packed path (static_decode off), then the static decode run eagerly (cuda_graphs off); qwen2-tied
#             (1 KV head) refused at tp=2 as a setup error; then issue #23's policy fixtures at tp=2
#             (tp_conformance.py --set policies: kept, evicted, greedy as the fixtures; adakv refused per request)
#   bench8b   tp_bench.py: a random Llama-3.1-8B-shape model (llama31-8b-shape), bf16: decode tok/s at batch 1, 8
#             and 32 (1024-token prompts, 64 new tokens) and an 8192-token prefill, tp=2 against tp=1 (target >= 1.4)
#   long70b   gpucheck longctx: a random Llama-3.1-70B-shape model (llama-70b-shape), bf16, tp = the GPUs (2, 4 or
#             8), SnapStream (budgets 4096 and 1024), SnapKV and StreamingLLM at once on 32768-token prompts (and the
#             full cache from tp=4 on)
#   inspect   snapeval inspect --backend torch --backend-opt tp=2 on llama-gqa through the whole Go stack
#   pytests   the worker's unit tests on the machine's torch: tensor parallelism on the CPU with gloo, and on two GPUs
#             with NCCL and CUDA graphs over minillama (test_tp.GPUTest), the single-GPU graph test (test_static)
#   tprun     snapeval run --backend torch --backend-opt tp=2 (float32) on the default suite, compared with the cpu
#             backend's records (cpurun/) when carried
#   kill      the same run with tensor-parallel rank 1 killed (SIGKILL) after 20 records: the same records as tprun
# It needs, in $CARRY (default .devcarry), what tools/gpu/README.md says for torch_session.sh (bin/snapeval,
# bin/gpucheck, repo/ with backends/torch, backends/cpu/testdata, compress/testdata, tools/train/tinyllama.py,
# tools/gpu, models/snaptiny/tokenizer.json; cpurun/ for tprun), and a python3 with torch and transformers.
# Raw logs and JSON go to $OUT/results.tgz, a summary to $OUT/summary.txt; copy them to tools/gpu/results/<date>-tp/.
set -u -o pipefail
CARRY=${CARRY:-.devcarry}
OUT=${OUT:-/tmp/tp-session-out}
DEADLINE=${DEADLINE:-560}
R=/tmp/tp-session
TAIL=50
# shellcheck source=session_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/session_lib.sh" || exit 2
session_start snapeval gpucheck
# NVLink multicast stays off (the worker sets these in every rank too).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
PHASES=("$@")
[ ${#PHASES[@]} -eq 0 ] && PHASES=(env tpconf bench8b long70b inspect pytests tprun kill)

env_info() {
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv
  nvidia-smi topo -m || true
  python3 -c 'import sys, torch, transformers, torch.distributed as d; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "nccl", torch.cuda.nccl.version(), "transformers", transformers.__version__, "gpus", torch.cuda.device_count(), "nccl available", d.is_nccl_available())'
  env | grep -E '^(NCCL_NVLS_ENABLE|TORCH_SYMM_MEM_DISABLE_MULTICAST|NVSHMEM_DISABLE_NVLS)=' | sort
  "$SNAP" version 2>/dev/null || true
  [ "$NGPU" -ge 2 ] || { echo "only $NGPU GPU(s): tensor parallelism needs 2 or more"; return 1; }
}

tpconf() {
  python3 "$REPO/tools/gpu/tp_conformance.py" --repo "$REPO" --device cuda:0 --tp 2 --packed \
    --out "$R/tpconf/tp_conformance.json" || return 1
  python3 "$REPO/tools/gpu/tp_conformance.py" --repo "$REPO" --device cuda:0 --tp 2 --worker-args "--cuda-graphs off" \
    --out "$R/tpconf-eager/tp_conformance.json" || return 1
  # issue #23's policies at tp=2 (adakv refused per request)
  python3 "$REPO/tools/gpu/tp_conformance.py" --repo "$REPO" --device cuda:0 --tp 2 --models llama-gqa --set policies \
    --out "$R/tpconf-policies/tp_conformance.json"
}

bench8b() {
  python3 "$REPO/tools/gpu/tp_bench.py" --repo "$REPO" --model "$REPO/tools/gpu/llama31-8b-shape" --device cuda:0 \
    --dtype bfloat16 --tp 2 --batches 1,8,32 --prompt 1024 --new 64 --prefill-len 8192 --out "$R/bench8b/tp_bench.json"
}

long70b() {
  local M=/tmp/llama-70b-shape tp=8
  [ "$NGPU" -lt 8 ] && tp=4
  [ "$NGPU" -lt 4 ] && tp=2
  mkdir -p "$M"
  cp "$REPO/tools/gpu/llama-70b-shape/config.json" "$M/"
  cp "$REPO/models/snaptiny/tokenizer.json" "$M/"  # the Go side needs a tokenizer; the prompts are token ids
  # On two 80 GB GPUs a rank holds 35.8 B parameters (66.7 GiB in bf16): the full cache of a 32k prompt (5.4 GiB a
  # rank) and its prefill do not fit beside them, so the full policy runs from tp=4 on.
  # The KV pool is allocated at start (by default 60% of what the weights leave): 4 GiB a rank (4 rows of 6.5k slots
  # of 80 layers x 4 KV heads at tp=2), so that a 32k prefill's activations (~6 GiB a rank) still fit beside it; the
  # full cache (32.8k slots) then takes several rows and decodes in the packed forward.
  local pols="snapstream:budget=4096;snapstream:budget=1024;snapkv:topk=4064,window=32,kernel=5;streaming:sinks=4,recent=4092"
  [ "$tp" -ge 4 ] && pols="$pols;full"
  echo "70B shape at tp=$tp on $NGPU GPUs: $pols"
  "$CHECK" longctx -model "$M" -backend-opt random_weights=true -backend-opt dtype=bfloat16 -backend-opt tp=$tp \
    -backend-opt max_batch=4 -backend-opt kv_memory_gib=$((4 * tp)) -lengths 32768 -max-new 32 -policies "$pols" \
    -json "$R/long70b.json"
  grep -h 'static decode' /tmp/snapeval-cache/torch/logs/*.log 2>/dev/null | tail -n "$tp" || true
}

inspect_check() {
  local d=$REPO/backends/cpu/testdata/models/llama-gqa spec
  for i in 1 4; do
    spec=$(python3 -c "import json; print(json.load(open('$REPO/backends/torch/testdata/plans.json'))['fixtures']['llama-gqa'][$i]['spec'])")
    "$SNAP" inspect --backend torch --backend-opt dtype=float32 --backend-opt tp=2 --model "$d" --prompt-ids "@$d/reference.json" \
      --policy "$spec" --max-new 24 > "$R/inspect-$i.json" || return 1
    python3 - "$R/inspect-$i.json" "$d/reference.json" "$i" <<'PY' || return 1
import json, sys
got, ref, i = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
case = ref["cases"][i]
den = max(abs(x) for x in ref["logits_last"])
rel = max(abs(a - b) for a, b in zip(got["logits_last"], ref["logits_last"])) / den
ok = got["kept"] == case["kept"] and got["greedy"] == case["greedy"] and rel <= 1e-4
print(got["policy"], "tp=2 kept equal", got["kept"] == case["kept"], "greedy equal", got["greedy"] == case["greedy"],
      "logits rel err %.2e" % rel, "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
  done
}

pytests() { cd "$REPO/backends/torch/worker" && python3 -m unittest discover -s tests -t .; }

tprun() {
  "$SNAP" run --backend torch --backend-opt dtype=float32 --backend-opt tp=2 --backend-opt max_batch=64 --concurrency 64 \
    --out "$R/torch-tp2" --quiet --no-report
  echo "run exit $?"
  grep -o '"tp": *"[0-9]*"' "$R/torch-tp2/manifest.json" || true
  if [ -d "$CARRY/cpurun" ]; then
    "$CHECK" compare -a "$CARRY/cpurun" -b "$R/torch-tp2" -trace -backend-opt dtype=float32 -backend-opt tp=2 -json "$R/tprun.json"
  else
    echo "no cpurun/ carried: the tp=2 records were not compared with the cpu backend's"
  fi
}

kill_test() {
  kill_mid_run "$R/torch-tp2-kill" "$R/torch-tp2" 'tensor-parallel rank 1 started, pid [0-9]*' \
    'ended|restarting|retrying|tensor-parallel rank' "tensor-parallel rank 1" \
    --backend torch --backend-opt dtype=float32 --backend-opt tp=2 --backend-opt max_batch=16 --concurrency 16 --limit 40
}

export -f env_info tpconf bench8b long70b inspect_check pytests tprun kill_test
export REPO R SNAP CHECK CARRY NGPU

want env && phase env 60 env_info
want tpconf && phase tpconf 240 tpconf
want bench8b && phase bench8b 240 bench8b
want long70b && phase long70b 420 long70b
want inspect && phase inspect 90 inspect_check
want pytests && phase pytests 150 pytests
want tprun && phase tprun 240 tprun
want kill && phase kill 180 kill_test
note "total $(( $(date +%s) - START ))s"
tar czf "$OUT/results.tgz" -C "$R" . 2>/dev/null
cp "$SUMMARY" "$OUT/summary.txt"
