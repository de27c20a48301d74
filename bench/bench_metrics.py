"""Per-metric cost on the 8 s example clips: wall and CPU seconds, cold and warm.

Run: .venv/bin/python bench/bench_metrics.py
Cold = first call in the process (imports, model loading, JIT); warm = a second call on a
different decoded signal (so the DNSMOS / PEAQ result caches are not hit).  CPU time counts
all threads of the process and is the steadier number on a shared machine.  Rows: metrics
(plus the delay search); columns: 8 s of speech at 16 kHz, 8 s of music resampled to 48 kHz.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from neurocodec.audio import read_audio, resample  # noqa: E402
from neurocodec.eval.align import align  # noqa: E402
from neurocodec.eval.metrics import METRICS  # noqa: E402


def degraded(x: np.ndarray, sr: int, seed: int) -> np.ndarray:
    """A stand-in decoded signal: 10 ms late, white noise at 25 dB SNR."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(x.size) * np.sqrt(np.mean(x ** 2) / 10 ** 2.5)
    return np.concatenate([np.zeros(sr // 100), x + noise])


def timed(fn, *args) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    import torch

    torch.set_num_threads(1)
    speech, sr_s = read_audio(ROOT / "examples" / "speech.flac")
    music, sr_m = read_audio(ROOT / "examples" / "music.flac")
    cases = {
        "speech16k": (speech[0].astype(np.float64), sr_s),
        "music48k": (resample(music, sr_m, 48000)[0].astype(np.float64), 48000),
    }
    rows: dict[str, dict[str, tuple[float, float, float, float]]] = {"(align)": {}}
    for label, (x, sr) in cases.items():
        y0, y1 = degraded(x, sr, 0), degraded(x, sr, 1)
        a0, a1 = align(x, y0, sr), align(x, y1, sr)
        assert a0.delay_samples == sr // 100, a0.delay_samples
        rows["(align)"][label] = timed(align, x, y0, sr) + timed(align, x, y1, sr)
        for name, spec in METRICS.items():
            cold = timed(spec.function, a0.ref, a0.deg, sr)
            warm = timed(spec.function, a1.ref, a1.deg, sr)
            rows.setdefault(name, {})[label] = cold + warm
    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; seconds per 8 s clip")
    cols = [f"{lab} {kind}" for lab in cases for kind in ("cold wall", "cold cpu", "warm wall", "warm cpu")]
    print(f"{'metric':<14}" + "".join(f"{c:>20}" for c in cols))
    for name, per_case in rows.items():
        print(f"{name:<14}" + "".join(f"{v:>20.3f}" for lab in cases for v in per_case[lab]))
    print("each function is timed alone; inside compute_metrics the four dnsmos_* names share one model "
          "run and twof shares peaq_odg's analysis.")


if __name__ == "__main__":
    main()
