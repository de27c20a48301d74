"""Streaming EnCodec: push audio, pull payload chunks; push chunks, pull audio (defossez2022 §3.1).

:class:`StreamEncoder` takes audio in pieces of any size, runs the streamable encoder on every
complete block of :attr:`~neurocodec.codecs.encodec.EncodecCodec.block_samples` (one payload chunk
by default, one frame of 320 samples at 24 kHz with ``block_frames = 1``) and hands out a payload
chunk whenever ``frames_per_chunk`` frames are coded; :meth:`StreamEncoder.finish` codes
the rest.  :class:`StreamDecoder` takes those chunks and gives audio, ``hop`` samples per frame.
:meth:`EncodecCodec.compress <neurocodec.codecs.encodec.EncodecCodec.compress>` runs the same blocks
and the same chunk writer, so a streamed file and a whole file give identical bytes.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import torch

from ..entropy.range_coder import RangeDecoder, RangeEncoder, quantize_pmf
from ..errors import CorruptStreamError
from .encodec_model import StreamingDecoder, StreamingEncoder

_HEAD = struct.Struct(">BBH")
_LEN = struct.Struct(">I")


def encode_blocks(codec, audio: np.ndarray, n_q: int) -> np.ndarray:
    """Codes ``(n_q, ceil(T / hop))`` of one channel through the streaming encoder, block by block."""
    enc = StreamingEncoder(codec.net, n_q)
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
    step = codec.block_samples
    out = []
    n = x.shape[-1]
    full = (n // step) * step
    for a in range(0, full, step):
        out.append(enc.push(x[:, a:a + step]))
    out.append(enc.push(x[:, full:], final=True))
    return torch.cat(out, -1).numpy().astype(np.int64)


def decode_blocks(codec, codes: np.ndarray) -> np.ndarray:
    """Audio of one channel's codes ``(n_q, F)``, one payload chunk (``frames_per_chunk`` frames)
    at a time: the frames that :class:`StreamDecoder` decodes together, so the audio is the
    same to the bit.  (A chunk's audio cannot be released before the chunk is read, and one
    call per chunk instead of per frame saves each layer's per-call overhead.)"""
    dec = StreamingDecoder(codec.net)
    c = torch.from_numpy(np.ascontiguousarray(codes, dtype=np.int64))
    b = codec.config.frames_per_chunk
    outs = [dec.push(c[:, a:a + b]) for a in range(0, c.shape[1], b)]
    outs.append(dec.push(c[:, :0], final=True))
    return torch.cat(outs, -1)[0].numpy()


class _Coder:
    """Range coding of one channel's codes ``(n_q, frames)`` (time-major) with one coder; the
    ``lm`` coder codes the codebooks beyond those its LM models (``lm_n_q``) with the static tables."""

    def __init__(self, codec, n_q: int, name: str):
        self.codec, self.n_q, self.name = codec, n_q, name
        bins = codec.config.bins
        if name == "uniform":
            self.cdf = np.stack([quantize_pmf(np.ones(bins), 16)] * n_q)
        elif name == "static":
            self.cdf = codec.static_cdf[:n_q].cpu().numpy().astype(np.int64)
        elif name == "lm":
            from .encodec import STATIC_PRECISION
            from .encodec_lm import CDF_PRECISION, LmCodingState

            ilm = codec.integer_lm()
            self.n_lm = min(n_q, ilm.n_q)
            self.lm_state = LmCodingState(ilm, self.n_lm)
            # codebooks the LM does not model: their static tables, scaled to the LM's total
            # (the same probabilities, so the same code lengths)
            rest = codec.static_cdf[self.n_lm:n_q].cpu().numpy().astype(np.int64)
            self.rest = rest << (CDF_PRECISION - STATIC_PRECISION)
        else:
            raise ValueError(f"unknown coder {name!r}")

    def encode(self, codes: np.ndarray) -> bytes:
        enc = RangeEncoder()
        if self.name == "lm":
            cdfs = self.lm_state.cdfs_for(codes[:self.n_lm])  # (frames, n_lm, bins + 1), context advanced
            if len(self.rest):
                rest = np.broadcast_to(self.rest, (cdfs.shape[0],) + self.rest.shape)
                cdfs = np.concatenate([cdfs, rest], axis=1)
            idx = np.arange(codes.shape[1] * self.n_q)
            enc.encode(codes.T.reshape(-1), cdfs.reshape(-1, cdfs.shape[-1]), idx)
        else:
            idx = np.tile(np.arange(self.n_q), codes.shape[1])
            enc.encode(codes.T.reshape(-1), self.cdf, idx)
        return enc.getvalue()

    def decode(self, data: bytes, frames: int) -> np.ndarray:
        dec = RangeDecoder(data)
        if self.name == "lm":
            out = np.zeros((self.n_q, frames), dtype=np.int64)
            for t in range(frames):
                cdf = self.lm_state.next_cdf()
                if len(self.rest):
                    cdf = np.concatenate([cdf, self.rest])
                out[:, t] = dec.decode(cdf, indexes=np.arange(self.n_q))
                self.lm_state.push(out[:self.n_lm, t])
        else:
            idx = np.tile(np.arange(self.n_q), frames)
            out = dec.decode(self.cdf, indexes=idx).reshape(frames, self.n_q).T.copy()
        dec.finish()
        return out


class ChunkWriter:
    """Cuts each channel's codes into chunks of ``frames_per_chunk`` frames and range codes them."""

    def __init__(self, codec, num_channels: int, n_q: int, coder: str | None = None):
        from .encodec import CODER_IDS

        self.codec, self.n_q, self.channels = codec, n_q, num_channels
        self.coder = coder or codec.coder_name()
        self.coder_id = CODER_IDS[self.coder]
        self.coders = [_Coder(codec, n_q, self.coder) for _ in range(num_channels)]
        self.pending = [np.zeros((n_q, 0), dtype=np.int64) for _ in range(num_channels)]

    def write(self, codes: list[np.ndarray], final: bool = False) -> list[bytes]:
        """Append each channel's new codes; return the chunks now complete (all, when ``final``)."""
        for c in range(self.channels):
            self.pending[c] = np.concatenate([self.pending[c], codes[c]], axis=1)
        per = self.codec.config.frames_per_chunk
        chunks = []
        while True:
            avail = min(p.shape[1] for p in self.pending)
            if avail >= per or (final and avail > 0):
                n = min(per, avail)
                body = [_HEAD.pack(self.coder_id, self.n_q, n)]
                for c in range(self.channels):
                    data = self.coders[c].encode(self.pending[c][:, :n])
                    self.pending[c] = self.pending[c][:, n:]
                    body += [_LEN.pack(len(data)), data]
                chunks.append(b"".join(body))
            else:
                break
        return chunks


class ChunkReader:
    """Inverse of :class:`ChunkWriter`: one chunk -> each channel's codes ``(n_q, frames)``."""

    def __init__(self, codec, num_channels: int, n_q: int):
        self.codec, self.n_q, self.channels = codec, n_q, num_channels
        self.coders: list[Any] | None = None
        self.coder_id: int | None = None

    def read(self, chunk: bytes) -> list[np.ndarray]:
        from .encodec import CODER_IDS

        chunk = bytes(chunk)
        if len(chunk) < _HEAD.size:
            raise CorruptStreamError("encodec chunk is shorter than its header")
        coder_id, n_q, frames = _HEAD.unpack_from(chunk)
        names = {v: k for k, v in CODER_IDS.items()}
        if coder_id not in names or n_q != self.n_q or frames == 0 or frames > self.codec.config.frames_per_chunk:
            raise CorruptStreamError(f"encodec chunk header is inconsistent (coder {coder_id}, {n_q} codebooks, "
                                     f"{frames} frames)")
        if self.coders is None:
            if names[coder_id] == "lm" and self.codec.lm is None:
                raise CorruptStreamError("stream is coded with a language model this model does not have")
            self.coder_id = coder_id
            self.coders = [_Coder(self.codec, n_q, names[coder_id]) for _ in range(self.channels)]
        elif coder_id != self.coder_id:
            raise CorruptStreamError("encodec chunks of one stream use different coders")
        pos, out = _HEAD.size, []
        for c in range(self.channels):
            if pos + _LEN.size > len(chunk):
                raise CorruptStreamError("encodec chunk is truncated")
            (n,) = _LEN.unpack_from(chunk, pos)
            pos += _LEN.size
            if pos + n > len(chunk):
                raise CorruptStreamError("encodec chunk is truncated")
            out.append(self.coders[c].decode(chunk[pos:pos + n], frames))
            pos += n
        if pos != len(chunk):
            raise CorruptStreamError("encodec chunk has trailing bytes")
        for codes in out:
            if codes.size and (codes.min() < 0 or codes.max() >= self.codec.config.bins):
                raise CorruptStreamError("encodec chunk decodes to codes outside the codebooks")
        return out


class StreamEncoder:
    """Push ``(channels, n)`` float32 audio at the codec's rate; pull payload chunks.

    ``push`` codes every complete block of ``codec.block_samples`` samples at once and returns the
    chunks completed by it; ``finish`` codes the remainder (end padding) and returns the last chunks.
    """

    def __init__(self, codec, num_channels: int = 1, bitrate_kbps: float | None = None):
        kbps = codec.validate_bitrate(bitrate_kbps, num_channels)
        self.codec, self.bitrate_kbps = codec, kbps
        self.n_q = codec.n_q_for(codec._kbps_per_channel(kbps, num_channels))
        self.encoders = [StreamingEncoder(codec.net, self.n_q) for _ in range(num_channels)]
        self.writer = ChunkWriter(codec, num_channels, self.n_q)
        self.buf = np.zeros((num_channels, 0), dtype=np.float32)
        self.num_samples = 0
        self.step = codec.block_samples

    def push(self, audio: np.ndarray) -> list[bytes]:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2 or audio.shape[0] != len(self.encoders):
            raise ValueError(f"push (channels={len(self.encoders)}, samples) float32 audio")
        self.num_samples += audio.shape[1]
        self.buf = np.concatenate([self.buf, audio], axis=1)
        full = (self.buf.shape[1] // self.step) * self.step
        codes = [[] for _ in self.encoders]
        for a in range(0, full, self.step):
            for c, enc in enumerate(self.encoders):
                codes[c].append(enc.push(torch.from_numpy(self.buf[c:c + 1, a:a + self.step])))
        self.buf = self.buf[:, full:]
        if not full:
            return []
        return self.writer.write([torch.cat(cs, -1).numpy().astype(np.int64) for cs in codes])

    def finish(self) -> list[bytes]:
        codes = [enc.push(torch.from_numpy(self.buf[c:c + 1].copy()), final=True).numpy().astype(np.int64)
                 for c, enc in enumerate(self.encoders)]
        self.buf = self.buf[:, :0]
        return self.writer.write(codes, final=True)


class StreamDecoder:
    """Push payload chunks, pull ``(channels, n)`` audio (``hop`` samples per decoded frame);
    ``finish(num_samples)`` drops the end padding beyond the signal's length."""

    def __init__(self, codec, num_channels: int = 1, bitrate_kbps: float | None = None):
        kbps = codec.validate_bitrate(bitrate_kbps, num_channels)
        self.codec = codec
        self.n_q = codec.n_q_for(codec._kbps_per_channel(kbps, num_channels))
        self.reader = ChunkReader(codec, num_channels, self.n_q)
        self.decoders = [StreamingDecoder(codec.net) for _ in range(num_channels)]
        self.emitted = 0

    def push(self, chunk: bytes) -> np.ndarray:
        per_ch = self.reader.read(chunk)
        # all frames of the chunk in one call, as decode_blocks does
        out = torch.stack([self.decoders[c].push(torch.from_numpy(codes))[0] for c, codes in enumerate(per_ch)]).numpy()
        self.emitted += out.shape[1]
        return out

    def finish(self, num_samples: int | None = None) -> np.ndarray:
        outs = [d.push(torch.zeros(self.n_q, 0, dtype=torch.long), final=True)[0] for d in self.decoders]
        return torch.stack(outs).numpy()
