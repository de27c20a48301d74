"""The EnCodec network (defossez2022 §3): SEANet encoder, residual VQ, SEANet decoder.

:class:`EncodecNet` maps audio ``(B, channels, T)`` to RVQ codes ``(B, n_q, frames)`` and back.
The streamable variant codes a whole signal in one pass (or streams it, :class:`StreamingEncoder`
and :class:`StreamingDecoder`, at the hop size of 320 samples at 24 kHz); the non-streamable
variant (48 kHz) cuts the signal into ``segment`` seconds with ``overlap`` (1 %), normalises each
segment by its RMS (the scale travels with the codes) and overlap-adds the decoded segments with
triangular weights (§3.1, "Non-streamable").

Bandwidth: each codebook of ``bins`` entries costs ``log2(bins) * frame_rate`` bits per second
(0.75 kbps at 24 kHz), so ``n_q = floor(kbps / that)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..nn.seanet import SeanetConfig, SeanetDecoder, SeanetEncoder
from ..quant.rvq import ResidualVQ


@dataclass(frozen=True)
class EncodecNetConfig:
    """Everything that shapes an EnCodec network (defaults: the 24 kHz streamable model)."""

    sample_rate: int = 24000
    seanet: SeanetConfig = field(default_factory=SeanetConfig)
    n_q: int = 32
    bins: int = 1024
    target_bandwidths: tuple[float, ...] = (1.5, 3.0, 6.0, 12.0, 24.0)
    normalize: bool = False
    segment: float | None = None  # seconds (non-streamable variant)
    overlap: float = 0.01

    @property
    def frame_rate(self) -> int:
        return math.ceil(self.sample_rate / self.seanet.hop_length)

    @property
    def kbps_per_codebook(self) -> float:
        return math.log2(self.bins) * self.frame_rate / 1000

    def n_q_for(self, kbps: float) -> int:
        return int(max(1, math.floor(kbps / self.kbps_per_codebook + 1e-9)))

    @property
    def segment_length(self) -> int | None:
        return None if self.segment is None else int(self.segment * self.sample_rate)

    @property
    def segment_stride(self) -> int | None:
        n = self.segment_length
        return None if n is None else max(1, int((1 - self.overlap) * n))


def encodec_24k_config() -> EncodecNetConfig:
    """The paper's streamable 24 kHz mono model (C=32, B=4, strides 2,4,5,8, D=128, 32 codebooks)."""
    return EncodecNetConfig()


def encodec_48k_config() -> EncodecNetConfig:
    """The paper's non-streamable 48 kHz stereo model (time layer norm, 1 s segments, 16 codebooks)."""
    return EncodecNetConfig(sample_rate=48000, seanet=SeanetConfig(channels=2, causal=False, norm="time_group_norm"),
                            n_q=16, target_bandwidths=(3.0, 6.0, 12.0, 24.0), normalize=True, segment=1.0)


@dataclass
class EncodedFrame:
    """Codes ``(B, n_q, frames)`` of one segment and its RMS scale ``(B, 1)`` (None when not normalised)."""

    codes: torch.Tensor
    scale: torch.Tensor | None = None


def overlap_add(frames: list[torch.Tensor], stride: int) -> torch.Tensor:
    """Overlap-add of segments with triangular weights, normalised by the summed weights."""
    length = frames[0].shape[-1]
    total = stride * (len(frames) - 1) + frames[-1].shape[-1]
    t = torch.linspace(0, 1, length + 2, dtype=frames[0].dtype)[1:-1]
    w = 0.5 - (t - 0.5).abs()
    out = frames[0].new_zeros(*frames[0].shape[:-1], total)
    wsum = frames[0].new_zeros(total)
    for i, f in enumerate(frames):
        n = f.shape[-1]
        out[..., i * stride:i * stride + n] += w[:n] * f
        wsum[i * stride:i * stride + n] += w[:n]
    return out / wsum


