"""Data boundaries and temporal averaging of PEAQ basic MOVs (ITU-R BS.1387-1, section 5).

* Data boundary (section 5.2.4): the measurement starts where the sum of the absolute
  values of 5 successive reference samples first exceeds 200 (16-bit scale) and ends where
  it last does; frames outside are not averaged (they still drive the ear-model filters).
* Delayed averaging (section 5.2.4): modulation and noise-loudness MOVs ignore the first
  0.5 s (24 frames).
* Loudness threshold (section 5.2.4): noise loudness is averaged only from 50 ms
  (3 frames) after both signals first exceed 0.1 sone.
* Energy threshold (section 5.2.4.3): EHS skips frames that are quiet in both signals.

Frame conventions follow Kabal's PQevalAudio: frame ``n`` covers samples
``[1024 n, 1024 n + 2048)``; the first averaged frame is ``floor(start / 1024)``, the
last ``floor((end + 1 - 1024) / 1024)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import AudioError
from .ear_model import HOP_SIZE, SAMPLE_RATE
from .mov import Bandwidths, Detection, ModulationDifference, NoiseToMask

BOUNDARY_WINDOW = 5
BOUNDARY_THRESHOLD = 200.0 / 32768.0
#: 0.5 s of delayed averaging, in frames: ceil(0.5 * 48000 / 1024)
DELAY_FRAMES = int(np.ceil(0.5 * SAMPLE_RATE / HOP_SIZE))
#: 50 ms after the loudness threshold, in frames: ceil(0.05 * 48000 / 1024)
LOUDNESS_DELAY_FRAMES = int(np.ceil(0.05 * SAMPLE_RATE / HOP_SIZE))
LOUDNESS_THRESHOLD = 0.1
#: window length of WinModDiff1 in frames (100 ms)
WINDOW_FRAMES = int(np.floor(0.1 * SAMPLE_RATE / HOP_SIZE))
#: fewest frames that give every MOV at least one frame to average
MIN_FRAMES = DELAY_FRAMES + WINDOW_FRAMES
#: MFPD low-pass coefficient c0 and decay c1 (basic version)
MFPD_C0 = 0.9
MFPD_C1 = 1.0

MOV_NAMES = (
    "BandwidthRef_B", "BandwidthTest_B", "TotalNMR_B", "WinModDiff1_B", "ADB_B", "EHS_B",
    "AvgModDiff1_B", "AvgModDiff2_B", "RmsNoiseLoud_B", "MFPD_B", "RelDistFrames_B",
)


@dataclass(frozen=True)
class FrameRange:
    """First and last frame (inclusive) that enter the MOV averages."""

    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


def data_boundary(x: np.ndarray) -> tuple[int, int] | None:
    """First and last sample index of the reference's active region (section 5.2.4).

    The start is the first index ``i`` with ``sum(|x[i:i+5]|) > 200/32768``, the end the
    last index ``i`` with ``sum(|x[i-4:i+1]|) > 200/32768``; ``None`` when no window of 5
    samples is loud enough.
    """
    sums = np.convolve(np.abs(x), np.ones(BOUNDARY_WINDOW), mode="valid")
    loud = np.flatnonzero(sums > BOUNDARY_THRESHOLD)
    if loud.size == 0:
        return None
    return int(loud[0]), int(loud[-1] + BOUNDARY_WINDOW - 1)


def frame_range(ref: np.ndarray) -> FrameRange:
    """Frames to average for a 48 kHz reference, or an :class:`AudioError` when the
    reference is silent or its active part is too short for PEAQ's delayed averages."""
    bounds = data_boundary(ref)
    if bounds is None:
        raise AudioError("PEAQ reference signal is silent (no 5 samples above the data-boundary threshold)")
    start, end = bounds
    first = start // HOP_SIZE
    last = (end + 1 - HOP_SIZE) // HOP_SIZE
    if last + 1 < MIN_FRAMES or last < first:
        need = MIN_FRAMES * HOP_SIZE / SAMPLE_RATE
        raise AudioError(
            f"PEAQ needs at least {need:.2f} s of audio (ending {need:.2f} s or later); "
            f"the reference's active part ends at {(end + 1) / SAMPLE_RATE:.2f} s"
        )
    return FrameRange(first, last)


