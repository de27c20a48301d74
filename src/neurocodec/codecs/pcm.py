"""16-bit PCM at 16 kHz: the uncompressed reference anchor (256 kbps per channel, so the only
``--bitrate`` of a stereo file is 512).

Useful as the upper anchor in rate-quality plots and as the simplest codec that exercises the
container, resampling and channel handling end to end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..errors import AudioError, CorruptStreamError
from .base import BitrateSpec, CodecModel, EncodedAudio


@dataclass(frozen=True)
class PcmConfig:
    sample_rate: int = 16000
    chunk_samples: int = 16000  # one chunk per second


class PcmCodec(CodecModel):
    codec_id = "pcm"
    codec_version = 1
    description = "16-bit PCM reference anchor"

    def __init__(self, config: PcmConfig | None = None):
        self.config = config or PcmConfig()
        self.sample_rate = self.config.sample_rate
        kbps = 16 * self.sample_rate / 1000
        self.bitrates = BitrateSpec(default=kbps, choices=(kbps,))

    def num_chunks(self, num_channels: int, num_samples: int, bitrate_kbps: float) -> int:
        return -(-int(num_samples) // self.config.chunk_samples)

    def compress(self, audio: np.ndarray, bitrate_kbps: float | None = None, **kwargs) -> EncodedAudio:
        """16-bit big-endian PCM, channels interleaved, one chunk per ``chunk_samples``."""
        audio = np.asarray(audio, dtype=np.float64)
        kbps = self.validate_bitrate(bitrate_kbps, audio.shape[0])
        q = np.clip(np.round(audio * 32768.0), -32768, 32767).astype(">i2")
        n = q.shape[1]
        step = self.config.chunk_samples
        chunks = [q[:, s:s + step].T.tobytes() for s in range(0, n, step)]  # interleaved channels
        return EncodedAudio(chunks=chunks, bitrate_kbps=kbps, num_channels=q.shape[0], num_samples=n)

    def decompress(self, chunks: Sequence[bytes] | Iterable[bytes], num_channels: int,
                   num_samples: int, bitrate_kbps: float) -> np.ndarray:
        data = b"".join(chunks)
        if len(data) != 2 * num_channels * num_samples:
            raise CorruptStreamError("pcm payload size does not match the header")
        q = np.frombuffer(data, dtype=">i2").reshape(num_samples, num_channels).T
        return (q.astype(np.float32) / 32768.0).copy()

    def stream_encoder(self, bitrate_kbps: float, channels: int, num_samples: int | None = None,
                       payload_budget_bytes: int | None = None) -> "PcmStreamEncoder":
        """An incremental encoder: one chunk per second as soon as it is complete (same bytes as
        :meth:`compress`; the rate is fixed, so neither the rate nor the budget is used)."""
        return PcmStreamEncoder(self.config.chunk_samples, channels)

    def stream_decoder(self, bitrate_kbps: float, channels: int) -> "PcmStreamDecoder":
        return PcmStreamDecoder(self.config.chunk_samples, channels)


class PcmStreamEncoder:
    """PCM chunks from ``(C, n)`` blocks; holds at most one chunk of signal."""

    def __init__(self, chunk_samples: int, channels: int):
        self.step, self.channels = int(chunk_samples), int(channels)
        self.buf = np.zeros((self.channels, 0), dtype=np.float32)
        self.received = 0

    def _chunk(self, x: np.ndarray) -> bytes:
        q = np.clip(np.round(np.asarray(x, dtype=np.float64) * 32768.0), -32768, 32767).astype(">i2")
        return q.T.tobytes()

    def push(self, block: np.ndarray) -> list[bytes]:
        x = np.asarray(block, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != self.channels:
            raise AudioError(f"pcm encoder expects ({self.channels}, n) blocks, got shape {x.shape}")
        self.buf = np.concatenate([self.buf, x], axis=1)
        self.received += x.shape[1]
        out = []
        while self.buf.shape[1] >= self.step:
            out.append(self._chunk(self.buf[:, :self.step]))
            self.buf = self.buf[:, self.step:]
        return out

    def finish(self) -> list[bytes]:
        if self.received == 0:
            raise AudioError("audio is empty (0 samples)")
        return [self._chunk(self.buf)] if self.buf.shape[1] else []


class PcmStreamDecoder:
    """Audio from PCM chunks as they arrive; every chunk but the last holds ``chunk_samples``."""

    def __init__(self, chunk_samples: int, channels: int):
        self.step, self.channels = int(chunk_samples), int(channels)
        if self.channels < 1:
            raise CorruptStreamError(f"pcm stream has {self.channels} channels")
        self.decoded = 0
        self.short = False

    def push(self, chunk: bytes) -> np.ndarray:
        if self.short or len(chunk) % (2 * self.channels) or len(chunk) > 2 * self.channels * self.step:
            raise CorruptStreamError("pcm payload size does not match the header")
        q = np.frombuffer(chunk, dtype=">i2").reshape(-1, self.channels).T
        self.short = q.shape[1] < self.step
        self.decoded += q.shape[1]
        return (q.astype(np.float32) / 32768.0).copy()

    def finish(self, num_samples: int) -> np.ndarray:
        if self.decoded != int(num_samples):
            raise CorruptStreamError("pcm payload size does not match the header")
        return np.zeros((self.channels, 0), dtype=np.float32)
