"""16-bit PCM at 16 kHz: the uncompressed reference anchor (256 kbps per channel, so the only
``--bitrate`` of a stereo file is 512).

Useful as the upper anchor in rate-quality plots and as the simplest codec that exercises the
container, resampling and channel handling end to end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..errors import CorruptStreamError
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
