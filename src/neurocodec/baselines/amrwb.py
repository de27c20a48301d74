"""AMR-WB (ITU-T G.722.2 / 3GPP TS 26.190), all nine modes, through ctypes.

Encoder: VisualOn's ``libvo-amrwbenc.so.0`` (``E_IF_init`` / ``E_IF_encode`` / ``E_IF_exit``);
decoder: ``libopencore-amrwb.so.0`` (``D_IF_init`` / ``D_IF_decode`` / ``D_IF_exit``).  ffmpeg
has no AMR-WB encoder here, hence ctypes.  Both work on 20 ms frames of 320 samples at 16 kHz.

Payload (one chunk per channel): the frames in the AMR-WB storage format of RFC 4867 §5.3,
i.e. one ToC byte (frame type, quality bit) followed by the speech bits padded to whole bytes.
The ``#!AMR-WB\\n`` magic of the storage file (§5.1) is not stored: prepending it to a chunk
gives a standard ``.awb`` file.  The rate is therefore exactly ``8 * frame_bytes * 50`` bit/s
with ``frame_bytes`` = 18, 24, 33, 37, 41, 47, 51, 59, 61 for modes 0..8: the ToC byte and the
byte padding add 0.4-0.75 kbps to the nominal mode rate (documented in docs/baselines.md).
DTX is off, so every frame is a speech frame.

Delay: the encoder + decoder pair delays the signal by a constant 94 samples (5 ms lookahead
plus the 16 <-> 12.8 kHz resampling filters; measured by cross-correlation on speech, music and
a chirp, 93-95), ``AMRWB_DELAY_SAMPLES``; it is removed so the output is time-aligned.
"""

from __future__ import annotations

import ctypes

import numpy as np

from ..codecs.base import BitrateSpec
from ..errors import CorruptStreamError
from .common import BaselineCodec
from .tools import ToolFailedError, float_to_int16, int16_to_float, load_library

ENCODER_PACKAGE = "libvo-amrwbenc0"
DECODER_PACKAGE = "libopencore-amrwb0"
ENCODER_SONAME = "libvo-amrwbenc.so.0"
DECODER_SONAME = "libopencore-amrwb.so.0"

#: nominal rates of AMR-WB modes 0..8 in kbps (3GPP TS 26.190 §1, RFC 4867 §3.6)
MODES_KBPS = (6.6, 8.85, 12.65, 14.25, 15.85, 18.25, 19.85, 23.05, 23.85)
#: speech bits per frame of modes 0..8, and 9 = SID (3GPP TS 26.201 table 2)
MODE_BITS = (132, 177, 253, 285, 317, 365, 397, 461, 477, 40)
FRAME_SAMPLES = 320
#: encoder + decoder delay in samples at 16 kHz, measured (tests/baselines check alignment)
AMRWB_DELAY_SAMPLES = 94


def storage_frame_bytes(frame_type: int) -> int:
    """Bytes of one RFC 4867 §5.3 storage frame of ``frame_type``: ToC byte + padded bits."""
    if 0 <= frame_type < len(MODE_BITS):
        return 1 + (MODE_BITS[frame_type] + 7) // 8
    if frame_type in (14, 15):  # speech lost, no data
        return 1
    raise CorruptStreamError(f"amr-wb payload holds an invalid frame type {frame_type}")


def split_frames(payload: bytes) -> list[bytes]:
    """Cut one channel's payload into storage frames using each frame's ToC byte."""
    frames, pos = [], 0
    while pos < len(payload):
        n = storage_frame_bytes((payload[pos] >> 3) & 0x0F)
        if pos + n > len(payload):
            raise CorruptStreamError("amr-wb payload ends inside a frame")
        frames.append(payload[pos:pos + n])
        pos += n
    return frames


def _encoder_lib() -> ctypes.CDLL:
    lib = load_library(ENCODER_SONAME, ENCODER_PACKAGE)
    lib.E_IF_init.restype = ctypes.c_void_p
    lib.E_IF_init.argtypes = []
    lib.E_IF_encode.restype = ctypes.c_int
    lib.E_IF_encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.E_IF_exit.argtypes = [ctypes.c_void_p]
    return lib


def _decoder_lib() -> ctypes.CDLL:
    lib = load_library(DECODER_SONAME, DECODER_PACKAGE)
    lib.D_IF_init.restype = ctypes.c_void_p
    lib.D_IF_init.argtypes = []
    lib.D_IF_decode.restype = None
    lib.D_IF_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    lib.D_IF_exit.argtypes = [ctypes.c_void_p]
    return lib


class AmrWbCodec(BaselineCodec):
    """AMR-WB at 16 kHz in its nine modes 6.6-23.85 kbps (G.722.2), one chunk per channel."""

    codec_id = "amrwb"
    codec_version = 1
    description = "AMR-WB (G.722.2) via libvo-amrwbenc / opencore-amrwb, 9 modes"
    #: G.722.2 codes the 50-7000 Hz band (3GPP TS 26.171)
    audio_bandwidth_hz = 7000.0

    def __init__(self):
        self.config = {"sample_rate": 16000, "dtx": False, "framing": "rfc4867-storage"}
        self._enc = _encoder_lib()
        self._dec = _decoder_lib()
        self.sample_rate = 16000
        self.frame_samples = FRAME_SAMPLES
        self.codec_delay_samples = AMRWB_DELAY_SAMPLES
        self.algorithmic_delay_samples = 0
        self.bitrates = BitrateSpec(default=12.65, choices=MODES_KBPS)

    @staticmethod
    def mode_of(kbps: float) -> int:
        """AMR-WB mode index (0..8) of a nominal rate from :data:`MODES_KBPS`."""
        return min(range(len(MODES_KBPS)), key=lambda i: abs(MODES_KBPS[i] - kbps))

    def encode_channel(self, pcm: np.ndarray, kbps: float) -> bytes:
        """Encode one channel into RFC 4867 storage frames (mode from ``kbps``, DTX off)."""
        mode = self.mode_of(kbps)
        q = float_to_int16(pcm)
        buf = ctypes.create_string_buffer(64)
        state = self._enc.E_IF_init()
        if not state:
            raise ToolFailedError("E_IF_init failed")
        out = bytearray()
        try:
            for s in range(0, q.shape[0], FRAME_SAMPLES):
                frame = np.ascontiguousarray(q[s:s + FRAME_SAMPLES])
                n = self._enc.E_IF_encode(state, mode, frame.ctypes.data, buf, 0)
                if n != storage_frame_bytes(mode):
                    raise ToolFailedError(f"E_IF_encode returned {n} bytes in mode {mode}")
                out += buf.raw[:n]
        finally:
            self._enc.E_IF_exit(state)
        return bytes(out)

    def decode_channel(self, payload: bytes, num_frames: int, kbps: float) -> np.ndarray:
        """Decode one channel's storage frames into float32 samples."""
        frames = split_frames(payload)
        if len(frames) != num_frames:
            raise CorruptStreamError(f"amr-wb payload holds {len(frames)} frames, expected {num_frames}")
        out = np.zeros(num_frames * FRAME_SAMPLES, dtype=np.int16)
        state = self._dec.D_IF_init()
        if not state:
            raise ToolFailedError("D_IF_init failed")
        try:
            for i, f in enumerate(frames):
                self._dec.D_IF_decode(state, f, out[i * FRAME_SAMPLES:].ctypes.data, 0)
        finally:
            self._dec.D_IF_exit(state)
        return int16_to_float(out)
