"""Per-metric wall time on the 8 s example clips (cold = first call in the process, warm = second).

Run: .venv/bin/python bench/bench_metrics.py [--threads N]
Prints one row per metric: seconds for 8 s of speech at 16 kHz and of music resampled to 48 kHz.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from neurocodec.audio import read_audio, resample  # noqa: E402
from neurocodec.eval.align import align  # noqa: E402
from neurocodec.eval.metrics import METRICS, compute_metrics  # noqa: E402


def degraded(x: np.ndarray, sr: int, seed: int) -> np.ndarray:
    """A stand-in decoded signal: 10 ms late, 25 dB SNR white noise."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(x.size) * np.sqrt(np.mean(x ** 2) / 10 ** 2.5)
    return np.concatenate([np.zeros(sr // 100), x + noise])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    speech, sr_s = read_audio(ROOT / "examples" / "speech.flac")
    music, sr_m = read_audio(ROOT / "examples" / "music.flac")
    cases = {
        "speech 16k": (speech[0].astype(np.float64), sr_s),
        "music 48k": (resample(music, sr_m, 48000)[0].astype(np.float64), 48000),
    }
    names = list(METRICS)
    timings: dict[str, dict[str, tuple[float, float]]] = {}
    for label, (x, sr) in cases.items():
        y = degraded(x, sr, seed=0)
        t0 = time.perf_counter()
        a = align(x, y, sr)
        t_align = time.perf_counter() - t0
        cold = compute_metrics(x, y, sr, names)
        # another noise draw, so the cached DNSMOS / PEAQ results are not reused
        warm = compute_metrics(x, degraded(x, sr, seed=1), sr, names)
        timings[label] = {n: (cold.seconds[n], warm.seconds[n]) for n in names}
        timings[label]["(align)"] = (t_align, t_align)
        print(f"# {label}: {x.size / sr:.1f} s, delay found {a.delay_samples} samples "
              f"(true {sr // 100}), failures: {warm.failures or 'none'}")
    header = f"{'metric':<14}" + "".join(f"{label + ' cold':>16}{label + ' warm':>16}" for label in cases)
    print(header)
    for n in ["(align)"] + names:
        row = f"{n:<14}"
        for label in cases:
            c, w = timings[label][n]
            row += f"{c:>15.3f}s{w:>15.3f}s"
        print(row)
    print("note: dnsmos_bak/ovrl/p808 reuse the dnsmos_sig run; twof reuses the peaq_odg run.")


if __name__ == "__main__":
    main()
