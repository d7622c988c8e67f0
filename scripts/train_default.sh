#!/usr/bin/env bash
# Rebuild the bundled default model from the shared data, end to end, reproducibly (seed 0):
#   bash scripts/train_default.sh ../shared/data [work]
# Well under 2 hours on a 2-core CPU; the same commands use a GPU where TensorFlow sees one.
# Every step resumes: run the same command again after an interruption.
#  1. Face crops made by the scanner's own stages: every labelled clip (48 frames each, the 70
#     FaceForensics++ excerpts included), the FaceForensics++ crop pool and the DFDC crops
#     (re-detected and re-cropped as the scanner would; not the 30% of its source videos that
#     validate in step 5) and LFW's 1,000 photos. Every real face
#     keeps its source region and face mesh: self-blends are made from them.
#  2. Clips are split by source identity, stratified by source and label: 40% train, 30% val,
#     30% test. Training data: the train clips, the pool, the DFDC crops, LFW, and self-blends of
#     every real face among them (DFDC reals, FF++ originals, pool originals, LFW, other real clips).
#     Crop folders built before source regions are refused: build into an empty WORK_DIR.
#  3. Recipe: two short runs that differ only in batch-norm handling; validation AUC picks one.
#  4. The full run: EfficientNet-Lite0 from ImageNet, head first, then the whole network;
#     the best epoch by validation AUC is exported.
#  5. The validation pool (the run's val clips, half the identities its split does not name, 30% of
#     the DFDC source videos as crops; detector.evaluation.pool) picks the verdict rule and the
#     calibration by the pre-registered rules of detector.evaluation.selection, which writes the
#     calibration (or none, if it fails its cross-group check) and threshold 0.5 into model.json.
#  6. Test clips (never used for any choice) are scanned and reported.
#  7. Both sides are scanned again re-encoded four ways (deepfake-detector robustness): how far verdicts
#     move. Then models/default, evaluation included
#     (INSTALL=0 leaves models/default alone: for trying a variant, e.g. EPOCHS=12).
set -euo pipefail
DATA=$(realpath "${1:?usage: train_default.sh DATA_DIR [WORK_DIR]}")
cd "$(dirname "$0")/.."
WORK=${2:-work}
PY=${PY:-.venv/bin/python}
EPOCHS=${EPOCHS:-8}
STEPS=${STEPS:-500}
SPLIT=(--val-fraction 0.3 --test-fraction 0.3 --seed 0)
CROPS=(--crops "$WORK/crops_clips" --crops "$WORK/crops_pool" --crops "$WORK/crops_dfdc" --crops "$WORK/crops_lfw")
COMMON=(--init imagenet --arch efficientnet-lite0 --batch-size 16 --sbi mix --head-steps 200
        --head-learning-rate 1e-3 --learning-rate 3e-4 --warmup-steps 200 "${SPLIT[@]}")
if [ -n "${EMA:-}" ]; then COMMON+=(--ema "$EMA"); fi  # a moving average of the weights (a variant, e.g. EMA=0.999)

$PY -m detector crops --data "$DATA/manifest.csv" --out "$WORK/crops_clips" --frames 48
$PY -m detector crops --photos "$DATA/faces/ffpp_crops" --out "$WORK/crops_pool"
# DFDC's validation side (30% of its source videos, seeded; the same the pool of step 5 takes) never trains.
$PY -m detector pool --data "$DATA" --out "$WORK/dfdc_validation.csv"
$PY -m detector crops --photos "$DATA/faces/dfdc_crops" --out "$WORK/crops_dfdc" --exclude "$WORK/dfdc_validation.csv"
$PY -m detector crops --photos "$DATA/faces/lfw" --out "$WORK/crops_lfw"

for bn in train frozen; do
  $PY -m detector train "${CROPS[@]}" "${COMMON[@]}" --bn "$bn" --epochs 1 --steps-per-epoch 300 \
      --out "$WORK/recipe_bn_$bn" --resume
done
BN=$($PY -c 'import json, sys
runs = {bn: json.load(open(f"{sys.argv[1]}/recipe_bn_{bn}/best.json")) for bn in ("train", "frozen")}
for bn, best in runs.items():
    print("recipe --bn %s: val video AUC %.4f, log loss %.4f" % (bn, best["video_auc"], best["video_log_loss"]), file=sys.stderr)
print(max(runs, key=lambda bn: (runs[bn]["video_auc"], -runs[bn]["video_log_loss"])))' "$WORK")
echo "batch-norm: $BN" >&2

$PY -m detector train "${CROPS[@]}" "${COMMON[@]}" --bn "$BN" --epochs "$EPOCHS" --steps-per-epoch "$STEPS" \
    --out "$WORK/default_run" --resume
$PY -m detector pool --data "$DATA" --split "$WORK/default_run/split.csv" --out "$WORK/default_run/pool.csv"
$PY -m detector select --model "$WORK/default_run/model" --pool "$WORK/default_run/pool.csv" \
    --out "$WORK/default_select" --install
$PY -m detector evaluate --model "$WORK/default_run/model" --data "$DATA/manifest.csv" \
    --split "$WORK/default_run/split.csv" --subset val --out "$WORK/default_val"
$PY -m detector evaluate --model "$WORK/default_run/model" --data "$DATA/manifest.csv" \
    --split "$WORK/default_run/split.csv" --subset test --out "$WORK/default_test" --record
for side in val test; do  # how re-encoding moves its verdicts (measured only; chooses nothing)
  $PY -m detector robustness --model "$WORK/default_run/model" --data "$DATA/manifest.csv" \
      --split "$WORK/default_run/split.csv" --subset "$side" --out "$WORK/default_robust_$side"
done

if [ "${INSTALL:-1}" = 0 ]; then
  echo "INSTALL=0: models/default left as it is; the run is in $WORK/default_run" >&2
  exit 0
fi
mkdir -p models && rm -rf models/default.new
cp -r "$WORK/default_run/model" models/default.new
cp "$WORK/default_run/split.csv" "$WORK/default_run/log.csv" "$WORK/default_run/curves.png" \
   "$WORK/default_run/self_blend_samples.png" models/default.new/
for side in val test; do
  mkdir -p "models/default.new/evaluation/$side"
  cp "$WORK/default_$side/metrics.json" "$WORK/default_$side/predictions.csv" "$WORK/default_$side/roc.png" \
     "$WORK/default_$side/scores.png" "$WORK/default_robust_$side/robustness.json" \
     "$WORK/default_robust_$side/robustness.csv" "models/default.new/evaluation/$side/"
done
mkdir -p models/default.new/evaluation/selection
cp "$WORK/default_run/pool.csv" models/default.new/evaluation/
cp "$WORK/default_select/selection.json" "$WORK/default_select/selection.md" models/default.new/evaluation/selection/
rm -rf models/default && mv models/default.new models/default
echo "models/default updated"
