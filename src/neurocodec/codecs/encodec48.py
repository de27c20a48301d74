"""The non-streamable EnCodec (defossez2022 §3.1, "Non-streamable"): 48 kHz stereo, centred
padding, time-aware layer norm, 1 s segments with 1 % (10 ms) overlap, each segment normalised by
its RMS before coding and the scale sent with its codes; decoded segments are overlap-added with
triangular weights.

This package ships no weights for it: ``neurocodec import encodec encodec_48khz-7e698e3e.th
[--lm encodec_lm_48khz-7add9fc3.th]`` converts the official checkpoint into the codec
``encodec-48k-official`` (:mod:`.encodec_import`).

The two channels are coded jointly by the stereo network, so ``--bitrate`` (the total) is the
model's bandwidth: 3, 6, 12 or 24 kbps (1.5 kbps per codebook at 150 frames/s).  A mono input is
coded as two identical channels and decoded as their mean.

Payload: one chunk per segment (1 s = 48,000 samples, a new one every 47,520), laid out as

    u8 coder | u8 n_q | u16 frames | f32 scale (big-endian, the segment's RMS + 1e-8) | range-coded codes

with ``coder`` 0 = uniform (10 bits per code) or 2 = the official LM (§3.3), whose context restarts
with every segment (as in the reference), run in exact integer arithmetic (:mod:`.encodec_lm`).
Codes are range coded time-major.  :class:`SegmentEncoder` / :class:`SegmentDecoder` are the
push/pull API (a chunk as soon as a segment is complete; audio as soon as the overlap-add of a
region is final); :meth:`Encodec48Codec.compress` and :meth:`~Encodec48Codec.decompress` run the
same code, so chunked and whole-file coding give identical bytes and audio.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from ..audio import atomic_write_bytes
from ..entropy.range_coder import RangeDecoder, RangeEncoder, quantize_pmf
from ..errors import AudioError, CorruptStreamError, WeightsError
from ..nn.seanet import SeanetConfig
from .base import BitrateSpec, CodecModel, EncodedAudio
from .encodec import _TRAINING_STATS, EncodecPretrained, LmCoderMixin, merge_coding_state
from .encodec_model import EncodecNet, EncodecNetConfig
from .weights_file import dataclass_from_json, read_format

__all__ = ["Encodec48Config", "Encodec48Codec", "SegmentEncoder", "SegmentDecoder", "encodec_48k_official"]

_FORMAT = "neurocodec-encodec48"
_HEAD = struct.Struct(">BBHf")
CODER_IDS = {"uniform": 0, "lm": 2}


@dataclass(frozen=True)
class Encodec48Config:
    """The non-streamable EnCodec (defaults: the official 48 kHz stereo model)."""

    sample_rate: int = 48000
    channels: int = 2
    n_filters: int = 32
    dimension: int = 128
    ratios: tuple[int, ...] = (8, 5, 4, 2)
    n_residual_layers: int = 1
    lstm_layers: int = 2
    pad_mode: str = "reflect"
    norm: str = "time_group_norm"
    n_q: int = 16
    bins: int = 1024
    bandwidths: tuple[float, ...] = (3.0, 6.0, 12.0, 24.0)
    default_kbps: float = 6.0
    segment: float = 1.0
    overlap: float = 0.01
    coder: str = "auto"  # auto (lm when the model has one, else uniform) | lm | uniform
    lm_n_q: int = 0  # codebooks the LM models (0: no LM)
    lm_dim: int = 200
    lm_layers: int = 5
    lm_heads: int = 8
    lm_ff: int = 800
    lm_context_seconds: float = 3.5

    def net_config(self) -> EncodecNetConfig:
        sean = SeanetConfig(channels=self.channels, dimension=self.dimension, n_filters=self.n_filters,
                            ratios=tuple(self.ratios), n_residual_layers=self.n_residual_layers,
                            lstm_layers=self.lstm_layers, pad_mode=self.pad_mode, causal=False, norm=self.norm)
        return EncodecNetConfig(sample_rate=self.sample_rate, seanet=sean, n_q=self.n_q, bins=self.bins,
                                target_bandwidths=tuple(self.bandwidths), normalize=True, segment=self.segment,
                                overlap=self.overlap)


def _triangle(length: int) -> torch.Tensor:
    """The overlap-add weights of a segment of ``length`` samples (as :func:`.encodec_model.overlap_add`)."""
    t = torch.linspace(0, 1, length + 2, dtype=torch.float32)[1:-1]
    return 0.5 - (t - 0.5).abs()


class Encodec48Codec(LmCoderMixin, nn.Module, CodecModel):
    """Non-streamable EnCodec: 1 s segments, per-segment scale, joint stereo."""

    codec_id = "encodec-48k"
    coders = CODER_IDS  # no static tables at 48 kHz: "auto" without an LM is "uniform"
    fallback_coder = "uniform"
    codec_version = 1
    description = "EnCodec non-streamable 48 kHz stereo: 1 s segments, per-segment scale (defossez2022)"
    learned = True

    def __init__(self, config: Encodec48Config | None = None, codec_id: str | None = None):
        nn.Module.__init__(self)
        self.config = cfg = config or Encodec48Config()
        if codec_id:
            self.codec_id = codec_id
        self.net = EncodecNet(cfg.net_config())
        self.sample_rate = cfg.sample_rate
        self.bitrates = BitrateSpec(default=float(cfg.default_kbps), choices=tuple(float(b) for b in cfg.bandwidths))
        self.lm = None
        if cfg.lm_n_q:
            from .encodec_lm import CodeLM

            self.lm = CodeLM(cfg.lm_n_q, cfg.bins, cfg.lm_dim, cfg.lm_layers, cfg.lm_heads, cfg.lm_ff,
                             int(cfg.lm_context_seconds * self.frame_rate))
        self._int_lm = None

    # -- identity ---------------------------------------------------------------------------
    @property
    def frame_rate(self) -> int:
        return self.net.cfg.frame_rate

    @property
    def hop(self) -> int:
        return self.net.hop

    @property
    def segment_length(self) -> int:
        return int(self.net.cfg.segment_length)

    @property
    def segment_stride(self) -> int:
        return int(self.net.cfg.segment_stride)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def weights_digest(self) -> bytes:
        h = hashlib.sha256()
        for name, t in sorted(self.coding_state().items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
            h.update(t.numpy().tobytes())
        return h.digest()

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    # -- bitrates: the stereo network codes both channels at its bandwidth -------------------
    def channel_bitrate(self, kbps: float | None, num_channels: int = 1) -> float:
        total = self.validate_bitrate(kbps, num_channels)
        return total / max(int(num_channels), 1)

    def validate_bitrate(self, kbps: float | None, num_channels: int = 1) -> float:
        """The model's bandwidth: ``kbps`` is the total of the (jointly coded) channels."""
        if num_channels not in (1, 2):
            raise AudioError(f"codec '{self.codec_id}' codes mono or stereo audio, not {num_channels} channels")
        if kbps is None:
            return float(self.bitrates.default)
        return float(self.bitrates.validate(kbps, self.codec_id, 1))

    def n_q_for(self, kbps: float) -> int:
        return self.net.cfg.n_q_for(kbps)

    # -- weights ----------------------------------------------------------------------------
    def coding_state(self) -> dict[str, torch.Tensor]:
        """The network and LM tensors, less the codebooks' training statistics."""
        return {k: v for k, v in self.state_dict().items() if not k.endswith(_TRAINING_STATS)}

    def save_pretrained(self, path: str | Path) -> None:
        from safetensors.torch import save

        state = {k: v.detach().cpu().contiguous().clone() for k, v in self.coding_state().items()}
        meta = {"format": _FORMAT, "format_version": "1", "codec_id": self.codec_id,
                "config": json.dumps(asdict(self.config), sort_keys=True)}
        atomic_write_bytes(path, save(state, metadata=meta))

    @classmethod
    def from_pretrained(cls, path: str | Path, codec_id: str | None = None) -> "Encodec48Codec":
        p = Path(path)
        state, meta = read_format(p, _FORMAT, "a 48 kHz EnCodec checkpoint")
        model = cls(dataclass_from_json(Encodec48Config, json.loads(meta["config"])),
                    codec_id=codec_id or meta.get("codec_id"))
        own = merge_coding_state(model.state_dict(), state, p)
        model.load_state_dict(own)
        model.eval()
        return model

    # -- coding -----------------------------------------------------------------------------
    def compress(self, audio: np.ndarray, bitrate_kbps: float | None = None, **kwargs) -> EncodedAudio:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2:
            raise ValueError("audio must be (channels, samples)")
        kbps = self.validate_bitrate(bitrate_kbps, audio.shape[0])
        enc = SegmentEncoder(self, audio.shape[0], kbps)
        chunks = enc.push(audio) + enc.finish()
        return EncodedAudio(chunks=chunks, bitrate_kbps=kbps, num_channels=audio.shape[0], num_samples=audio.shape[1])

    def decompress(self, chunks: Sequence[bytes] | Iterable[bytes], num_channels: int,
                   num_samples: int, bitrate_kbps: float) -> np.ndarray:
        dec = SegmentDecoder(self, num_channels, bitrate_kbps)
        outs = [dec.push(c) for c in chunks]
        outs.append(dec.finish())
        y = np.concatenate(outs, axis=1) if outs else np.zeros((num_channels, 0), np.float32)
        n_seg = dec.segments
        expected = num_segments(num_samples, self.segment_length, self.segment_stride)
        if n_seg != expected:
            raise CorruptStreamError(f"stream holds {n_seg} segments, the header's length implies {expected}")
        if y.shape[1] < num_samples:
            raise CorruptStreamError(f"stream decodes to {y.shape[1]} samples, the header says {num_samples}")
        return np.ascontiguousarray(y[:, :num_samples], dtype=np.float32)


