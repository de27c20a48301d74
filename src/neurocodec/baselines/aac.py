"""AAC-LC (ISO/IEC 14496-3) with ffmpeg's native ``aac`` encoder, in ADTS framing.

libfdk-aac is not in Debian's ffmpeg, so the native encoder is used: ``-c:a aac -b:a N``.  Its
rate control is average-bitrate (not strict CBR): the measured rate follows the target within
about +-12 % for 12-64 kbps at 16 kHz (docs/baselines.md).  Below about 11 kbps it cannot go
lower, so the range starts at 12 kbps; AAC-LC's per-frame cap (6144 bits per 1024 samples)
and the encoder's own ceiling near 80 kbps bound it at 64 kbps.

Payload (one chunk per channel): the ADTS stream (ISO/IEC 14496-3 §1.A.2), a valid ``.aac``
file; each 1024-sample frame carries a 7-byte ADTS header (0.875 kbps at 16 kHz, counted in
the measured rate).

Delay: the encoder's 1024 priming samples (measured by cross-correlation at 16-48 kHz) are
removed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from ..codecs.base import BitrateSpec
from . import ffmpeg
from .common import BaselineCodec
from .tools import BaselineConfigError

AAC_DELAY_SAMPLES = 1024
FRAME_SAMPLES = 1024


@dataclass(frozen=True)
class AacConfig:
    """Settings of the AAC baseline."""

    sample_rate: int = 16000

    def check(self) -> None:
        if self.sample_rate not in (16000, 22050, 24000, 32000, 44100, 48000):
            raise BaselineConfigError(
                f"aac sample_rate must be 16000, 22050, 24000, 32000, 44100 or 48000, not {self.sample_rate}")


class AacCodec(BaselineCodec):
    """AAC-LC (ffmpeg native encoder, ADTS) at 16 kHz, 12-64 kbps, one chunk per channel."""

    codec_id = "aac"
    codec_version = 1
    description = "AAC-LC via ffmpeg's native encoder (ADTS), 16 kHz"

    def __init__(self, config: AacConfig | None = None, **overrides):
        unknown = set(overrides) - {f.name for f in fields(AacConfig)}
        if unknown:
            raise BaselineConfigError(f"unknown aac setting(s): {', '.join(sorted(unknown))}")
        self.config = replace(config or AacConfig(), **overrides)
        self.config.check()
        ffmpeg.ffmpeg_path()
        self.sample_rate = self.config.sample_rate
        self.frame_samples = FRAME_SAMPLES
        self.codec_delay_samples = AAC_DELAY_SAMPLES
        self.algorithmic_delay_samples = 0
        scale = self.sample_rate / 16000
        self.bitrates = BitrateSpec(default=24.0, minimum=12.0, maximum=round(64.0 * scale, 3))

    def encode_channel(self, pcm: np.ndarray, kbps: float) -> bytes:
        """Encode one channel into an AAC-LC ADTS stream at about ``kbps``."""
        args = ["-c:a", "aac", "-profile:a", "aac_low", "-b:a", f"{int(round(kbps * 1000))}"]
        return ffmpeg.encode(pcm, self.sample_rate, args, "adts")

    def decode_channel(self, payload: bytes, num_frames: int, kbps: float) -> np.ndarray:
        """Decode one channel's ADTS stream with ffmpeg."""
        return ffmpeg.decode(payload, self.sample_rate, "aac")
