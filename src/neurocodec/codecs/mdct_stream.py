"""Streaming MDCT coding (codec id ``mdct``): :class:`MdctStreamEncoder` is fed blocks of
audio and emits each 1 s chunk as soon as its frames are complete; :class:`MdctStreamDecoder`
is fed chunks and returns finished samples (docs/bitstream.md, "Streaming").  Both drive the
frame coding of :class:`~neurocodec.codecs.mdct.MdctCodec` (``_encode_chunk``,
``_decode_chunk``, fejgin2020 §3.1); ``compress`` and ``decompress`` run through them, so a
streamed file and a whole-file one are the same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..dsp import mdct as mdctlib
from ..errors import AudioError, CorruptStreamError

if TYPE_CHECKING:
    from .mdct import MdctCodec, _FrameRecord

__all__ = ["MdctStreamEncoder", "MdctStreamDecoder"]


class MdctStreamEncoder:
    """The MDCT encoder fed block by block (:meth:`push` ``(C, n)`` float32 at 16 kHz), emitting
    each chunk as soon as its frames are complete; memory holds one chunk of signal.

    With ``num_samples`` the budget is that of :meth:`MdctCodec.compress` (same bytes); without
    it (a pipe) every frame gets the long-signal budget (:meth:`MdctCodec._frame_budget`)."""

    def __init__(self, codec: MdctCodec, channels: int, kbps: float, num_samples: int | None = None,
                 keep_records: bool = False, budget_bytes: float | None = None):
        self.codec, self.channels, self.num_samples = codec, int(channels), num_samples
        self.hop, self.chunk_frames = codec.config.hop, codec.config.chunk_frames
        self.base = codec._frame_budget(kbps, self.channels, num_samples, budget_bytes)
        self.reservoir = np.zeros(self.channels)
        self.buf = np.zeros((self.channels, 0), dtype=np.float32)
        self.buf_start = 0  # sample index of buf[:, 0] (a multiple of hop)
        self.received = 0
        self.next_chunk = 0
        self.keep_records = keep_records

    def _emit(self, f0: int, f1: int) -> tuple[bytes, list[_FrameRecord]]:
        first = self.buf_start // self.hop
        data, records = self.codec._encode_chunk(self.buf, first, f0, f1, self.base, self.reservoir)
        self.next_chunk += 1
        keep = max((f1 - 1) * self.hop, 0)  # the next chunk's first frame starts one hop early
        if keep > self.buf_start:
            self.buf = self.buf[:, keep - self.buf_start:]
            self.buf_start = keep
        return data, (records if self.keep_records else [])

    def push_records(self, block: np.ndarray) -> list[tuple[bytes, list[_FrameRecord]]]:
        x = np.asarray(block, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != self.channels:
            raise AudioError(f"mdct encoder expects ({self.channels}, n) blocks, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise AudioError("audio contains NaN or Inf samples")
        self.buf = np.concatenate([self.buf, x], axis=1) if self.buf.shape[1] else x
        self.received += x.shape[1]
        out = []
        n = self.chunk_frames
        # chunk k is complete (and not the last) once the signal reaches the end of its last frame
        while self.received >= (self.next_chunk + 1) * n * self.hop:
            out.append(self._emit(self.next_chunk * n, (self.next_chunk + 1) * n))
        return out

    def finish_records(self) -> list[tuple[bytes, list[_FrameRecord]]]:
        if self.received == 0:
            raise AudioError("audio is empty (0 samples)")
        if self.num_samples is not None and self.received != self.num_samples:
            raise AudioError(f"expected {self.num_samples} samples, got {self.received}")
        frames, n_chunks = self.codec._frames_layout(self.received)
        n = self.chunk_frames
        return [self._emit(k * n, min((k + 1) * n, frames)) for k in range(self.next_chunk, n_chunks)]

    def push(self, block: np.ndarray) -> list[bytes]:
        return [data for data, _ in self.push_records(block)]

    def finish(self) -> list[bytes]:
        return [data for data, _ in self.finish_records()]


class MdctStreamDecoder:
    """The MDCT decoder fed chunk by chunk: a chunk is decoded when the next one (or the end,
    :meth:`finish` with the length) shows whether it is the last; returns finished samples."""

    def __init__(self, codec: MdctCodec, channels: int):
        self.codec, self.channels = codec, int(channels)
        if self.channels < 1:
            raise CorruptStreamError(f"mdct stream has {self.channels} channels")
        self.hop, self.chunk_frames = codec.config.hop, codec.config.chunk_frames
        self.pending: bytes | None = None
        self.index = 0
        self.carry: list[np.ndarray | None] = [None] * self.channels
        self.pos = -self.hop  # output index of the next synthesized sample (framing starts hop early)

    def _synthesize(self, records: list[_FrameRecord], limit: int | None) -> np.ndarray:
        n = 0
        parts = []
        for c, rec in enumerate(records):
            samples, self.carry[c] = mdctlib.overlap_add(rec.coefficients, self.codec._window, self.carry[c])
            n = samples.size
            parts.append(samples)
        lo = max(self.pos, 0)
        hi = self.pos + n if limit is None else min(self.pos + n, limit)
        out = np.stack([p[lo - self.pos:hi - self.pos] for p in parts]).astype(np.float32) if hi > lo \
            else np.zeros((self.channels, 0), dtype=np.float32)
        self.pos += n
        return out

    def _decode_pending(self, frames: int, limit: int | None) -> np.ndarray:
        f0 = self.index * self.chunk_frames
        records = self.codec._decode_chunk(self.index, self.pending, self.channels, f0, f0 + frames)
        self.index += 1
        self.pending = None
        return self._synthesize(records, limit)

    def push(self, chunk: bytes) -> np.ndarray:
        out = np.zeros((self.channels, 0), dtype=np.float32)
        if self.pending is not None:
            out = self._decode_pending(self.chunk_frames, None)
        self.pending = bytes(chunk)
        return out

    def finish(self, num_samples: int) -> np.ndarray:
        num_samples = int(num_samples)
        if num_samples < 1:
            raise CorruptStreamError(f"mdct stream has {num_samples} samples")
        frames, n_chunks = self.codec._frames_layout(num_samples)
        got = self.index + (self.pending is not None)
        if got != n_chunks:
            raise CorruptStreamError(f"mdct stream of {num_samples} samples needs {n_chunks} chunks, found {got}")
        out = self._decode_pending(frames - self.index * self.chunk_frames, num_samples)
        if self.pos < num_samples:  # cannot happen for a consistent layout; keep the length exact
            out = np.concatenate([out, np.zeros((self.channels, num_samples - self.pos), np.float32)], axis=1)
        return out
