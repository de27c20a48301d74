#!/bin/sh
# How the shipped perceptual-fem / perceptual-hpm weights were made (byun2023; docs/perceptual.md).
# CPU budget of one session: 2 CPU cores shared by 8 jobs, one torch thread per run, about 70
# minutes of wall clock.  The paper's width (C=100, C_b=30, 2.76M parameters here) does not train
# in that budget; the shipped models use C=24, C_b=12 (about 0.19M parameters), batches of 16
# frames and lr 5e-4 (cosine to 5e-5).  The 16 kbps runs train the trunk (reconstruction phase)
# and then quantize; the other HPM points start from the 16 kbps HPM run's step-300 checkpoint
# (the end of its reconstruction phase: a shared trunk) and only run the quantization phase.
set -e
DATA=${DATA:-/work/corpus16/manifest.jsonl}
RUNS=${RUNS:-/work/data-byun/runs}
W="--set model.channels=24 --set model.bottleneck_channels=12 --set model.hyper_channels=16 --set model.hyper_latent=4"
T="--set train.batch_size=16 --set train.lr=5e-4 --set train.val_every=300 --set train.val_batches=2 --set train.ckpt_every=100"
for v in fem hpm; do
  nice -n 10 neurocodec train perceptual-$v --bitrate 16 --data "$DATA" --out "$RUNS/$v-16k" $W $T --set train.steps=1800 &
done
wait
cp "$RUNS/hpm-16k/checkpoints/step_00000300.pt" "$RUNS/trunk-step300.pt"   # (taken while the run went on)
for k in 9 24; do
  nice -n 10 neurocodec train perceptual-hpm --bitrate $k --data "$DATA" --out "$RUNS/hpm-${k}k" $W $T \
    --init "$RUNS/trunk-step300.pt" --set train.phases=quantize --set train.steps=1000 &
done
wait
# rate trim (quantizer scale g on real validation files) and export, per run:
for r in fem-16k hpm-16k hpm-9k hpm-24k; do
  v=${r%-*}; k=${r#*-}
  G=$(python scripts/perceptual_trim.py "$RUNS/$r" --data "$DATA" | sed -n 's/^G=//p')
  neurocodec export "$RUNS/$r" --name perceptual-$v-$k --fp16 --allow-incomplete --set model.code_scale=$G --force
done
