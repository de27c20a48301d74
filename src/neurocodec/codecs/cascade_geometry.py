"""Framing geometry of the cascade codecs: frames of ``S`` samples every ``S - o`` (zhen2019
§2.1.1), the LPC segments (zhen2020 §3.1) and the ~1 s chunks of the bitstream."""

from __future__ import annotations

from dataclasses import dataclass

from .cascade_config import CascadeConfig

__all__ = ["Geometry"]


@dataclass(frozen=True)
class Geometry:
    """Frames, LPC segments and chunks of a signal of ``num_samples`` samples.

    Time axis: the signal starts at sample ``overlap`` of a zero-padded buffer of
    ``padded_length`` samples.  Frame ``f`` covers ``[f hop, f hop + S)``; segment ``k``
    covers ``[k L, (k+1) L)``; chunk ``c`` holds frames ``[c n, (c+1) n)`` and the segments
    that start inside ``[c n hop, (c+1) n hop)``.
    """

    num_samples: int
    frame_length: int
    hop: int
    overlap: int
    num_frames: int
    segment_length: int
    num_segments: int
    padded_length: int
    chunk_frames: int

    @classmethod
    def of(cls, cfg: CascadeConfig, num_samples: int) -> "Geometry":
        T, S, o, H = int(num_samples), cfg.frame_length, cfg.overlap, cfg.hop
        nf = -(-(T + o) // H)
        L = cfg.lpc.segment_length if cfg.lpc is not None else 0
        nseg = -(-(T + o) // L) if L else 0
        padded = max(nf * H + o, nseg * L)
        return cls(T, S, H, o, nf, L, nseg, padded, cfg.chunk_frames)

    @property
    def num_chunks(self) -> int:
        return -(-self.num_frames // self.chunk_frames)

    @property
    def segments_per_chunk(self) -> int:
        return self.chunk_frames * self.hop // self.segment_length if self.segment_length else 0

    def frame_slice(self, chunk: int) -> slice:
        return slice(chunk * self.chunk_frames, min((chunk + 1) * self.chunk_frames, self.num_frames))

    def segment_slice(self, chunk: int) -> slice:
        n = self.segments_per_chunk
        return slice(min(chunk * n, self.num_segments), min((chunk + 1) * n, self.num_segments))
