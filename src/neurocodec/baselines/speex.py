"""Speex wideband (Valin, arXiv:1602.08668) through ctypes on libspeex.

Speex wideband is a 16 kHz sub-band CELP coder on 20 ms frames (320 samples) whose
constant-bitrate modes are chosen by a quality setting 0..10.  The bitrate ladder exposed here
is the rate libspeex reports for each quality (``SPEEX_GET_BITRATE``):
3.95, 5.75, 7.75, 9.8, 12.8, 16.8, 20.6, 23.8, 27.8, 34.2, 42.2 kbps for q = 0..10.

Payload (one chunk per channel): all frames packed bit-contiguously in one Speex bit-stream
(Speex allows several frames per packet, frames being self-delimiting given the mode), padded
once at the end to a whole byte by ``speex_bits_write``'s terminator.  Framing overhead is
therefore at most 8 bits per chunk; no Ogg pages, no per-frame byte padding.

Delay: the encoder plus decoder lookahead (``SPEEX_GET_LOOKAHEAD`` of both: 223 samples)
is removed, so the output is time-aligned.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, fields, replace

import numpy as np

from ..codecs.base import BitrateSpec
from ..errors import CorruptStreamError
from .common import BaselineCodec
from .tools import BaselineConfigError, ToolFailedError, float_to_int16, int16_to_float, load_library

PACKAGE = "libspeex1"
SONAME = "libspeex.so.1"

_MODEID_WB = 1
_SET_ENH = 0
_GET_FRAME_SIZE = 3
_SET_QUALITY = 4
_SET_COMPLEXITY = 16
_GET_BITRATE = 19
_GET_LOOKAHEAD = 39
FRAME_SAMPLES = 320
#: nominal kbps of wideband quality 0..10 (SPEEX_GET_BITRATE, libspeex 1.2)
QUALITY_KBPS = (3.95, 5.75, 7.75, 9.8, 12.8, 16.8, 20.6, 23.8, 27.8, 34.2, 42.2)
_MAX_FRAME_BYTES = 128  # q=10 is 844 bits = 106 bytes per frame


class SpeexBits(ctypes.Structure):
    """``struct SpeexBits`` of speex/speex_bits.h."""

    _fields_ = [("chars", ctypes.c_void_p), ("nbBits", ctypes.c_int), ("charPtr", ctypes.c_int),
                ("bitPtr", ctypes.c_int), ("owner", ctypes.c_int), ("overflow", ctypes.c_int),
                ("buf_size", ctypes.c_int), ("reserved1", ctypes.c_int), ("reserved2", ctypes.c_void_p)]


@dataclass(frozen=True)
class SpeexConfig:
    """Settings of the Speex baseline: encoder complexity (speexenc's default 3) and the
    decoder's perceptual enhancer (on by default, as in speexdec)."""

    complexity: int = 3
    enhance: bool = True

    def check(self) -> None:
        if not 0 <= int(self.complexity) <= 10:
            raise BaselineConfigError(f"speex complexity must be 0..10, not {self.complexity}")


def _lib() -> ctypes.CDLL:
    lib = load_library(SONAME, PACKAGE)
    P = ctypes.POINTER(SpeexBits)
    lib.speex_lib_get_mode.restype = ctypes.c_void_p
    lib.speex_lib_get_mode.argtypes = [ctypes.c_int]
    for name in ("speex_encoder_init", "speex_decoder_init"):
        getattr(lib, name).restype = ctypes.c_void_p
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    for name in ("speex_encoder_destroy", "speex_decoder_destroy"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    for name in ("speex_encoder_ctl", "speex_decoder_ctl"):
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.speex_encode_int.restype = ctypes.c_int
    lib.speex_encode_int.argtypes = [ctypes.c_void_p, ctypes.c_void_p, P]
    lib.speex_decode_int.restype = ctypes.c_int
    lib.speex_decode_int.argtypes = [ctypes.c_void_p, P, ctypes.c_void_p]
    lib.speex_bits_init_buffer.argtypes = [P, ctypes.c_void_p, ctypes.c_int]
    lib.speex_bits_set_bit_buffer.argtypes = [P, ctypes.c_void_p, ctypes.c_int]
    lib.speex_bits_write.restype = ctypes.c_int
    lib.speex_bits_write.argtypes = [P, ctypes.c_void_p, ctypes.c_int]
    lib.speex_bits_nbytes.restype = ctypes.c_int
    lib.speex_bits_nbytes.argtypes = [P]
    return lib


class SpeexCodec(BaselineCodec):
    """Speex wideband (16 kHz) at quality 0..10 = 3.95-42.2 kbps, one chunk per channel."""

    codec_id = "speex"
    codec_version = 1
    description = "Speex wideband via libspeex, 3.95-42.2 kbps, 16 kHz"

    def __init__(self, config: SpeexConfig | None = None, **overrides):
        unknown = set(overrides) - {f.name for f in fields(SpeexConfig)}
        if unknown:
            raise BaselineConfigError(f"unknown speex setting(s): {', '.join(sorted(unknown))}")
        self.config = replace(config or SpeexConfig(), **overrides)
        self.config.check()
        self._lib = _lib()
        self._mode = self._lib.speex_lib_get_mode(_MODEID_WB)
        if not self._mode:
            raise ToolFailedError("speex_lib_get_mode(SPEEX_MODEID_WB) failed")
        self.sample_rate = 16000
        self.frame_samples = FRAME_SAMPLES
        self.bitrates = BitrateSpec(default=12.8, choices=QUALITY_KBPS)
        enc, dec = self._new_encoder(QUALITY_KBPS.index(12.8)), self._new_decoder()
        try:
            la_enc, la_dec = ctypes.c_int(0), ctypes.c_int(0)
            self._lib.speex_encoder_ctl(enc, _GET_LOOKAHEAD, ctypes.byref(la_enc))
            self._lib.speex_decoder_ctl(dec, _GET_LOOKAHEAD, ctypes.byref(la_dec))
        finally:
            self._lib.speex_encoder_destroy(enc)
            self._lib.speex_decoder_destroy(dec)
        self.codec_delay_samples = la_enc.value + la_dec.value
        self.algorithmic_delay_samples = 0

    def config_dict(self) -> dict:
        """Settings that change the decoded audio (the enhancer); the encoder complexity does
        not affect decodability and is left out of the stream's config hash."""
        return {"enhance": bool(self.config.enhance)}

    def _new_encoder(self, quality: int) -> int:
        st = self._lib.speex_encoder_init(self._mode)
        if not st:
            raise ToolFailedError("speex_encoder_init failed")
        for req, val in ((_SET_QUALITY, quality), (_SET_COMPLEXITY, int(self.config.complexity))):
            v = ctypes.c_int(val)
            if self._lib.speex_encoder_ctl(st, req, ctypes.byref(v)) != 0:
                self._lib.speex_encoder_destroy(st)
                raise ToolFailedError(f"speex_encoder_ctl({req}) failed")
        return st

    def _new_decoder(self) -> int:
        st = self._lib.speex_decoder_init(self._mode)
        if not st:
            raise ToolFailedError("speex_decoder_init failed")
        v = ctypes.c_int(1 if self.config.enhance else 0)
        self._lib.speex_decoder_ctl(st, _SET_ENH, ctypes.byref(v))
        return st

    def reported_kbps(self, quality: int) -> float:
        """The bitrate libspeex reports (``SPEEX_GET_BITRATE``) for wideband ``quality``."""
        st = self._new_encoder(quality)
        try:
            v = ctypes.c_int(0)
            self._lib.speex_encoder_ctl(st, _GET_BITRATE, ctypes.byref(v))
        finally:
            self._lib.speex_encoder_destroy(st)
        return v.value / 1000.0

    def encode_channel(self, pcm: np.ndarray, kbps: float) -> bytes:
        """Encode one channel at the quality whose rate is ``kbps`` into one Speex bit-stream."""
        q = float_to_int16(pcm)
        n_frames = q.shape[0] // FRAME_SAMPLES
        cap = n_frames * _MAX_FRAME_BYTES + 16
        store = ctypes.create_string_buffer(cap)
        bits = SpeexBits()
        self._lib.speex_bits_init_buffer(ctypes.byref(bits), store, cap)
        st = self._new_encoder(QUALITY_KBPS.index(kbps))
        try:
            for i in range(n_frames):
                frame = np.array(q[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES])  # speex may modify it
                self._lib.speex_encode_int(st, frame.ctypes.data, ctypes.byref(bits))
        finally:
            self._lib.speex_encoder_destroy(st)
        if bits.overflow:
            raise ToolFailedError("speex bit buffer overflowed")
        out = ctypes.create_string_buffer(cap)
        n = self._lib.speex_bits_write(ctypes.byref(bits), out, cap)
        return out.raw[:n]

    def decode_channel(self, payload: bytes, num_frames: int, kbps: float) -> np.ndarray:
        """Decode ``num_frames`` frames from one channel's Speex bit-stream."""
        if num_frames > 8 * len(payload):  # every frame takes bits: a corrupt length, before allocating
            raise CorruptStreamError(f"speex payload of {len(payload)} bytes cannot hold {num_frames} frames")
        store = ctypes.create_string_buffer(payload, len(payload))
        bits = SpeexBits()
        self._lib.speex_bits_set_bit_buffer(ctypes.byref(bits), store, len(payload))
        out = np.zeros(num_frames * FRAME_SAMPLES, dtype=np.int16)
        st = self._new_decoder()
        try:
            for i in range(num_frames):
                ret = self._lib.speex_decode_int(st, ctypes.byref(bits), out[i * FRAME_SAMPLES:].ctypes.data)
                if ret != 0 or bits.overflow:
                    raise CorruptStreamError(f"speex payload ends or is corrupt at frame {i} (error {ret})")
        finally:
            self._lib.speex_decoder_destroy(st)
        left = 8 * len(payload) - (8 * bits.charPtr + bits.bitPtr)
        if left >= 8:
            raise CorruptStreamError(f"speex payload has {left} bits after its last frame")
        return int16_to_float(out)
