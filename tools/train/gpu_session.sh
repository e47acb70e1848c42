#!/usr/bin/env bash
# One GPU call (<= 10 min): continue training the shipped checkpoint (models/snaptiny, run 6) on the tasks it has
# not learned (vt, cwe), with copy steps over digits AND upper-case letters (see README "Next GPU session").
# Run from the repo root with bin/synthgen built here first (bin/ is git-ignored; carry ["bin"]):
#   CGO_ENABLED=0 go build -ldflags "-s -w" -o bin/synthgen ./tools/train/synthgen
#   (device) OUT=$OUT bash tools/train/gpu_session.sh   # writes $OUT/train.log, $OUT/eval.json, $OUT/snaptiny.tgz
# The device returns only a handful of files from $OUT, so the checkpoint comes back as one tar file.
# TRAIN_SECONDS (default 420) bounds the training loop; data, warm-up and evaluation add ~90 s.
# (Runs 5 and 6 started from scratch: a 55 s probe_copy.py induction probe, then train.py with
#  --copy-phase-seconds 45 --copy-phase-vocab 32 --copy-phase-max-n 32 --copy-phase-max-noise 16; run 6's exact
#  command is in README "Run 6".)
set -u
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
WORK=$(mktemp -d)
python3 tools/train/train.py --out "$WORK" --impl own --init-from models/snaptiny --seed 2 \
  --task-weight vt=4,cwe=4 --copy-ids 1-31,33-58 --copy-max-n 32 --copy-max-noise 16 \
  --copy-early 0.1 --copy-late 0.05 --train-seconds "${TRAIN_SECONDS:-420}" --scale 1.0 --lr 5e-4 \
  --weight-decay 0.1 --curriculum 0 --max-train-len 2048 --dense-early 0.1 --dense-late 0.1 \
  --eval-lengths 512,1024 --eval-n 10 --eval-seconds 30 --ckpt-seconds 60 2>&1 | tee "$OUT/train.log"
cp "$WORK/eval.json" "$OUT/" 2>/dev/null
[ -d "$WORK/snaptiny" ] && tar -C "$WORK" -czf "$OUT/snaptiny.tgz" snaptiny
