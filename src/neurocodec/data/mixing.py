"""Signal mixing and augmentation after the EnCodec recipe (encodec2022 §4.1).

EnCodec normalizes each file, mixes sources, applies a random gain between -10 and +6 dB,
rejects clipped samples, and adds reverberation with probability 0.2 using room impulse
responses with RT60 in [0.3, 1.3] s.  Here the room impulse responses come from
pyroomacoustics' image-source model of a random shoebox room (the DNS challenge RIRs the
paper uses cannot be downloaded here), and instead of rejecting clipped mixtures the gain
is lowered until the peak fits under full scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError

EPS = 1e-12
GAIN_RANGE_DB = (-10.0, 6.0)
RT60_RANGE_S = (0.3, 1.3)
REVERB_PROBABILITY = 0.2
PEAK_LIMIT = 0.99


def rms(x: np.ndarray) -> float:
    """Root mean square of a signal."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + EPS))


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """10 log10 of signal power over noise power."""
    ps = float(np.mean(np.square(signal, dtype=np.float64)))
    pn = float(np.mean(np.square(noise, dtype=np.float64)))
    return 10.0 * np.log10((ps + EPS) / (pn + EPS))


def normalize_rms(x: np.ndarray, target_dbfs: float = -20.0, peak: float = PEAK_LIMIT) -> np.ndarray:
    """Scale ``x`` to an RMS of ``target_dbfs`` dB full scale, lowered if the peak would
    exceed ``peak`` ("normalized by file", encodec2022 §4.1)."""
    x = np.asarray(x, dtype=np.float32)
    if not np.any(x):
        return x
    g = db_to_gain(target_dbfs) / rms(x)
    g = min(g, peak / (float(np.max(np.abs(x))) + EPS))
    return (x * g).astype(np.float32)


def scale_to_snr(signal: np.ndarray, noise: np.ndarray, target_snr_db: float) -> np.ndarray:
    """The ``noise`` scaled so that ``snr_db(signal, scaled) == target_snr_db``."""
    if signal.shape != noise.shape:
        raise UserError(f"signal and noise lengths differ ({signal.shape} vs {noise.shape})")
    pn = float(np.mean(np.square(noise, dtype=np.float64)))
    if pn <= EPS:
        raise UserError("cannot mix silent noise at a finite SNR")
    ps = float(np.mean(np.square(signal, dtype=np.float64)))
    g = np.sqrt(ps / (pn * 10.0 ** (target_snr_db / 10.0)))
    return (noise * g).astype(np.float32)