def _mean_nonnegative(x: np.ndarray) -> float:
    keep = x[x >= 0]
    return float(keep.mean()) if keep.size else 0.0


def windowed_average(x: np.ndarray, length: int = WINDOW_FRAMES) -> float:
    """``sqrt(mean_n ((1/L) sum_{i<L} sqrt(x[n-i]))^4)`` over full windows (eq. for WinModDiff1)."""
    if len(x) < length:
        return 0.0
    r = np.sqrt(x)
    c = np.concatenate([[0.0], np.cumsum(r)])
    win = (c[length:] - c[:-length]) / length
    return float(np.sqrt(np.mean(win ** 4)))


def filtered_max_probability(prob: np.ndarray) -> float:
    """MFPD: ``P~[n] = c0 P~[n-1] + (1-c0) Pc[n]``, ``Pmax[n] = max(c1 Pmax[n-1], P~[n])`` (section 4.7)."""
    filt, pmax = 0.0, 0.0
    for p in prob:
        filt = MFPD_C0 * filt + (1.0 - MFPD_C0) * p
        pmax = max(MFPD_C1 * pmax, filt)
    return float(pmax)


def average_distorted_block(det: Detection) -> float:
    """ADB: ``log10(sum Qc / n)`` over the ``n`` frames with ``Pc > 0.5``; 0 when there are
    none and -0.5 when their steps sum to zero (section 4.7)."""
    distorted = det.probability > 0.5
    n = int(distorted.sum())
    if n == 0:
        return 0.0
    total = float(det.steps[distorted].sum())
    return float(np.log10(total / n)) if total > 0 else -0.5


def average_movs(frames: FrameRange, bw: Bandwidths, nmr: NoiseToMask, mod: ModulationDifference,
                 noise_loud: np.ndarray, loudness_ref: np.ndarray, loudness_test: np.ndarray,
                 det: Detection, ehs: np.ndarray) -> dict[str, float]:
    """The 11 basic-version MOVs from per-frame precursors (section 5.2), in network order."""
    sel = slice(frames.first, frames.last + 1)

    valid_bw = bw.valid[sel]
    bw_ref = float(bw.ref[sel][valid_bw].mean()) if valid_bw.any() else 0.0
    bw_test = float(bw.test[sel][valid_bw].mean()) if valid_bw.any() else 0.0

    total_nmr = float(10.0 * np.log10(nmr.mean[sel].mean()))
    rel_dist = float(np.mean(nmr.max[sel] > 10.0 ** 0.15))

    mod_first = max(frames.first, DELAY_FRAMES)
    msel = slice(mod_first, frames.last + 1)
    win_mod = windowed_average(mod.diff1[msel])
    weight = mod.weight[msel]
    wsum = weight.sum()
    avg_mod1 = float((weight * mod.diff1[msel]).sum() / wsum) if wsum > 0 else 0.0
    avg_mod2 = float((weight * mod.diff2[msel]).sum() / wsum) if wsum > 0 else 0.0

    loud = (loudness_ref[sel] > LOUDNESS_THRESHOLD) & (loudness_test[sel] > LOUDNESS_THRESHOLD)
    nl_first = frames.first + (int(np.argmax(loud)) if loud.any() else frames.count)
    nl_first = max(nl_first + LOUDNESS_DELAY_FRAMES, mod_first)
    nl = noise_loud[nl_first:frames.last + 1]
    rms_nl = float(np.sqrt(np.mean(nl ** 2))) if nl.size else 0.0

    det_sel = Detection(probability=det.probability[sel], steps=det.steps[sel])
    return dict(zip(MOV_NAMES, (
        bw_ref, bw_test, total_nmr, win_mod, average_distorted_block(det_sel),
        1000.0 * _mean_nonnegative(ehs[sel]), avg_mod1, avg_mod2, rms_nl,
        filtered_max_probability(det_sel.probability), rel_dist,
    )))