class EncodecNet(nn.Module):
    """Encoder, residual VQ and decoder of EnCodec."""

    def __init__(self, cfg: EncodecNetConfig | None = None):
        super().__init__()
        self.cfg = cfg or EncodecNetConfig()
        self.encoder = SeanetEncoder(self.cfg.seanet)
        self.quantizer = ResidualVQ(self.cfg.seanet.dimension, self.cfg.n_q, self.cfg.bins)
        self.decoder = SeanetDecoder(self.cfg.seanet)

    @property
    def hop(self) -> int:
        return self.cfg.seanet.hop_length

    # -- whole signals ---------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_q: int) -> list[EncodedFrame]:
        """Codes of ``(B, channels, T)`` audio: one frame for the streamable model, one per segment otherwise."""
        seg = self.cfg.segment_length
        length = x.shape[-1]
        if seg is None:
            return [self._encode_segment(x, n_q)]
        stride = self.cfg.segment_stride
        return [self._encode_segment(x[..., o:o + seg], n_q) for o in range(0, length, stride)]

    def _encode_segment(self, x: torch.Tensor, n_q: int) -> EncodedFrame:
        scale = None
        if self.cfg.normalize:
            volume = x.mean(dim=1, keepdim=True).pow(2).mean(dim=2, keepdim=True).sqrt()
            s = 1e-8 + volume
            x = x / s
            scale = s.view(-1, 1)
        codes = self.quantizer.encode(self.encoder(x), n_q)
        return EncodedFrame(codes.transpose(0, 1), scale)

    @torch.no_grad()
    def decode(self, frames: list[EncodedFrame]) -> torch.Tensor:
        """Audio from :meth:`encode`'s frames (may be longer than the input: trim it)."""
        outs = [self._decode_segment(f) for f in frames]
        if self.cfg.segment_length is None:
            return outs[0]
        return overlap_add(outs, self.cfg.segment_stride)

    def _decode_segment(self, f: EncodedFrame) -> torch.Tensor:
        y = self.decoder(self.quantizer.decode(f.codes.transpose(0, 1)))
        return y if f.scale is None else y * f.scale.view(-1, 1, 1)

    def forward(self, x: torch.Tensor, n_q: int | None = None):
        """Differentiable pass for training: ``(reconstruction, codes, commitment loss)``."""
        q = self.quantizer(self.encoder(x), n_q)
        y = self.decoder(q.quantized)[..., :x.shape[-1]]
        return y, q.codes, q.commitment


class StreamingEncoder:
    """Push audio ``(channels, n)`` in any pieces, get codes ``(n_q, frames)`` as soon as they are determined."""

    def __init__(self, net: EncodecNet, n_q: int):
        if not net.cfg.seanet.causal:
            raise ValueError("only the streamable (causal) model can stream")
        self.net, self.n_q, self.state = net, n_q, {}

    @torch.no_grad()
    def push(self, audio: torch.Tensor, final: bool = False) -> torch.Tensor:
        z = self.net.encoder.stream(audio[None], self.state, final)
        if z.shape[-1] == 0:
            return torch.zeros(self.n_q, 0, dtype=torch.long)
        return self.net.quantizer.encode(z, self.n_q)[:, 0]


class StreamingDecoder:
    """Push codes ``(n_q, frames)``, get audio ``(channels, hop * frames)`` (the transposed
    convolutions' overlap is held back until the next frame, or dropped at the end)."""

    def __init__(self, net: EncodecNet):
        if not net.cfg.seanet.causal:
            raise ValueError("only the streamable (causal) model can stream")
        self.net, self.state = net, {}

    @torch.no_grad()
    def push(self, codes: torch.Tensor, final: bool = False) -> torch.Tensor:
        c = self.net.cfg.seanet
        if codes.shape[-1] == 0:
            z = torch.zeros(1, c.dimension, 0)
        else:
            z = self.net.quantizer.decode(codes[:, None, :])
        return self.net.decoder.stream(z, self.state, final)[0]
