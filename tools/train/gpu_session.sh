#!/usr/bin/env bash
# One GPU call (<= 10 min): a ~60 s induction probe at the production shape, then a <= 8 min training run whose
# copy warm-up flags depend on the probe. Run from the repo root with bin/synthgen built here first:
#   CGO_ENABLED=0 go build -o bin/synthgen ./tools/train/synthgen
#   (device) bash tools/train/gpu_session.sh        # writes $OUT/probe.log, $OUT/train.log, $OUT/snaptiny.tgz, eval.json
set -u
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
SHAPE="--hidden 256 --layers 4 --heads 8 --kv-heads 2 --head-dim 32 --vocab 2048"

# 1. probe (~60 s): does induction form at this shape with short spans and a 32-symbol alphabet?
python3 tools/train/probe_copy.py $SHAPE --intermediate 768 --copy-vocab 32 --copy-max-n 32 --copy-max-noise 16 \
  --batch-tokens 8192 --lr 1e-3 --lr-floor 1 --steps 100000 --max-seconds 55 --log-every 100 2>&1 | tee "$OUT/probe.log"
if grep -q "PROBE formed" "$OUT/probe.log"; then
  # induction forms quickly: a 45 s warm-up with the same settings, then the real mix with short copy spans
  COPY="--copy-phase-seconds 45 --copy-phase-vocab 32 --copy-phase-max-n 32 --copy-phase-max-noise 16"
  MIX="--copy-vocab 64 --copy-max-n 64 --copy-max-noise 64 --copy-early 0.3 --copy-late 0.1"
else
  # fallback: longer warm-up on an even easier copy task (16 symbols, spans <= 16), smaller batches
  COPY="--copy-phase-seconds 100 --copy-phase-vocab 16 --copy-phase-max-n 16 --copy-phase-max-noise 8 --copy-phase-batch-tokens 4096"
  MIX="--copy-vocab 32 --copy-max-n 32 --copy-max-noise 16 --copy-early 0.4 --copy-late 0.15"
fi
echo "gpu_session: COPY=[$COPY] MIX=[$MIX]" | tee "$OUT/choice.txt"

# 2. training: warm-up + 270 s mix (dense recall on, short contexts first) + eval; about 7.5 min with data and eval
python3 tools/train/train.py --out "$OUT" --impl own $COPY $MIX --train-seconds 270 --scale 0.5 --lr 1e-3 \
  --weight-decay 0.1 --curriculum 1.5 --max-train-len 2048 --dense-early 0.3 --dense-late 0.2 \
  --eval-lengths 512,1024 --eval-n 10 --eval-seconds 40 --ckpt-seconds 60 2>&1 | tee "$OUT/train.log"

# The device returns only a handful of files from $OUT: pack the checkpoint into one file.
[ -d "$OUT/snaptiny" ] && tar -C "$OUT" -czf "$OUT/snaptiny.tgz" snaptiny && rm -rf "$OUT/snaptiny"
