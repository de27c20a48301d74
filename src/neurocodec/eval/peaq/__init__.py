"""PEAQ basic version (ITU-R BS.1387-1) and the 2f-model (Kastner & Herre 2019).

``peaq(ref, deg, sr)`` runs the FFT ear model on both signals, pre-processes the excitation
patterns, computes the 11 basic-version model output variables and maps them through the
Recommendation's neural network to a distortion index and an objective difference grade
(ODG, about 0 = imperceptible ... -4 = very annoying).  ``twof_model`` turns two of the MOVs
into the 2f-model's MUSHRA-scale score.  See ``docs/peaq.md`` for what was validated.

Inputs: ``(samples,)`` or ``(channels, samples)`` arrays at any sample rate; channels are
averaged, both signals are resampled to 48 kHz with soxr and cut to the shorter length.
Full scale is 1.0 and a full-scale sine plays at 92 dB SPL.  The signals must be
time-aligned (PEAQ does not search for a delay).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...audio import as_array, resample, validate
from ...errors import AudioError
from .averaging import MOV_NAMES, average_movs, frame_range
from .ear_model import SAMPLE_RATE, ear_model, frame_signal
from .mov import (
    bandwidth, detection_probability, error_harmonic_structure, modulation_difference,
    noise_loudness, noise_to_mask,
)
from .neural_net import distortion_index, odg_from_di
from .patterns import adapt_patterns, modulation_patterns, total_loudness
from .twof import twof_from_movs


@dataclass
class PeaqResult:
    """Objective difference grade, distortion index and the 11 MOVs (keys in network order)."""

    odg: float
    di: float
    movs: dict[str, float] = field(default_factory=dict)

    @property
    def twof(self) -> float:
        """2f-model score of these MOVs (clipped to [0, 100])."""
        return twof_from_movs(self.movs["AvgModDiff1_B"], self.movs["ADB_B"])


#: peak magnitude above which float input is taken to be mis-scaled (24 dB over full scale)
MAX_PEAK = 16.0


def _prepare(x, sr: int, what: str) -> np.ndarray:
    audio = validate(as_array(x), what)
    peak = float(np.abs(audio).max())
    if peak > MAX_PEAK:
        raise AudioError(f"{what} peaks at {peak:g} but full scale is 1.0: pass float audio in "
                         "[-1, 1] or integer PCM")
    mono = audio.mean(axis=0, keepdims=True)
    return resample(mono, sr, SAMPLE_RATE)[0].astype(np.float64)


def peaq(ref, deg, sr: int) -> PeaqResult:
    """PEAQ basic version of ``deg`` against ``ref`` (both at sample rate ``sr``).

    Raises :class:`AudioError` for empty or non-finite input, input peaking above 16
    (float audio in integer scale), a silent reference, signals shorter than PEAQ's
    averaging needs (about 0.6 s), or a sample rate that is not a positive integer.
    """
    if isinstance(sr, bool) or not isinstance(sr, (int, float, np.integer, np.floating)) \
            or not float(sr).is_integer() or sr <= 0:
        raise AudioError(f"PEAQ sample rate must be a positive integer, got {sr!r}")
    x_ref = _prepare(ref, int(sr), "PEAQ reference")
    x_deg = _prepare(deg, int(sr), "PEAQ degraded signal")
    n = min(len(x_ref), len(x_deg))
    x_ref, x_deg = x_ref[:n], x_deg[:n]
    frames = frame_range(x_ref)

    num_frames = frames.last + 1
    fr_ref, fr_deg = frame_signal(x_ref, num_frames), frame_signal(x_deg, num_frames)
    ear_ref, ear_deg = ear_model(fr_ref), ear_model(fr_deg)

    adapted = adapt_patterns(ear_ref.excitation, ear_deg.excitation)
    mod_ref = modulation_patterns(ear_ref.unsmeared)
    mod_deg = modulation_patterns(ear_deg.unsmeared)

    movs = average_movs(
        frames,
        bw=bandwidth(ear_ref.power, ear_deg.power),
        nmr=noise_to_mask(ear_ref.weighted, ear_deg.weighted, ear_ref.excitation),
        mod=modulation_difference(mod_ref, mod_deg),
        noise_loud=noise_loudness(mod_ref, mod_deg, adapted.ref, adapted.test),
        loudness_ref=total_loudness(ear_ref.excitation),
        loudness_test=total_loudness(ear_deg.excitation),
        det=detection_probability(ear_ref.excitation, ear_deg.excitation),
        ehs=error_harmonic_structure(ear_ref.weighted, ear_deg.weighted, fr_ref, fr_deg),
    )
    di = distortion_index(movs)
    return PeaqResult(odg=odg_from_di(di), di=di, movs=movs)


def twof_model(ref, deg=None, sr: int | None = None) -> float:
    """2f-model score in [0, 100] of ``deg`` against ``ref``; ``ref`` may instead be a
    :class:`PeaqResult` (then ``deg`` and ``sr`` are not used)."""
    if isinstance(ref, PeaqResult):
        return ref.twof
    if deg is None or sr is None:
        raise AudioError("twof_model needs (ref, deg, sr) or a PeaqResult")
    return peaq(ref, deg, sr).twof


def peaq_odg(ref, deg, sr: int) -> float:
    """Metric function: PEAQ basic ODG of ``deg`` against ``ref`` (higher is better)."""
    return peaq(ref, deg, sr).odg


def twof(ref, deg, sr: int) -> float:
    """Metric function: 2f-model score of ``deg`` against ``ref`` (0..100, higher is better)."""
    return peaq(ref, deg, sr).twof


__all__ = ["MOV_NAMES", "PeaqResult", "peaq", "peaq_odg", "twof", "twof_model", "twof_from_movs",
           "distortion_index", "odg_from_di"]
