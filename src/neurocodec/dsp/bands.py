"""Band layout, spectral envelope and spectral flattening (fejgin2020 §3.1).

"The coefficients of the transform are blocked into N non-uniform, non-overlapping frequency
bands. For an n-th band, a variance of the coefficients is computed and quantized with a 3 dB
step, yielding an index i_env(n)."  On the encoder side the MDCT lines are "spectrally
flattened by F(.) according to the envelope", and the decoder applies F^{-1}.

Here the variance of band ``n`` is the mean square of its coefficients,
``i_env(n) = round(10 log10(var_n) / 3)`` clipped to ``[env_min, env_max]``, the quantized
variance is ``10^(0.3 i_env(n))`` and ``F`` divides every coefficient of the band by the
square root of that quantized variance (so flattened bands have roughly unit variance).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "erb_rate",
    "design_band_edges",
    "band_widths",
    "band_index",
    "band_variances",
    "quantize_envelope",
    "envelope_variances",
    "flatten",
    "unflatten",
]

ENV_STEP_DB = 3.0


def erb_rate(freq_hz: np.ndarray | float) -> np.ndarray:
    """ERB-rate scale (Glasberg & Moore 1990): ``21.4 log10(1 + 0.00437 f)``."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(freq_hz, dtype=np.float64))


def _inverse_erb_rate(erb: float) -> float:
    return (10.0 ** (erb / 21.4) - 1.0) / 0.00437


def design_band_edges(num_coefs: int, num_bands: int, sample_rate: int, granule: int = 4,
                      min_width: int = 8) -> tuple[int, ...]:
    """Non-uniform band edges (``num_bands + 1`` line indices from 0 to ``num_coefs``).

    Built bottom-up: each band spans a fixed step ``dE`` on the ERB-rate scale, rounded to
    a multiple of ``granule`` lines, but is at least ``min_width`` lines and at least as wide
    as the band below it (so bands are narrow at low frequencies and never get narrower
    upwards).  The last band takes the remaining lines; ``dE`` is chosen on a fine grid so
    that this remainder is closest to its own ERB share while not narrower than the band
    below.  Deterministic."""
    if num_coefs % granule or min_width % granule:
        raise ValueError("num_coefs and min_width must be multiples of granule")
    if num_bands < 1 or num_bands * min_width > num_coefs:
        raise ValueError(f"{num_bands} bands of >= {min_width} lines do not fit in {num_coefs}")
    if num_bands == 1:
        return (0, num_coefs)
    hz = sample_rate / 2.0 / num_coefs  # width of one line
    best: tuple[float, list[int]] | None = None
    for step in np.linspace(0.2, 8.0, 3901):
        edges = [0]
        for _ in range(num_bands - 1):
            lo = edges[-1]
            hi = _inverse_erb_rate(float(erb_rate(lo * hz)) + step) / hz
            width = max(min_width, int(round((hi - lo) / granule)) * granule)
            if len(edges) > 1:
                width = max(width, edges[-1] - edges[-2])
            edges.append(lo + width)
        last = num_coefs - edges[-1]
        if last < edges[-1] - edges[-2]:
            continue
        ideal = _inverse_erb_rate(float(erb_rate(edges[-1] * hz)) + step) / hz - edges[-1]
        score = abs(last - ideal)
        if best is None or score < best[0]:
            best = (score, edges + [num_coefs])
    if best is None:
        raise ValueError(f"no layout of {num_bands} bands of >= {min_width} lines fits {num_coefs} lines")
    return tuple(int(e) for e in best[1])


def band_widths(edges: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """Widths (number of coefficients) of the bands defined by ``edges``."""
    return np.diff(np.asarray(edges, dtype=np.int64))


def band_index(edges: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """For every coefficient, the index of the band it belongs to."""
    return np.repeat(np.arange(len(edges) - 1), band_widths(edges))


def band_variances(coefs: np.ndarray, edges: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """Mean square of the coefficients of every band: ``(..., K)`` -> ``(..., num_bands)``."""
    edges = np.asarray(edges, dtype=np.int64)
    sq = np.asarray(coefs, dtype=np.float64) ** 2
    sums = np.add.reduceat(sq, edges[:-1], axis=-1)
    return sums / np.diff(edges)


def quantize_envelope(variances: np.ndarray, env_min: int, env_max: int) -> np.ndarray:
    """Envelope indices ``i_env = round(10 log10(var) / 3)`` clipped to ``[env_min, env_max]``."""
    var = np.maximum(np.asarray(variances, dtype=np.float64), 1e-30)
    idx = np.rint(10.0 * np.log10(var) / ENV_STEP_DB)
    return np.clip(idx, env_min, env_max).astype(np.int64)


def envelope_variances(i_env: np.ndarray) -> np.ndarray:
    """Quantized band variances ``10^(0.3 i_env)`` (the inverse of :func:`quantize_envelope`)."""
    return 10.0 ** (ENV_STEP_DB / 10.0 * np.asarray(i_env, dtype=np.float64))


def _coef_gains(i_env: np.ndarray, edges: tuple[int, ...] | np.ndarray) -> np.ndarray:
    std = np.sqrt(envelope_variances(i_env))
    return np.repeat(std, band_widths(edges), axis=-1)


def flatten(coefs: np.ndarray, i_env: np.ndarray, edges: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """Spectral flattening ``F``: divide each band by the square root of its quantized variance."""
    return np.asarray(coefs, dtype=np.float64) / _coef_gains(i_env, edges)


def unflatten(flat: np.ndarray, i_env: np.ndarray, edges: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """Inverse flattening ``F^{-1}``: multiply each band by the square root of its quantized variance."""
    return np.asarray(flat, dtype=np.float64) * _coef_gains(i_env, edges)
