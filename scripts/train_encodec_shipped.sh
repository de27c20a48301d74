#!/usr/bin/env bash
# How the shipped encodec-24k weights were made (CPU, one thread, a shared 2-core machine): training
# with 16 codebooks, export, LM, then codebooks 17-32 added to the frozen model.
# Usage: scripts/train_encodec_shipped.sh [CORPUS_MANIFEST] [RUN_DIR]
# The training is stopped by hand (or by train.max_seconds where the trainer has it) and exported
# with --allow-incomplete; the LM is then trained on the exported model's codes.
set -euo pipefail
DATA=${1:-/work/corpus16/manifest.jsonl}   # 16 kHz corpus, resampled to 24 kHz by the data loader
RUN=${2:-runs/encodec24}
NC=${NC:-.venv/bin/neurocodec}
PY=${PY:-.venv/bin/python}
# Reduced width for the 10 MB weight budget: C=16, D=64, one LSTM layer, 16 codebooks (1.5-12 kbps),
# zero padding (true 320-sample streaming from the first sample); reconstruction losses only
# (L1 + multi-scale mel through the balancer): the adversarial stage does not fit this budget.
nice -n 10 "$NC" train encodec-24k --data "$DATA" --out "$RUN" \
  --set train.steps=100000 --set train.batch_size=4 --set train.segment_samples=8000 \
  --set train.val_every=400 --set train.val_batches=2 --set train.ckpt_every=100 --set train.threads=1 \
  --set model.n_filters=16 --set model.dimension=64 --set model.lstm_layers=1 --set model.n_q=16 \
  --set "model.bandwidths=(1.5,3.0,6.0,12.0)" --set model.pad_mode=constant --set model.adversarial_start=-1 || true
"$NC" export "$RUN" --name encodec-24k --fp16 --allow-incomplete --force --data "$DATA" --fit-seconds 300
nice -n 10 "$PY" scripts/train_encodec_lm.py src/neurocodec/assets/weights/encodec-24k --data "$DATA" \
  --train-seconds 900 --valid-seconds 120 --max-seconds 900 --dim 32 --layers 5 --heads 4 --ff 128
# Codebooks 17-32 (24 kbps), everything else frozen: k-means + the RVQ's EMA updates on the frozen
# encoder's residuals of the training split (docs/encodec.md, "Codebooks 17-32"); the LM keeps
# modelling codebooks 1-16 and codebooks 17-32 are coded with their static tables.
nice -n 10 "$PY" scripts/extend_encodec_codebooks.py src/neurocodec/assets/weights/encodec-24k --data "$DATA" \
  --out src/neurocodec/assets/weights/encodec-24k