def num_segments(num_samples: int, length: int, stride: int) -> int:
    """Segments of a signal: one starting at every multiple of ``stride`` below its length (as the reference)."""
    return len(range(0, num_samples, stride))


def segment_frames(n: int, hop: int) -> int:
    return math.ceil(n / hop)


class _SegmentCoder:
    """Range coding of one segment's codes ``(n_q, frames)`` (time-major); the LM restarts per segment."""

    def __init__(self, codec: Encodec48Codec, n_q: int, name: str):
        self.codec, self.n_q, self.name = codec, n_q, name
        self.uniform = quantize_pmf(np.ones(codec.config.bins), 16)[None]

    def encode(self, codes: np.ndarray) -> bytes:
        enc = RangeEncoder()
        if self.name == "lm":
            from .encodec_lm import LmCodingState

            cdfs = LmCodingState(self.codec.integer_lm(), self.n_q).cdfs_for(codes)
            enc.encode(codes.T.reshape(-1), cdfs.reshape(-1, cdfs.shape[-1]), np.arange(codes.size))
        else:
            enc.encode(codes.T.reshape(-1), self.uniform, np.zeros(codes.size, dtype=np.int64))
        return enc.getvalue()

    def decode(self, data: bytes, frames: int) -> np.ndarray:
        dec = RangeDecoder(data)
        if self.name == "lm":
            from .encodec_lm import LmCodingState

            state = LmCodingState(self.codec.integer_lm(), self.n_q)
            out = np.zeros((self.n_q, frames), dtype=np.int64)
            for t in range(frames):
                out[:, t] = dec.decode(state.next_cdf(), indexes=np.arange(self.n_q))
                state.push(out[:, t])
        else:
            out = dec.decode(self.uniform, indexes=np.zeros(self.n_q * frames, dtype=np.int64))
            out = np.asarray(out).reshape(frames, self.n_q).T.copy()
        dec.finish()
        return out


