#!/usr/bin/env bash
# How the shipped encodec-16k weights were made (CPU, one thread, a shared 2-core machine).
# Usage: scripts/train_encodec16_shipped.sh [CORPUS_MANIFEST] [RUN_DIR]
# The width of the shipped encodec-24k (C=16, D=64, one LSTM layer, 16 codebooks: 1-8 kbps at 16 kHz),
# zero padding (true 320-sample streaming), reconstruction losses only (L1 + multi-scale mel through
# the balancer), on the corpus's speech (the recipe's sources: speech-real, speech-tts, user).
# train.max_seconds stops the run with a checkpoint (the shipped run was stopped by hand at step 6,800,
# after 1 h 05 min, to leave time for the export and the LM); the weight EMA is exported when it scores at
# least as well as the raw weights on the valid split (scripts/encodec_valid_quality.py), then the
# code LM is trained on the exported model's codes.
set -euo pipefail
DATA=${1:-/work/corpus16/manifest.jsonl}
RUN=${2:-runs/encodec16}
NC=${NC:-.venv/bin/neurocodec}
PY=${PY:-.venv/bin/python}
SECONDS_BUDGET=${SECONDS_BUDGET:-4700}
nice -n 10 "$NC" train encodec-16k --bitrate 4 --data "$DATA" --out "$RUN" \
  --set train.steps=100000 --set train.batch_size=4 --set train.segment_samples=8000 \
  --set train.val_every=400 --set train.val_batches=2 --set train.ckpt_every=100 --set train.threads=1 \
  --set train.max_seconds="$SECONDS_BUDGET" \
  --set model.n_filters=16 --set model.dimension=64 --set model.lstm_layers=1 --set model.n_q=16 \
  --set model.pad_mode=constant --set model.adversarial_start=-1 || true
LAST=$(ls "$RUN"/checkpoints/step_*.pt | tail -1)
"$PY" scripts/encodec_valid_quality.py "$LAST" --data "$DATA" --kbps 4 --seconds 60
"$NC" export "$RUN" --name encodec-16k --fp16 --allow-incomplete --force --data "$DATA" --fit-seconds 300
nice -n 10 "$PY" scripts/train_encodec_lm.py src/neurocodec/assets/weights/encodec-16k --data "$DATA" \
  --train-seconds 300 --valid-seconds 60 --max-seconds 300 --dim 16 --layers 3 --heads 2 --ff 64
