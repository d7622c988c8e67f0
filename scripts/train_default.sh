#!/usr/bin/env bash
# Rebuild the bundled default model from the shared data, end to end, reproducibly (seed 0):
#   bash scripts/train_default.sh ../shared/data [work]
# 1. face crops of every labelled clip (48 frames each) and of 2,500 LFW photos, made by the
#    scanner's own stages; 2. EfficientNetV2-B0 from scratch with self-blended fakes mixed with
#    the labelled ones, validated on clips held out by source identity; 3. the held-out clips
#    scanned by the real scanner (evaluate), and the extra real clips for false positives;
# 4. the exported model copied to models/default with its split and evaluation.
set -euo pipefail
DATA=$(realpath "${1:?usage: train_default.sh DATA_DIR [WORK_DIR]}")
cd "$(dirname "$0")/.."
WORK=${2:-work}
PY=.venv/bin/python
EPOCHS=${EPOCHS:-16}
STEPS=${STEPS:-250}
$PY -m detector.crops --data "$DATA/manifest.csv" --out "$WORK/crops2_videos" --frames 48
$PY -m detector.crops --photos "$DATA/faces/lfw" --limit-photos 2500 --out "$WORK/crops2_lfw"
$PY -m detector.train --crops "$WORK/crops2_videos" --crops "$WORK/crops2_lfw" --out "$WORK/default_run" \
    --epochs "$EPOCHS" --steps-per-epoch "$STEPS" --batch-size 16 --sbi mix --val-fraction 0.3 --seed 0 --resume
$PY -m detector.evaluate --model "$WORK/default_run/model" --data "$DATA/manifest.csv" \
    --split "$WORK/default_run/split.csv" --subset val --out "$WORK/default_eval" --record
mkdir -p models && rm -rf models/default.new
cp -r "$WORK/default_run/model" models/default.new
cp "$WORK/default_run/split.csv" "$WORK/default_run/log.csv" "$WORK/default_run/curves.png" \
   "$WORK/default_run/self_blend_samples.png" models/default.new/
mkdir -p models/default.new/evaluation
cp "$WORK/default_eval/metrics.json" "$WORK/default_eval/predictions.csv" "$WORK/default_eval/roc.png" \
   "$WORK/default_eval/scores.png" models/default.new/evaluation/
rm -rf models/default && mv models/default.new models/default
echo "models/default updated"