class SegmentEncoder:
    """Push ``(channels, n)`` float32 audio at 48 kHz in pieces of any size; pull one payload chunk per
    1 s segment as soon as the segment is complete.  :meth:`finish` codes the segments that start
    before the end of the signal but run past it (shorter segments, as in the reference)."""

    def __init__(self, codec: Encodec48Codec, num_channels: int = 2, bitrate_kbps: float | None = None):
        self.codec = codec
        self.kbps = codec.validate_bitrate(bitrate_kbps, num_channels)
        self.n_q = codec.n_q_for(self.kbps)
        self.channels = num_channels
        self.coder = _SegmentCoder(codec, self.n_q, codec.coder_name())
        self.buf = np.zeros((num_channels, 0), dtype=np.float32)
        self.offset = 0  # sample index of buf[:, 0] (the start of the next segment)

    def _chunk(self, seg: np.ndarray) -> bytes:
        x = torch.from_numpy(np.ascontiguousarray(seg, dtype=np.float32))[None]
        if self.channels == 1:
            x = x.expand(1, 2, x.shape[-1]).contiguous() if self.codec.config.channels == 2 else x
        with torch.no_grad():
            frame = self.codec.net._encode_segment(x, self.n_q)
        codes = frame.codes[0].numpy().astype(np.int64)
        scale = float(frame.scale.reshape(-1)[0])
        data = self.coder.encode(codes)
        return _HEAD.pack(CODER_IDS[self.coder.name], self.n_q, codes.shape[1], scale) + data

    def push(self, audio: np.ndarray) -> list[bytes]:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[0] != self.channels:
            raise ValueError(f"push ({self.channels}, samples) float32 audio")
        self.buf = np.concatenate([self.buf, audio], axis=1)
        seg, stride = self.codec.segment_length, self.codec.segment_stride
        out = []
        while self.buf.shape[1] >= seg:
            out.append(self._chunk(self.buf[:, :seg]))
            self.buf = self.buf[:, stride:]
            self.offset += stride
        return out

    def finish(self) -> list[bytes]:
        stride = self.codec.segment_stride
        out = []
        while self.buf.shape[1] > 0:
            out.append(self._chunk(self.buf[:, :self.codec.segment_length]))
            self.buf = self.buf[:, stride:]
            self.offset += stride
        return out


