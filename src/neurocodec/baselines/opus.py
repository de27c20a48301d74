"""Opus (RFC 6716) through libopus, called directly with ctypes.

libopus is used directly rather than through ffmpeg because it gives the raw packets
(no Ogg pages to strip or count), the exact encoder lookahead, and no subprocess per call.

Payload (one chunk per channel): the packets in order, each preceded by its length coded as
in RFC 6716 §3.2.1 (one byte below 252 bytes, else two bytes) - the self-delimiting framing of
RFC 6716 Appendix B.  Framing overhead is therefore 1 byte per packet (0.4 kbps at 20 ms
frames) up to 255 bytes per packet and 2 bytes above.

Rate control: constrained VBR by default (``vbr="cvbr"``), which keeps every packet within
the bitrate budget the way a fixed-rate channel needs, so the measured rate sits close to the
nominal one; the papers (encodec2022 §4.2, byun2023 §4.1) compare with Opus "at N kbps"
without naming the rate control.  ``vbr="cbr"`` gives exact packet sizes, ``vbr="vbr"``
libopus' unconstrained default (rate varies with the signal).

Delay: the encoder lookahead (``OPUS_GET_LOOKAHEAD``, 2.5 ms + 4 ms = 104 samples at 16 kHz,
the Ogg "pre-skip" of RFC 7845 §4.2) is removed, so the output is time-aligned.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, fields, replace

import numpy as np

from ..codecs.base import BitrateSpec
from ..errors import CorruptStreamError
from .common import BaselineCodec
from .tools import BaselineConfigError, ToolFailedError, float_to_int16, int16_to_float, load_library

PACKAGE = "libopus0"
SONAME = "libopus.so.0"

_APPLICATIONS = {"voip": 2048, "audio": 2049, "lowdelay": 2051}
_SET_BITRATE = 4002
_SET_VBR = 4006
_SET_COMPLEXITY = 4010
_SET_VBR_CONSTRAINT = 4020
_GET_LOOKAHEAD = 4027
_MAX_PACKET = 1275  # RFC 6716 §3.2.1: longest frame
_RATES = (8000, 12000, 16000, 24000, 48000)
_FRAME_MS = (2.5, 5.0, 10.0, 20.0, 40.0, 60.0)


def write_length(n: int) -> bytes:
    """Self-delimiting packet length of RFC 6716 §3.2.1: 1 byte for n < 252, else 2 bytes."""
    if not 0 <= n <= _MAX_PACKET:
        raise ValueError(f"opus packet length {n} out of range")
    if n < 252:
        return bytes([n])
    first = 252 + ((n - 252) & 3)
    return bytes([first, (n - first) >> 2])


def split_packets(payload: bytes) -> list[bytes]:
    """Inverse of the length-prefixed framing: the packets of one channel's payload."""
    packets, pos, end = [], 0, len(payload)
    while pos < end:
        first = payload[pos]
        if first < 252:
            n, pos = first, pos + 1
        else:
            if pos + 1 >= end:
                raise CorruptStreamError("opus payload ends inside a packet length")
            n, pos = first + 4 * payload[pos + 1], pos + 2
        if pos + n > end:
            raise CorruptStreamError("opus payload ends inside a packet")
        packets.append(payload[pos:pos + n])
        pos += n
    return packets


@dataclass(frozen=True)
class OpusConfig:
    """Settings of the Opus baseline (all of them shape the bitstream)."""

    sample_rate: int = 16000
    application: str = "voip"  # voip (speech), audio (music), lowdelay
    vbr: str = "cvbr"  # cbr, cvbr (constrained VBR), vbr
    frame_ms: float = 20.0
    complexity: int = 10

    def check(self) -> None:
        if self.sample_rate not in _RATES:
            raise BaselineConfigError(f"opus sample_rate must be one of {_RATES}, not {self.sample_rate}")
        if self.application not in _APPLICATIONS:
            raise BaselineConfigError(
                f"opus application must be one of {', '.join(_APPLICATIONS)}, not {self.application!r}")
        if self.vbr not in ("cbr", "cvbr", "vbr"):
            raise BaselineConfigError(f"opus vbr must be cbr, cvbr or vbr, not {self.vbr!r}")
        if float(self.frame_ms) not in _FRAME_MS:
            raise BaselineConfigError(f"opus frame_ms must be one of {_FRAME_MS}, not {self.frame_ms}")
        if not 0 <= int(self.complexity) <= 10:
            raise BaselineConfigError(f"opus complexity must be 0..10, not {self.complexity}")


def _lib() -> ctypes.CDLL:
    lib = load_library(SONAME, PACKAGE)
    if not getattr(lib, "_neurocodec_typed", False):
        lib.opus_encoder_create.restype = ctypes.c_void_p
        lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_encode.restype = ctypes.c_int32
        lib.opus_encode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int32]
        lib.opus_encoder_ctl.restype = ctypes.c_int
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_void_p,
                                    ctypes.c_int, ctypes.c_int]
        lib._neurocodec_typed = True
    return lib


