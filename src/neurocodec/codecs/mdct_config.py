"""Configuration of the ``mdct`` codec (fejgin2020 §3.1): frame and band layout, the quantizer
ladder of the per-frame rate control and the entropy-coder settings (:class:`MdctConfig`).
The codec itself is :mod:`neurocodec.codecs.mdct`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np


__all__ = ["MdctConfig", "default_quantizer_layout"]


def default_quantizer_layout(num_quantizers: int = 32, step_1: float = 1.5,
                             steps_per_octave: int = 4) -> tuple[tuple[int, int, int], ...]:
    """Symbol layout ``(d, L, s)`` of quantizers ``m_1..m_M`` chosen from their step size.

    Coarse quantizers (step >= 1.2, mostly zeros) code 4-tuples of magnitudes 0..2 (81
    symbols), medium ones (step >= 0.45) pairs of magnitudes 0..8 (81 symbols), fine ones
    single magnitudes whose ``s`` low bits are sent raw so that the Huffman-coded part has an
    effective step of 0.45..0.9 (magnitudes 0..23, 24 symbols).  Magnitudes at ``L`` carry an
    escape code; signs are sent raw."""
    out = []
    for k in range(1, num_quantizers + 1):
        step = step_1 * 2.0 ** (-(k - 1) / steps_per_octave)
        if step >= 1.2:
            out.append((4, 2, 0))
        elif step >= 0.45:
            out.append((2, 8, 0))
        else:
            s = int(np.ceil(np.log2(0.45 / step) - 1e-9))
            out.append((1, 23, s))
    return tuple(out)


#: ``bands.design_band_edges(320, 16, 16000, min_width=8)`` (a test checks it): 200 Hz wide
#: bands up to 1.2 kHz, then ERB-spaced
DEFAULT_BAND_EDGES = (0, 8, 16, 24, 32, 40, 48, 60, 72, 88, 108, 128, 152, 184, 220, 264, 320)


@dataclass(frozen=True)
class MdctConfig:
    """Everything that determines the ``mdct`` bitstream.

    ``band_edges``: N+1 line indices (multiples of 4); ``env_min``/``env_max``: range of
    ``i_env`` (3 dB steps, 64 levels); ``num_quantizers``: M; ``step_1``: step of ``m_1`` on
    flattened (unit-variance) lines, then /2^(1/steps_per_octave) per index; ``rounding``:
    ``|q| = floor(|y|/step + rounding)``; ``recon_offset``: decoded magnitude is
    ``(|q| - recon_offset) * step``; ``quantizer_layout``: ``(d, L, s)`` per quantizer (see
    :func:`default_quantizer_layout`); ``max_flat``: flattened lines are clipped to this;
    ``noise_fill``: standard deviation (relative to the envelope) of the decoder's noise in
    bands with ``m_n = 0`` (0 = off); ``chunk_frames``: frames per payload chunk;
    ``reservoir_frames``: most unused bits (in frames' worth) the reservoir carries."""

    sample_rate: int = 16000
    hop: int = 320
    window: str = "kbd"
    band_edges: tuple[int, ...] = DEFAULT_BAND_EDGES
    env_min: int = -36
    env_max: int = 27
    num_quantizers: int = 32
    step_1: float = 1.5
    steps_per_octave: int = 4
    rounding: float = 0.5
    recon_offset: float = 0.3
    quantizer_layout: tuple[tuple[int, int, int], ...] = field(default_factory=default_quantizer_layout)
    max_flat: float = 16.0
    noise_fill: float = 0.4
    chunk_frames: int = 50
    reservoir_frames: float = 2.0

    def __post_init__(self) -> None:
        edges = tuple(int(e) for e in self.band_edges)
        object.__setattr__(self, "band_edges", edges)
        layout = tuple(tuple(int(v) for v in q) for q in self.quantizer_layout)
        object.__setattr__(self, "quantizer_layout", layout)
        if self.hop % 4 or self.hop <= 0:
            raise ValueError("hop must be a positive multiple of 4")
        if edges[0] != 0 or edges[-1] != self.hop or any(b <= a for a, b in zip(edges, edges[1:])):
            raise ValueError("band_edges must increase strictly from 0 to hop")
        if not self.env_min < self.env_max:
            raise ValueError("env_min must be below env_max")
        if len(layout) != self.num_quantizers or self.num_quantizers < 1:
            raise ValueError("quantizer_layout needs one (d, L, s) entry per quantizer")
        for d, big, s in layout:
            if d not in (1, 2, 4) or big < 1 or s < 0 or (d > 1 and s):
                raise ValueError(f"invalid quantizer layout entry {(d, big, s)}")
            if any(e % d for e in edges):
                raise ValueError(f"band edges must be multiples of the tuple size {d}")
        if self.window not in ("sine", "kbd"):
            raise ValueError("window must be 'sine' or 'kbd'")
        if self.chunk_frames < 1:
            raise ValueError("chunk_frames must be >= 1")

    # -- derived quantities ---------------------------------------------------------------
    @property
    def num_bands(self) -> int:
        return len(self.band_edges) - 1

    @property
    def env_levels(self) -> int:
        """E, the number of envelope indices."""
        return self.env_max - self.env_min + 1

    @property
    def env_bits(self) -> int:
        """Bits of the first (absolute) envelope index."""
        return max(1, int(self.env_levels - 1).bit_length())

    def steps(self) -> np.ndarray:
        """Step sizes of quantizers ``m_1..m_M`` (index 0 of the result is ``m_1``)."""
        k = np.arange(self.num_quantizers, dtype=np.float64)
        return self.step_1 * 2.0 ** (-k / self.steps_per_octave)

    def alphabet_sizes(self) -> tuple[int, ...]:
        """Alphabet size of the Huffman code of each quantizer ``m_1..m_M``."""
        return tuple((big + 1) ** d for d, big, _ in self.quantizer_layout)

    def table_key(self) -> dict:
        """The fields the Huffman tables were designed for."""
        d = asdict(self)
        for k in ("noise_fill", "chunk_frames", "reservoir_frames", "recon_offset"):
            d.pop(k)
        return json.loads(json.dumps(d))