class SegmentDecoder:
    """Push payload chunks (one per segment), pull ``(channels, n)`` audio: the samples before the
    next segment's start are final as soon as a segment is decoded (``stride`` = 47,520 per
    chunk); :meth:`finish` returns the rest.  The overlap-add adds the same terms in the same order
    as the whole-signal :func:`.encodec_model.overlap_add`, so the audio is identical."""

    def __init__(self, codec: Encodec48Codec, num_channels: int = 2, bitrate_kbps: float | None = None):
        self.codec = codec
        self.kbps = codec.validate_bitrate(bitrate_kbps, num_channels)
        self.n_q = codec.n_q_for(self.kbps)
        self.channels = num_channels
        self.coder: _SegmentCoder | None = None
        self.acc = torch.zeros(codec.config.channels, 0)
        self.wacc = torch.zeros(0)
        self.window: torch.Tensor | None = None
        self.segments = 0

    def _read(self, chunk: bytes) -> tuple[np.ndarray, float]:
        chunk = bytes(chunk)
        if len(chunk) < _HEAD.size:
            raise CorruptStreamError("encodec-48k chunk is shorter than its header")
        coder_id, n_q, frames, scale = _HEAD.unpack_from(chunk)
        names = {v: k for k, v in CODER_IDS.items()}
        max_frames = segment_frames(self.codec.segment_length, self.codec.hop)
        if coder_id not in names or n_q != self.n_q or not 0 < frames <= max_frames \
                or not (math.isfinite(scale) and scale > 0):
            raise CorruptStreamError(f"encodec-48k chunk header is inconsistent (coder {coder_id}, {n_q} codebooks, "
                                     f"{frames} frames, scale {scale:g})")
        name = names[coder_id]
        if name == "lm" and self.codec.lm is None:
            raise CorruptStreamError("stream is coded with a language model this model does not have")
        if self.coder is None:
            self.coder = _SegmentCoder(self.codec, n_q, name)
        elif self.coder.name != name:
            raise CorruptStreamError("encodec-48k chunks of one stream use different coders")
        try:
            codes = self.coder.decode(chunk[_HEAD.size:], frames)
        except CorruptStreamError:
            raise
        except Exception as e:  # noqa: BLE001 - a range decoder failing on garbage is a corrupt stream
            raise CorruptStreamError(f"encodec-48k chunk does not decode: {e}") from None
        if codes.size and (codes.min() < 0 or codes.max() >= self.codec.config.bins):
            raise CorruptStreamError("encodec-48k chunk decodes to codes outside the codebooks")
        return codes, scale

    def _out(self, y: torch.Tensor) -> np.ndarray:
        y = y.numpy()
        if self.channels == 1 and y.shape[0] == 2:
            y = y.mean(axis=0, keepdims=True)
        return np.ascontiguousarray(y, dtype=np.float32)

    def push(self, chunk: bytes) -> np.ndarray:
        from .encodec_model import EncodedFrame

        codes, scale = self._read(chunk)
        with torch.no_grad():
            y = self.codec.net._decode_segment(EncodedFrame(torch.from_numpy(codes)[None],
                                                            torch.tensor([[scale]], dtype=torch.float32)))[0]
        n = y.shape[-1]
        if self.window is None:
            self.window = _triangle(n)
        w = self.window[:n]
        if self.acc.shape[-1] < n:  # grow the pending region (zeros, as the whole-signal buffer)
            grow = n - self.acc.shape[-1]
            self.acc = torch.cat([self.acc, self.acc.new_zeros(self.acc.shape[0], grow)], -1)
            self.wacc = torch.cat([self.wacc, self.wacc.new_zeros(grow)])
        self.acc[:, :n] += w * y
        self.wacc[:n] += w
        self.segments += 1
        stride = self.codec.segment_stride
        done = min(stride, self.acc.shape[-1])
        out = self.acc[:, :done] / self.wacc[:done]
        self.acc, self.wacc = self.acc[:, done:].clone(), self.wacc[done:].clone()
        return self._out(out)

    def finish(self) -> np.ndarray:
        """The samples held back for the next segment's overlap (the end of the signal)."""
        if self.acc.shape[-1] == 0:
            return np.zeros((self.channels, 0), np.float32)
        out = self.acc / self.wacc
        self.acc, self.wacc = self.acc[:, :0], self.wacc[:0]
        return self._out(out)