class OpusCodec(BaselineCodec):
    """Opus (libopus) per channel, 6-510 kbps, 20 ms packets at 16 kHz by default (RFC 6716)."""

    codec_id = "opus"
    codec_version = 1
    description = "Opus via libopus (RFC 6716), constrained VBR, 16 kHz"

    def __init__(self, config: OpusConfig | None = None, **overrides):
        names = {f.name for f in fields(OpusConfig)}
        unknown = set(overrides) - names
        if unknown:
            raise BaselineConfigError(f"unknown opus setting(s): {', '.join(sorted(unknown))}")
        self.config = replace(config or OpusConfig(), **overrides)
        self.config.check()
        self._lib = _lib()
        self.sample_rate = self.config.sample_rate
        self.frame_samples = int(round(self.config.frame_ms * self.sample_rate / 1000))
        self.bitrates = BitrateSpec(default=12.0, minimum=6.0, maximum=510.0)
        enc = self._new_encoder(12.0)
        try:
            la = ctypes.c_int32(0)
            self._check(self._lib.opus_encoder_ctl(ctypes.c_void_p(enc), ctypes.c_int(_GET_LOOKAHEAD),
                                                   ctypes.byref(la)), "OPUS_GET_LOOKAHEAD")
        finally:
            self._lib.opus_encoder_destroy(enc)
        self.codec_delay_samples = int(la.value)
        self.algorithmic_delay_samples = 0

    def config_dict(self) -> dict:
        """Settings a decoder must share with the encoder (only the sample rate).

        Application, rate control, frame size and complexity shape the packets but any Opus
        decoder at the same rate decodes them, so they are left out of the stream's config
        hash: a stream made with ``application="audio"`` decodes with the default codec."""
        return {"sample_rate": self.config.sample_rate}

    @staticmethod
    def _check(ret: int, what: str) -> None:
        if ret < 0:
            raise ToolFailedError(f"libopus {what} failed with error {ret}")

    def _new_encoder(self, kbps: float) -> int:
        err = ctypes.c_int(0)
        enc = self._lib.opus_encoder_create(self.sample_rate, 1, _APPLICATIONS[self.config.application],
                                            ctypes.byref(err))
        if not enc or err.value != 0:
            raise ToolFailedError(f"opus_encoder_create failed with error {err.value}")
        cfg = self.config
        ctl = self._lib.opus_encoder_ctl
        e = ctypes.c_void_p(enc)
        self._check(ctl(e, ctypes.c_int(_SET_BITRATE), ctypes.c_int32(int(round(kbps * 1000)))), "OPUS_SET_BITRATE")
        self._check(ctl(e, ctypes.c_int(_SET_VBR), ctypes.c_int32(0 if cfg.vbr == "cbr" else 1)), "OPUS_SET_VBR")
        self._check(ctl(e, ctypes.c_int(_SET_VBR_CONSTRAINT), ctypes.c_int32(1 if cfg.vbr == "cvbr" else 0)),
                    "OPUS_SET_VBR_CONSTRAINT")
        self._check(ctl(e, ctypes.c_int(_SET_COMPLEXITY), ctypes.c_int32(int(cfg.complexity))), "OPUS_SET_COMPLEXITY")
        return enc

    def encode_channel(self, pcm: np.ndarray, kbps: float) -> bytes:
        """Opus-encode one channel into length-prefixed packets (RFC 6716 §3.2.1, App. B)."""
        q = float_to_int16(pcm)
        fs = self.frame_samples
        enc = self._new_encoder(kbps)
        buf = ctypes.create_string_buffer(_MAX_PACKET)
        out = bytearray()
        try:
            for s in range(0, q.shape[0], fs):
                frame = q[s:s + fs]
                n = self._lib.opus_encode(enc, frame.ctypes.data, fs, buf, _MAX_PACKET)
                self._check(n, "opus_encode")
                out += write_length(n)
                out += buf.raw[:n]
        finally:
            self._lib.opus_encoder_destroy(enc)
        return bytes(out)

    def decode_channel(self, payload: bytes, num_frames: int, kbps: float) -> np.ndarray:
        """Decode the length-prefixed packets of one channel (each packet states its duration,
        so ``num_frames`` is not needed; the caller checks the decoded length)."""
        packets = split_packets(payload)
        err = ctypes.c_int(0)
        dec = self._lib.opus_decoder_create(self.sample_rate, 1, ctypes.byref(err))
        if not dec or err.value != 0:
            raise ToolFailedError(f"opus_decoder_create failed with error {err.value}")
        max_frame = self.sample_rate * 120 // 1000
        buf = np.zeros(max_frame, dtype=np.int16)
        parts = []
        try:
            for p in packets:
                n = self._lib.opus_decode(dec, p, len(p), buf.ctypes.data, max_frame, 0)
                if n < 0:
                    raise CorruptStreamError(f"opus payload holds an invalid packet (libopus error {n})")
                parts.append(buf[:n].copy())
        finally:
            self._lib.opus_decoder_destroy(dec)
        pcm = np.concatenate(parts) if parts else np.zeros(0, np.int16)
        if pcm.shape[0] > (num_frames + 6) * self.frame_samples:  # more than 120 ms too long
            raise CorruptStreamError(f"opus payload decodes to {pcm.shape[0]} samples, "
                                     f"expected about {num_frames * self.frame_samples}")
        return int16_to_float(pcm)
