"""LC3, the Bluetooth LE Audio Low Complexity Communication Codec, through ctypes on liblc3.

LC3 is an MDCT codec on 10 ms (or 7.5 ms) frames with no bit reservoir: every frame has
exactly the byte budget it is given, ``nbytes = floor(bitrate * frame_duration / 8)``
(``lc3_frame_bytes``), 20..400 bytes, i.e. 16-320 kbps at 10 ms.  Payload (one chunk per
channel): the frames concatenated with no framing at all, since their size follows from the
bitrate in the stream header; the measured rate is ``8 * nbytes / frame_duration`` (a nominal
rate that is not a multiple of 0.8 kbps at 10 ms is rounded down to one).  ``elc3``'s file
format adds an 18-byte header and a 2-byte length per frame, which are not stored.

Delay: ``lc3_delay_samples`` (2.5 ms at 10 ms frames, 4 ms at 7.5 ms) is removed.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, fields, replace

import numpy as np

from ..codecs.base import BitrateSpec
from ..errors import CorruptStreamError
from .common import BaselineCodec
from .tools import BaselineConfigError, ToolFailedError, float_to_int16, int16_to_float, load_library

PACKAGE = "liblc3-0"
SONAME = "liblc3.so.0"
_PCM_S16 = 0  # enum lc3_pcm_format: LC3_PCM_FORMAT_S16


@dataclass(frozen=True)
class Lc3Config:
    """Settings of the LC3 baseline (frame duration in microseconds, sample rate)."""

    sample_rate: int = 16000
    frame_us: int = 10000

    def check(self) -> None:
        if self.sample_rate not in (8000, 16000, 24000, 32000, 48000):
            raise BaselineConfigError(f"lc3 sample_rate must be 8000, 16000, 24000, 32000 or 48000, "
                                      f"not {self.sample_rate}")
        if self.frame_us not in (7500, 10000):
            raise BaselineConfigError(f"lc3 frame_us must be 7500 or 10000, not {self.frame_us}")


def _lib() -> ctypes.CDLL:
    # liblc3 1.0.x API; 1.1 keeps these signatures and adds lc3_hr_* variants
    lib = load_library(SONAME, PACKAGE)
    for name in ("lc3_frame_samples", "lc3_delay_samples", "lc3_frame_bytes", "lc3_resolve_bitrate"):
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_int, ctypes.c_int]
    for name in ("lc3_encoder_size", "lc3_decoder_size"):
        getattr(lib, name).restype = ctypes.c_uint
        getattr(lib, name).argtypes = [ctypes.c_int, ctypes.c_int]
    for name in ("lc3_setup_encoder", "lc3_setup_decoder"):
        getattr(lib, name).restype = ctypes.c_void_p
        getattr(lib, name).argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    lib.lc3_encode.restype = ctypes.c_int
    lib.lc3_encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                               ctypes.c_void_p]
    lib.lc3_decode.restype = ctypes.c_int
    lib.lc3_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                               ctypes.c_int]
    return lib


class Lc3Codec(BaselineCodec):
    """LC3 (liblc3) at 16 kHz, 10 ms frames, 16-320 kbps, one chunk per channel."""

    codec_id = "lc3"
    codec_version = 1
    description = "LC3 (Bluetooth LE Audio) via liblc3, 16-320 kbps, 16 kHz"

    def __init__(self, config: Lc3Config | None = None, **overrides):
        unknown = set(overrides) - {f.name for f in fields(Lc3Config)}
        if unknown:
            raise BaselineConfigError(f"unknown lc3 setting(s): {', '.join(sorted(unknown))}")
        self.config = replace(config or Lc3Config(), **overrides)
        self.config.check()
        self._lib = _lib()
        dt, sr = self.config.frame_us, self.config.sample_rate
        self.sample_rate = sr
        self.frame_samples = self._lib.lc3_frame_samples(dt, sr)
        self.codec_delay_samples = self._lib.lc3_delay_samples(dt, sr)
        if self.frame_samples <= 0 or self.codec_delay_samples < 0:
            raise ToolFailedError(f"liblc3 rejects {dt} us frames at {sr} Hz")
        self.algorithmic_delay_samples = 0
        lo = self._lib.lc3_resolve_bitrate(dt, 20) / 1000
        hi = min(self._lib.lc3_resolve_bitrate(dt, 400) / 1000, 320.0)  # LC3_MAX_BITRATE
        self.bitrates = BitrateSpec(default=32.0, minimum=lo, maximum=hi)

    def frame_bytes(self, kbps: float) -> int:
        """Bytes per frame for the nominal rate ``kbps`` (``lc3_frame_bytes``: rounded down)."""
        n = self._lib.lc3_frame_bytes(self.config.frame_us, int(round(kbps * 1000)))
        return min(max(n, 20), 400)

    def encode_channel(self, pcm: np.ndarray, kbps: float) -> bytes:
        """Encode one channel into fixed-size LC3 frames of :meth:`frame_bytes` bytes."""
        dt, sr, fs = self.config.frame_us, self.config.sample_rate, self.frame_samples
        nbytes = self.frame_bytes(kbps)
        q = float_to_int16(pcm)
        mem = ctypes.create_string_buffer(self._lib.lc3_encoder_size(dt, sr))
        enc = self._lib.lc3_setup_encoder(dt, sr, 0, mem)
        if not enc:
            raise ToolFailedError("lc3_setup_encoder failed")
        buf = ctypes.create_string_buffer(nbytes)
        out = bytearray()
        for s in range(0, q.shape[0], fs):
            if self._lib.lc3_encode(enc, _PCM_S16, q[s:s + fs].ctypes.data, 1, nbytes, buf) != 0:
                raise ToolFailedError("lc3_encode failed")
            out += buf.raw
        return bytes(out)

    def decode_channel(self, payload: bytes, num_frames: int, kbps: float) -> np.ndarray:
        """Decode ``num_frames`` fixed-size LC3 frames of one channel."""
        dt, sr, fs = self.config.frame_us, self.config.sample_rate, self.frame_samples
        nbytes = self.frame_bytes(kbps)
        if len(payload) != num_frames * nbytes:
            raise CorruptStreamError(
                f"lc3 payload has {len(payload)} bytes, expected {num_frames} frames of {nbytes}")
        mem = ctypes.create_string_buffer(self._lib.lc3_decoder_size(dt, sr))
        dec = self._lib.lc3_setup_decoder(dt, sr, 0, mem)
        if not dec:
            raise ToolFailedError("lc3_setup_decoder failed")
        out = np.zeros(num_frames * fs, dtype=np.int16)
        for i in range(num_frames):
            ret = self._lib.lc3_decode(dec, payload[i * nbytes:(i + 1) * nbytes], nbytes, _PCM_S16,
                                       out[i * fs:].ctypes.data, 1)
            if ret < 0:
                raise ToolFailedError("lc3_decode rejected its parameters")
        return int16_to_float(out)