class Encodec48Pretrained(EncodecPretrained):
    """The registered ``encodec-48k-official``: weights written by ``neurocodec import encodec
    encodec_48khz-*.th`` (no shipped weights), loaded on first use."""

    model_class = Encodec48Codec

    @staticmethod
    def default_weights_dir(codec_id: str) -> Path:
        from .encodec_import import user_weights_dir

        return user_weights_dir() / codec_id

    def missing_weights_hint(self) -> str:
        return ("this package ships none: convert the official checkpoint with 'neurocodec import encodec "
                "encodec_48khz-7e698e3e.th [--lm encodec_lm_48khz-7add9fc3.th]'")

    def channel_bitrate(self, kbps: float | None, num_channels: int = 1) -> float:
        return Encodec48Codec.channel_bitrate(self, kbps, num_channels)  # type: ignore[arg-type]

    def validate_bitrate(self, kbps: float | None, num_channels: int = 1) -> float:
        return Encodec48Codec.validate_bitrate(self, kbps, num_channels)  # type: ignore[arg-type]


def encodec_48k_official(weights_dir: str | Path | None = None) -> Encodec48Pretrained:
    """The official 48 kHz stereo EnCodec, once converted with ``neurocodec import encodec FILE.th``."""
    return Encodec48Pretrained("encodec-48k-official", Encodec48Config(), weights_dir)
