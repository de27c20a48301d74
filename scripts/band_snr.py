"""Where a learned speech codec puts its coding noise: per-band signal, output and error power
(Welch, 512-point) summed over corpus files, through the real bitstream path.

    python scripts/band_snr.py --data corpus16/manifest.jsonl --split test perceptual-hpm-16k cq-16k

A name is a shipped point or an exported folder (as in scripts/eval_cascade.py).  A codec whose
error is flat over frequency (what an MSE loss gives) has its SNR falling with the speech
spectrum; a band whose output power is far below the signal's is not coded at all.

``--oracle-hz F`` prints instead the mean PESQ-WB of the decoded files, of their band below F
with the original's band above F put back, and of the original low-passed at F (8th-order
Butterworth, zero phase): how much of a codec's score its missing upper band costs.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from scipy.signal import butter, sosfiltfilt, welch

from eval_cascade import corpus_files, load

BANDS = [(0, 500), (500, 1000), (1000, 2000), (2000, 3000), (3000, 4000), (4000, 5000), (5000, 6000),
         (6000, 7000), (7000, 8000)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", default="corpus16/manifest.jsonl")
    ap.add_argument("--split", default="test")
    ap.add_argument("--sources", default="speech-real")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--oracle-hz", type=float, default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    files = corpus_files(a.data, a.split, a.sources, a.limit)
    if a.oracle_hz:
        return oracle(a.models, files, a.oracle_hz)
    print("| model | band (Hz) | signal dB | output dB | error dB | SNR dB |")
    print("|---|---|---|---|---|---|")
    for name in a.models:
        model = load(name)
        s_pow = y_pow = e_pow = 0.0
        for x in files:
            enc = model.compress(x[None, :])
            y = model.decompress(enc.chunks, 1, x.size, enc.bitrate_kbps)[0]
            f, s = welch(x, 16000, nperseg=512)
            s_pow = s_pow + s
            y_pow = y_pow + welch(y, 16000, nperseg=512)[1]
            e_pow = e_pow + welch(y - x, 16000, nperseg=512)[1]
        for lo, hi in BANDS:
            m = (f >= lo) & (f < hi)
            sd, yd, ed = (10 * np.log10(p[m].sum()) for p in (s_pow, y_pow, e_pow))
            print(f"| {name} | {lo}-{hi} | {sd:.1f} | {yd:.1f} | {ed:.1f} | {sd - ed:.1f} |")
    return 0


def oracle(models, files, hz: float) -> int:
    from neurocodec.eval.metrics_ext import pesq_wb

    lp = butter(8, hz, "low", fs=16000, output="sos")
    hp = butter(8, hz, "high", fs=16000, output="sos")
    print(f"| model | PESQ-WB | its < {hz:g} Hz + original above | original < {hz:g} Hz |")
    print("|---|---|---|---|")
    for name in models:
        model = load(name)
        r = np.zeros(3)
        for x in files:
            enc = model.compress(x[None, :])
            y = model.decompress(enc.chunks, 1, x.size, enc.bitrate_kbps)[0]
            mixed = (sosfiltfilt(lp, y) + sosfiltfilt(hp, x)).astype(np.float32)
            r += [pesq_wb(x, y, 16000), pesq_wb(x, mixed, 16000),
                  pesq_wb(x, sosfiltfilt(lp, x).astype(np.float32), 16000)]
        r /= len(files)
        print(f"| {name} | {r[0]:.3f} | {r[1]:.3f} | {r[2]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
