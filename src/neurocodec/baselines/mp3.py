"""MP3 (MPEG-1/2 Audio Layer III) with LAME, through ffmpeg's ``libmp3lame`` encoder.

Constant bitrate (``-b:a``, LAME CBR).  At 16 kHz this is MPEG-2 Layer III (ISO/IEC 13818-3)
with 576-sample frames and the ladder 8-160 kbps; at 32/44.1/48 kHz it is MPEG-1 Layer III
(ISO/IEC 11172-3) with 1152-sample frames and the ladder 32-320 kbps.

Payload (one chunk per channel): the bare MP3 frames, i.e. a valid ``.mp3`` file without ID3
tag and without the Xing/LAME info frame (``-id3v2_version 0 -write_xing 0``).  Each frame
carries its own 4-byte header (1.4-5.6 kbps at 16 kHz, included in the measured rate) and
CBR frames are byte-exact: ``144 * bitrate / sample_rate`` bytes (72 for MPEG-2) plus a
padding byte when needed.  The measured rate also counts the frames that carry the delay.

Delay: LAME's 576-sample encoder delay plus the 529-sample decoder delay, 1105 samples at
every rate (measured by cross-correlation at 16-48 kHz), is removed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from ..codecs.base import BitrateSpec
from . import ffmpeg
from .common import BaselineCodec
from ..errors import MissingToolError
from .tools import BaselineConfigError

#: MPEG-2 (LSF) and MPEG-1 Layer III bitrate ladders in kbps (ISO/IEC 13818-3, 11172-3)
LADDER_MPEG2 = (8.0, 16.0, 24.0, 32.0, 40.0, 48.0, 56.0, 64.0, 80.0, 96.0, 112.0, 128.0, 144.0, 160.0)
LADDER_MPEG1 = (32.0, 40.0, 48.0, 56.0, 64.0, 80.0, 96.0, 112.0, 128.0, 160.0, 192.0, 224.0, 256.0, 320.0)
MP3_DELAY_SAMPLES = 1105


@dataclass(frozen=True)
class Mp3Config:
    """Settings of the MP3 baseline."""

    sample_rate: int = 16000

    def check(self) -> None:
        if self.sample_rate not in (16000, 22050, 24000, 32000, 44100, 48000):
            raise BaselineConfigError(
                f"mp3 sample_rate must be 16000, 22050, 24000, 32000, 44100 or 48000, not {self.sample_rate}")


class Mp3Codec(BaselineCodec):
    """MP3 CBR (LAME via ffmpeg), 16 kHz by default (8-160 kbps), one chunk per channel."""

    codec_id = "mp3"
    codec_version = 1
    description = "MP3 CBR via ffmpeg libmp3lame (LAME), 16 kHz"

    def __init__(self, config: Mp3Config | None = None, **overrides):
        unknown = set(overrides) - {f.name for f in fields(Mp3Config)}
        if unknown:
            raise BaselineConfigError(f"unknown mp3 setting(s): {', '.join(sorted(unknown))}")
        self.config = replace(config or Mp3Config(), **overrides)
        self.config.check()
        ffmpeg.ffmpeg_path()
        if not ffmpeg.ffmpeg_has_encoder("libmp3lame"):
            raise MissingToolError("this ffmpeg has no libmp3lame encoder (apt-get install ffmpeg libmp3lame0)")
        self.sample_rate = self.config.sample_rate
        mpeg1 = self.sample_rate >= 32000
        self.frame_samples = 1152 if mpeg1 else 576
        self.codec_delay_samples = MP3_DELAY_SAMPLES
        self.algorithmic_delay_samples = 0
        ladder = LADDER_MPEG1 if mpeg1 else LADDER_MPEG2
        self.bitrates = BitrateSpec(default=64.0 if mpeg1 else 32.0, choices=ladder)

    def encode_channel(self, pcm: np.ndarray, kbps: float) -> bytes:
        """LAME CBR-encode one channel into bare MP3 frames."""
        args = ["-c:a", "libmp3lame", "-b:a", f"{int(kbps)}k", "-write_xing", "0", "-id3v2_version", "0"]
        return ffmpeg.encode(pcm, self.sample_rate, args, "mp3")

    def decode_channel(self, payload: bytes, num_frames: int, kbps: float) -> np.ndarray:
        """Decode one channel's MP3 frames with ffmpeg."""
        return ffmpeg.decode(payload, self.sample_rate, "mp3")