def fit_to(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-sample excerpt of ``x``; ``x`` is tiled first if shorter."""
    if len(x) == 0:
        raise UserError("cannot take an excerpt of an empty signal")
    if len(x) < n:
        x = np.tile(x, int(np.ceil(n / len(x))) + 1)
    start = int(rng.integers(0, len(x) - n + 1))
    return np.ascontiguousarray(x[start:start + n])


def colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f power) or brown (1/f^2) Gaussian noise of unit RMS."""
    exponents = {"white": 0.0, "pink": 1.0, "brown": 2.0}
    if color not in exponents:
        raise UserError(f"unknown noise color {color!r} (use white, pink or brown)")
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    spec = spec / f ** (exponents[color] / 2.0)
    x = np.fft.irfft(spec, n)
    return (x / rms(x)).astype(np.float32)


@dataclass(frozen=True)
class Room:
    """A shoebox room with a source and a microphone (metres) and its target RT60 (s)."""

    dims: tuple[float, float, float]
    source: tuple[float, float, float]
    mic: tuple[float, float, float]
    rt60: float

    @classmethod
    def draw(cls, rng: np.random.Generator, rt60_range: tuple[float, float] = RT60_RANGE_S) -> "Room":
        dims = (float(rng.uniform(3, 10)), float(rng.uniform(3, 8)), float(rng.uniform(2.4, 4.0)))

        def point() -> tuple[float, float, float]:
            return tuple(float(rng.uniform(0.5, d - 0.5)) for d in dims[:2]) + (float(rng.uniform(1.0, 2.0)),)

        src, mic = point(), point()
        for _ in range(20):  # keep source and microphone at least 1 m apart
            if np.linalg.norm(np.subtract(src, mic)) >= 1.0:
                break
            mic = point()
        return cls(dims, src, mic, float(rng.uniform(*rt60_range)))


def room_impulse_response(room: Room, sample_rate: int, max_order_cap: int = 60) -> np.ndarray:
    """Image-source RIR of ``room`` (pyroomacoustics ShoeBox, absorption from Sabine's
    formula for the target RT60), normalized to a unit direct-path peak.

    The reflection order is capped at ``max_order_cap`` to bound the cost (an uncapped
    1.3 s room takes seconds); late energy beyond that order is missing.
    """
    try:
        import pyroomacoustics as pra
    except ImportError:  # pragma: no cover - 'data' extra
        from ..errors import MissingToolError

        raise MissingToolError("pyroomacoustics is not installed (pip install pyroomacoustics)") from None
    e_absorption, max_order = pra.inverse_sabine(room.rt60, list(room.dims))
    shoebox = pra.ShoeBox(list(room.dims), fs=sample_rate, materials=pra.Material(e_absorption),
                          max_order=int(min(max_order, max_order_cap)))
    shoebox.add_source(list(room.source))
    shoebox.add_microphone(np.array(room.mic)[:, None])
    shoebox.compute_rir()
    h = np.asarray(shoebox.rir[0][0], dtype=np.float64)
    return (h / (np.max(np.abs(h)) + EPS)).astype(np.float32)


def apply_rir(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Convolve ``x`` with ``h``; the output is aligned on the direct path and keeps
    ``len(x)`` samples."""
    from scipy.signal import fftconvolve

    onset = int(np.argmax(np.abs(h)))
    y = fftconvolve(x.astype(np.float64), h.astype(np.float64))[onset:onset + len(x)]
    return y.astype(np.float32)


def random_gain(x: np.ndarray, rng: np.random.Generator, gain_range_db: tuple[float, float] = GAIN_RANGE_DB,
                peak: float = PEAK_LIMIT) -> tuple[np.ndarray, float]:
    """Apply a uniform random gain in ``gain_range_db``; if the result would clip, the gain
    is lowered to put the peak at ``peak``.  Returns the signal and the gain used (dB)."""
    g_db = float(rng.uniform(*gain_range_db))
    top = float(np.max(np.abs(x))) + EPS
    g_db = min(g_db, 20.0 * np.log10(peak / top))
    return (x * db_to_gain(g_db)).astype(np.float32), g_db


@dataclass(frozen=True)
class MixResult:
    """A mixture and what went into it."""

    audio: np.ndarray
    snr_db: float
    gain_db: float
    rt60: float | None  # None when no reverberation was added


def mix(speech: np.ndarray, background: np.ndarray, target_snr_db: float, rng: np.random.Generator,
        sample_rate: int, reverb_probability: float = REVERB_PROBABILITY,
        gain_range_db: tuple[float, float] = GAIN_RANGE_DB) -> MixResult:
    """Speech plus background at ``target_snr_db``, then reverberation with probability
    ``reverb_probability`` and a random gain (encodec2022 §4.1).

    ``background`` must have the length of ``speech``.  The SNR is measured between the
    dry speech and the dry scaled background; the room applies to the whole mixture.
    """
    speech = normalize_rms(speech)
    noise = scale_to_snr(speech, np.asarray(background, dtype=np.float32), target_snr_db)
    y = speech + noise
    rt60 = None
    if rng.random() < reverb_probability:
        room = Room.draw(rng)
        y = apply_rir(y, room_impulse_response(room, sample_rate))
        rt60 = room.rt60
    y = normalize_rms(y)
    y, g_db = random_gain(y, rng, gain_range_db)
    return MixResult(y, float(target_snr_db), g_db, rt60)
