"""EnCodec (defossez2022) as a codec of this package: the network of :mod:`.encodec_model`, its
training objective (§3.4) and a real bitstream of its RVQ codes (§3.3).

Bitrates: one model serves every bandwidth of its ladder (multi-bandwidth training, §3.2):
``n_q = kbps / (log2(bins) * frame_rate / 1000)`` codebooks (0.75 kbps each at 24 kHz, 0.5 kbps at
16 kHz).  ``--bitrate`` is the total over channels; each channel is coded by the mono model at its
share.

Coding is streaming by construction: the encoder takes ``block_frames * hop`` samples at a time
through the layers' streaming state, in :meth:`EncodecCodec.compress` and in the push/pull API
(:mod:`.encodec_stream`) alike, so both give the same codes and the same bytes.  By default a
block is one payload chunk (``frames_per_chunk`` frames, 1 s): a chunk's bytes cannot leave
before its last frame is coded, and one call per chunk costs a fraction of 75 calls of one
frame each.  ``block_frames = 1`` is the paper's 320-sample step (§3.1, "the model can output
320 samples as soon as the first 320 samples are received"), for models with one-frame chunks.
The block is an encoder setting: it changes the floating-point rounding of the codes, not what a
decoder needs, so it is not part of the config hash.
Decoding runs the streaming decoder once per payload chunk in :meth:`EncodecCodec.decompress`
and in the pull API alike, so both give the same audio.

Payload: one chunk per ``frames_per_chunk`` frames (1 s), laid out as

    u8 coder | u8 n_q | u16 frames | per channel: u32 length | range-coded codes

with ``coder`` 0 = uniform (``log2(bins)`` bits per code), 1 = static per-codebook tables fitted on
training audio at export, 2 = the Transformer language model of §3.3 (:mod:`.encodec_lm`), whose
integer CDFs are computed exactly (so the encoder, all frames at once, and the decoder, one frame
at a time with a KV cache, agree bit for bit).  Codes are range coded time-major (frame by frame,
codebook by codebook within a frame).  The LM's context runs on across chunks of a stream.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import struct
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..audio import atomic_write_bytes
from ..entropy.range_coder import RangeDecoder, RangeEncoder, quantize_pmf
from ..errors import BitrateError, CorruptStreamError, WeightsError
from ..nn.seanet import SeanetConfig
from .base import BitrateSpec, CodecModel, EncodedAudio, ForwardResult, config_hash
from .encodec_model import EncodecNet, EncodecNetConfig, StreamingDecoder, StreamingEncoder
from .weights_file import dataclass_from_json, read_format

__all__ = ["EncodecConfig", "EncodecCodec", "encodec_24k_config", "encodec_16k_config", "CODER_IDS"]

_FORMAT = "neurocodec-encodec"
#: coder byte of a chunk
CODER_IDS = {"uniform": 0, "static": 1, "lm": 2}
_CHUNK_HEAD = struct.Struct(">BBH")
STATIC_PRECISION = 16


#: the codebooks' training statistics, which checkpoints do not hold (:meth:`EncodecCodec.coding_state`)
_TRAINING_STATS = ("cluster_size", "embed_avg", "inited")


def merge_coding_state(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], path: Path,
                       required: tuple[str, ...] = ("",)) -> dict[str, torch.Tensor]:
    """``own`` (a fresh model's state dict) with the tensors of the checkpoint ``state`` in it,
    cast to the model's dtypes, and every codebook marked initialised; :class:`WeightsError`
    (one line, naming ``path``) for a tensor the model lacks, or for a missing one whose name
    starts with one of ``required`` (the codebooks' training statistics are never required)."""
    for k, v in state.items():
        if k not in own:
            raise WeightsError(f"{path}: unexpected tensor {k}")
        own[k] = v.to(own[k].dtype)
    missing = [k for k in own if k not in state and not k.endswith(_TRAINING_STATS) and k.startswith(required)]
    if missing:
        raise WeightsError(f"{path}: missing tensors {missing[:3]}")
    for k in own:
        if k.endswith("inited"):
            own[k] = torch.ones_like(own[k])
    return own


@dataclass(frozen=True)
class EncodecConfig:
    """One EnCodec model: network shape, coding and training settings (flat, for recipes)."""

    sample_rate: int = 24000
    n_filters: int = 32
    dimension: int = 128
    ratios: tuple[int, ...] = (8, 5, 4, 2)
    n_residual_layers: int = 1
    lstm_layers: int = 2
    pad_mode: str = "reflect"
    n_q: int = 32
    bins: int = 1024
    bandwidths: tuple[float, ...] = (1.5, 3.0, 6.0, 12.0, 24.0)
    default_kbps: float = 6.0
    # coding
    block_frames: int = 0  # the encoder's block in frames (0: one payload chunk); an encoder setting, not hashed
    frames_per_chunk: int = 75
    coder: str = "auto"  # auto (lm when the model has one, else static) | lm | static | uniform
    lm_dim: int = 200
    lm_layers: int = 5
    lm_heads: int = 8
    lm_ff: int = 800
    lm_context_seconds: float = 3.5
    lm_n_q: int = 0  # codebooks the LM models (0: no LM); codebooks beyond it are coded with the static tables
    # the model extends one with this many codebooks (0: none): streams with at most that many
    # codebooks carry that model's config hash, so files written before the extension still decode
    nested_n_q: int = 0
    # training (§3.4)
    lambda_t: float = 0.1
    lambda_f: float = 1.0
    lambda_g: float = 3.0
    lambda_feat: float = 3.0
    lambda_w: float = 1.0
    mel_log: bool = True  # multi-scale mel loss on log10 magnitudes (see MultiScaleMelLoss)
    balancer: bool = True
    balancer_beta: float = 0.999
    adversarial_start: int = 0  # first step with the discriminator (-1: never; reconstruction only)
    disc_prob: float = 2.0 / 3.0
    disc_lr: float = 3e-4
    disc_channels: int = 32
    weight_ema: float = 0.999  # EMA of the weights, exported (0: export the raw weights)

    def net_config(self) -> EncodecNetConfig:
        sean = SeanetConfig(channels=1, dimension=self.dimension, n_filters=self.n_filters, ratios=tuple(self.ratios),
                            n_residual_layers=self.n_residual_layers, lstm_layers=self.lstm_layers,
                            pad_mode=self.pad_mode, causal=True, norm="weight_norm")
        return EncodecNetConfig(sample_rate=self.sample_rate, seanet=sean, n_q=self.n_q, bins=self.bins,
                                target_bandwidths=tuple(self.bandwidths))


def encodec_24k_config(bitrate_kbps: float | None = None) -> EncodecConfig:
    """The paper's streamable 24 kHz model (§3.1), 1.5-24 kbps."""
    return EncodecConfig()


def shipped_24k_config(bitrate_kbps: float | None = None) -> EncodecConfig:
    """The shipped reduced 24 kHz model (12 MB weight budget): C=16, D=64, one LSTM layer, 32
    codebooks (1.5-24 kbps; codebooks 17-32 added to the trained 16 by
    ``scripts/extend_encodec_codebooks.py``), zero padding, and a small LM over the first 16
    codebooks (dim 32, 5 layers, 4 heads, FF 128)."""
    return EncodecConfig(n_filters=16, dimension=64, lstm_layers=1, n_q=32, bandwidths=(1.5, 3.0, 6.0, 12.0, 24.0),
                         pad_mode="constant", lm_n_q=16, lm_dim=32, lm_layers=5, lm_heads=4, lm_ff=128,
                         nested_n_q=16)


@dataclass(frozen=True)
class Encodec16kConfig(EncodecConfig):
    """:class:`EncodecConfig` with the 16 kHz speech defaults (the ``encodec-16k`` recipe's config
    class, so that ``neurocodec train encodec-16k`` without ``--bitrate`` trains at 16 kHz)."""

    sample_rate: int = 16000
    n_q: int = 16
    bandwidths: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    default_kbps: float = 4.0


def encodec_16k_config(bitrate_kbps: float | None = None) -> EncodecConfig:
    """A 16 kHz speech configuration: the same strides (hop 320, 50 frames/s, 0.5 kbps per
    codebook), 1-8 kbps with up to 16 codebooks."""
    return Encodec16kConfig()


def shipped_16k_config(bitrate_kbps: float | None = None) -> EncodecConfig:
    """The shipped 16 kHz speech model: the width of the shipped 24 kHz one (C=16, D=64, one LSTM
    layer, 16 codebooks: 1-8 kbps, zero padding) and a small LM (dim 16, 3 layers, 2 heads, FF 64)."""
    return Encodec16kConfig(n_filters=16, dimension=64, lstm_layers=1, pad_mode="constant",
                            lm_n_q=16, lm_dim=16, lm_layers=3, lm_heads=2, lm_ff=64)


class LmCoderMixin:
    """The entropy-coder choice of an EnCodec model with an optional code LM (§3.3), shared by the
    streaming and the 48 kHz codecs: ``coders`` are the coder names its streams know,
    ``fallback_coder`` what ``coder="auto"`` means without an LM.  Uses ``self.lm``,
    ``self._int_lm``, ``self.config.coder`` and ``self.codec_id``."""

    coders: dict[str, int] = CODER_IDS
    fallback_coder = "static"

    def integer_lm(self):
        """The exact integer version of the LM (built once; see :mod:`.encodec_lm`)."""
        if self.lm is None:
            raise WeightsError(f"{self.codec_id}: this model has no language model")
        if self._int_lm is None:
            from .encodec_lm import IntegerLM

            self._int_lm = IntegerLM(self.lm)
        return self._int_lm

    def coder_name(self) -> str:
        c = self.config.coder
        if c == "auto":
            return "lm" if self.lm is not None else self.fallback_coder
        if c == "lm" and self.lm is None:
            raise WeightsError(f"{self.codec_id}: coder 'lm' needs a model with a language model")
        if c not in self.coders:
            raise ValueError(f"unknown coder {c!r}")
        return c


class EncodecCodec(LmCoderMixin, nn.Module, CodecModel):
    """EnCodec: encoder, RVQ, decoder (+ optional code LM), trainable and codable."""

    codec_id = "encodec"
    codec_version = 1
    description = "EnCodec: SEANet + residual VQ + Transformer LM entropy coding (defossez2022)"
    learned = True

    def __init__(self, config: EncodecConfig | None = None, codec_id: str | None = None):
        nn.Module.__init__(self)
        self.config = config or EncodecConfig()
        cfg = self.config
        if codec_id:
            self.codec_id = codec_id
        self.net = EncodecNet(cfg.net_config())
        self.sample_rate = cfg.sample_rate
        self.bitrates = BitrateSpec(default=float(cfg.default_kbps), choices=tuple(float(b) for b in cfg.bandwidths))
        self.register_buffer("static_cdf", torch.from_numpy(np.stack(
            [quantize_pmf(np.ones(cfg.bins), STATIC_PRECISION)] * cfg.n_q)))
        self.lm = None
        if cfg.lm_n_q:
            from .encodec_lm import CodeLM

            self.lm = CodeLM(cfg.lm_n_q, cfg.bins, cfg.lm_dim, cfg.lm_layers, cfg.lm_heads, cfg.lm_ff,
                             int(cfg.lm_context_seconds * self.frame_rate))
        self._train_parts: dict[str, Any] = {}
        self._int_lm = None

    # -- identity ---------------------------------------------------------------------------
    @property
    def frame_rate(self) -> int:
        return self.net.cfg.frame_rate

    @property
    def hop(self) -> int:
        return self.net.hop

    def num_parameters(self) -> int:
        return sum(p.numel() for n, p in self.named_parameters() if n.startswith(("net.", "lm.")))

    def weights_digest(self, n_q: int | None = None) -> bytes:
        """SHA-256 of the coding state; with ``n_q``, of the model cut to its first ``n_q``
        codebooks (their static tables included), what :meth:`stream_config_hash` uses for
        streams of a nested model."""
        h = hashlib.sha256()
        state = self.coding_state()
        if n_q is not None:
            state = {k: v for k, v in state.items()
                     if not (k.startswith("net.quantizer.codebooks.") and int(k.split(".")[3]) >= n_q)}
            state["static_cdf"] = state["static_cdf"][:n_q]
        for name, t in sorted(state.items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
            h.update(t.numpy().tobytes())
        return h.digest()

    def config_dict(self) -> dict[str, Any]:
        d = asdict(self.config)
        for k in [f.name for f in fields(EncodecConfig)]:  # training settings do not shape the bitstream
            if k.startswith(("lambda_", "disc_", "balancer", "adversarial", "weight_ema", "mel_", "nested_")):
                d.pop(k)
        d.pop("block_frames")  # how the encoder cuts the signal: any decoder of the model reads the codes
        return d

    @property
    def block_samples(self) -> int:
        """Samples the streaming encoder takes at a time: ``block_frames`` frames, by default one
        payload chunk (its bytes cannot leave before its last frame is coded anyway)."""
        return (self.config.block_frames or self.config.frames_per_chunk) * self.hop

    def stream_config_hash(self, bitrate_kbps: float) -> int:
        """The config hash of streams at ``bitrate_kbps`` per channel: that of the whole model,
        except for a model extended from one with ``nested_n_q`` codebooks, whose streams of at
        most ``nested_n_q`` codebooks carry the smaller model's hash (they are coded by exactly the
        same network, codebooks, tables and LM), so its files still decode."""
        nested = self.config.nested_n_q
        if not nested or nested >= self.config.n_q or self.n_q_for(bitrate_kbps) > nested:
            return self.config_hash()
        d = self.config_dict()
        d["n_q"] = nested
        rate = self.net.cfg.n_q_for  # codebooks of a bandwidth
        d["bandwidths"] = tuple(b for b in self.config.bandwidths if rate(b) <= nested)
        return config_hash(d, self.weights_digest(nested))

    def n_q_for(self, kbps_per_channel: float) -> int:
        n = self.net.cfg.n_q_for(kbps_per_channel)
        if n > self.config.n_q:
            raise BitrateError(f"{self.codec_id}: {kbps_per_channel:g} kbps per channel needs {n} codebooks, "
                               f"the model has {self.config.n_q}")
        return n

    def _kbps_per_channel(self, kbps: float, channels: int) -> float:
        """Each channel's rate when ``kbps`` is the total over ``channels`` (the contract of
        :meth:`CodecModel.channel_bitrate`: a share below the ladder is a BitrateError)."""
        return self.channel_bitrate(kbps, channels)

    # -- weights ----------------------------------------------------------------------------
    def shipped_state(self) -> dict[str, torch.Tensor]:
        """What a shipped checkpoint holds: the (EMA) network, the static tables and the LM."""
        src = self._train_parts.get("ema") if self.config.weight_ema > 0 else None
        out = {}
        net_state = self.net.state_dict()
        if src is not None:
            net_state.update({k: v for k, v in src.items() if k in net_state})
        out.update({f"net.{k}": v for k, v in net_state.items()})
        out["static_cdf"] = self.static_cdf
        if self.lm is not None:
            out.update({f"lm.{k}": v for k, v in self.lm.state_dict().items()})
        return out

    def coding_state(self) -> dict[str, torch.Tensor]:
        """:meth:`shipped_state` less the codebooks' training statistics (not needed to code)."""
        return {k: v for k, v in self.shipped_state().items()
                if not k.endswith(_TRAINING_STATS)}

    def save_pretrained(self, path: str | Path) -> None:
        from safetensors.torch import save

        own = nn.Module.state_dict(self)
        # the weight EMA is kept in float32; store it in the dtype of the module's own tensors
        # (float16 after ``neurocodec export --fp16``)
        state = {k: v.detach().cpu().to(own[k].dtype if k in own and v.is_floating_point() else v.dtype)
                 .contiguous().clone() for k, v in self.coding_state().items()}
        meta = {"format": _FORMAT, "format_version": "1", "codec_id": self.codec_id,
                "config": json.dumps(asdict(self.config), sort_keys=True)}
        atomic_write_bytes(path, save(state, metadata=meta))

    @classmethod
    def from_pretrained(cls, path: str | Path, codec_id: str | None = None) -> "EncodecCodec":
        p = Path(path)
        state, meta = read_format(p, _FORMAT, "an EnCodec checkpoint")
        model = cls(dataclass_from_json(EncodecConfig, json.loads(meta["config"])),
                    codec_id=codec_id or meta.get("codec_id"))
        model.load_state_dict(merge_coding_state(model.state_dict(), state, p, required=("net.", "lm.", "static_cdf")))
        model.eval()
        return model

    @classmethod
    def for_bitrate(cls, kbps: float | None = None) -> "EncodecCodec":
        return cls(EncodecConfig())

    # -- training (§3.4) ------------------------------------------------------------------------
    def phases(self, total_steps: int):
        """One phase; only the network (not the discriminator, the LM or the weight EMA) is
        trained by the shared trainer's optimizer."""
        return [{"name": "train", "steps": int(total_steps), "trainable": ("net.",)}]

    def _parts(self) -> dict[str, Any]:
        p = self._train_parts
        if "mel" not in p:
            from ..nn.encodec_losses import Balancer, MsStftDiscriminator, MultiScaleMelLoss

            cfg = self.config
            dev = self.static_cdf.device
            p["mel"] = MultiScaleMelLoss(cfg.sample_rate, log=cfg.mel_log).to(dev)
            p["balancer"] = Balancer({"t": cfg.lambda_t, "f": cfg.lambda_f, "g": cfg.lambda_g,
                                      "feat": cfg.lambda_feat}, beta=cfg.balancer_beta)
            if cfg.adversarial_start >= 0:
                torch.manual_seed(1234)
                p["disc"] = MsStftDiscriminator(channels=cfg.disc_channels).to(dev)
                p["disc_opt"] = torch.optim.Adam(p["disc"].parameters(), lr=cfg.disc_lr, betas=(0.5, 0.9))
        return p

    def training_step(self, batch: torch.Tensor, step: int):
        from ..nn.encodec_losses import (discriminator_hinge_loss, feature_matching_loss,
                                         generator_hinge_loss)

        cfg = self.config
        parts = self._parts()
        rng = random.Random(1_000_003 * 17 + int(step))  # the same bandwidth on every DDP rank
        kbps = rng.choice(list(cfg.bandwidths))
        n_q = self.n_q_for(kbps)
        x = batch
        y, codes, commit = self.net(x, n_q)
        losses = {"t": F.l1_loss(y, x), "f": parts["mel"](x, y)}
        terms: dict[str, Any] = {"loss/l1": losses["t"].detach(), "loss/mel": losses["f"].detach(),
                                 "loss/commit": commit.detach(), "rate/kbps": kbps}
        adversarial = cfg.adversarial_start >= 0 and step >= cfg.adversarial_start
        if adversarial:
            disc = parts["disc"]
            if rng.random() < cfg.disc_prob:
                real = disc(x)
                fake = disc(y.detach())
                d_loss = discriminator_hinge_loss([r for r, _ in real], [f for f, _ in fake])
                grads = torch.autograd.grad(d_loss, list(disc.parameters()))
                for prm, g in zip(disc.parameters(), grads):
                    prm.grad = g
                parts["disc_opt"].step()
                parts["disc_opt"].zero_grad(set_to_none=True)
                terms["loss/disc"] = d_loss.detach()
            for prm in disc.parameters():
                prm.requires_grad_(False)
            try:
                real = disc(x)
                fake = disc(y)
            finally:
                for prm in disc.parameters():
                    prm.requires_grad_(True)
            losses["g"] = generator_hinge_loss([f for f, _ in fake])
            losses["feat"] = feature_matching_loss([r for _, r in real], [f for _, f in fake])
            terms["loss/gen"] = losses["g"].detach()
            terms["loss/feat"] = losses["feat"].detach()
        weights = {"t": cfg.lambda_t, "f": cfg.lambda_f, "g": cfg.lambda_g, "feat": cfg.lambda_feat}
        if cfg.balancer:
            surrogate, _ = parts["balancer"].backward_surrogate(losses, y)
        else:
            surrogate = sum(weights[k] * v for k, v in losses.items())
        self._update_weight_ema()
        return {"loss": surrogate + cfg.lambda_w * commit, **terms}

    @torch.no_grad()
    def _update_weight_ema(self) -> None:
        d = self.config.weight_ema
        if d <= 0:
            return
        state = self.net.state_dict()
        ema = self._train_parts.get("ema")
        if ema is None:
            ema = self._train_parts["ema"] = {k: v.detach().clone() for k, v in state.items()}
            ema["updates"] = torch.zeros(())
            return
        if "updates" not in ema:
            ema["updates"] = torch.zeros(())
        ema["updates"] += 1
        n = float(ema["updates"])
        d = min(d, (1 + n) / (10 + n))  # warm-up: early weights fade out of short runs
        for k, v in state.items():
            if v.dtype.is_floating_point and "codebooks" not in k:
                ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                ema[k].copy_(v)

    def state_dict(self, *args, **kwargs):  # the weight EMA travels with training checkpoints
        sd = super().state_dict(*args, **kwargs)
        ema = self._train_parts.get("ema")
        if ema is not None and not kwargs.get("keep_vars"):
            prefix = kwargs.get("prefix", args[1] if len(args) > 1 else "")
            for k, v in ema.items():
                sd[f"{prefix}ema.{k}"] = v.clone()
        return sd

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        state = dict(state)
        ema = {k[4:]: v for k, v in state.items() if k.startswith("ema.")}
        for k in list(state):
            if k.startswith("ema."):
                del state[k]
        if ema:
            self._train_parts["ema"] = {k: v.clone() for k, v in ema.items()}
        return super().load_state_dict(state, strict=strict, assign=assign)

    @torch.no_grad()
    def reconstruct(self, batch: torch.Tensor) -> torch.Tensor:
        was = self.training
        self.eval()
        try:
            frames = self.net.encode(batch, self.n_q_for(self.config.default_kbps))
            return self.net.decode(frames)[..., :batch.shape[-1]]
        finally:
            self.train(was)

    def forward(self, audio, bitrate_kbps: float | None = None) -> ForwardResult:  # type: ignore[override]
        x = torch.as_tensor(np.asarray(audio, dtype=np.float32) if not torch.is_tensor(audio) else audio)
        if x.dim() == 2:
            x = x[None]
        kbps = self.validate_bitrate(bitrate_kbps, x.shape[1])
        n_q = self.n_q_for(self._kbps_per_channel(kbps, x.shape[1]))
        b, c, t = x.shape
        y, codes, commit = self.net(x.reshape(b * c, 1, t), n_q)
        frames = codes.shape[-1]
        bits = torch.full((b,), float(c * n_q * frames * math.log2(self.config.bins)))
        return ForwardResult(audio=y.reshape(b, c, t), bits=bits, extras={"codes": codes, "commitment": commit})

    # -- coding -----------------------------------------------------------------------------
    def encode_codes(self, audio: np.ndarray, n_q: int) -> np.ndarray:
        """RVQ codes ``(n_q, frames)`` of one channel, through the streaming encoder in blocks of
        :attr:`block_samples` (as the push API does)."""
        from .encodec_stream import encode_blocks

        return encode_blocks(self, audio, n_q)

    def decode_codes(self, codes: np.ndarray) -> np.ndarray:
        """Audio ``(frames * hop,)`` of one channel's codes, frame by frame through the streaming decoder."""
        from .encodec_stream import decode_blocks

        return decode_blocks(self, codes)

    def compress(self, audio: np.ndarray, bitrate_kbps: float | None = None,
                 **kwargs) -> EncodedAudio:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 2:
            raise ValueError("audio must be (channels, samples)")
        kbps = self.validate_bitrate(bitrate_kbps, audio.shape[0])
        n_q = self.n_q_for(self._kbps_per_channel(kbps, audio.shape[0]))
        from .encodec_stream import ChunkWriter

        writer = ChunkWriter(self, audio.shape[0], n_q)
        codes = [self.encode_codes(ch, n_q) for ch in audio]
        chunks = writer.write(codes, final=True)
        return EncodedAudio(chunks=chunks, bitrate_kbps=kbps, num_channels=audio.shape[0], num_samples=audio.shape[1])

    def decompress(self, chunks: Sequence[bytes] | Iterable[bytes], num_channels: int,
                   num_samples: int, bitrate_kbps: float) -> np.ndarray:
        kbps = self.validate_bitrate(bitrate_kbps, num_channels)
        n_q = self.n_q_for(self._kbps_per_channel(kbps, num_channels))
        from .encodec_stream import ChunkReader

        reader = ChunkReader(self, num_channels, n_q)
        per_ch: list[list[np.ndarray]] = [[] for _ in range(num_channels)]
        for chunk in chunks:
            for c, codes in enumerate(reader.read(chunk)):
                per_ch[c].append(codes)
        frames = math.ceil(num_samples / self.hop) if num_samples else 0
        out = np.zeros((num_channels, num_samples), dtype=np.float32)
        for c in range(num_channels):
            codes = np.concatenate(per_ch[c], axis=1) if per_ch[c] else np.zeros((n_q, 0), dtype=np.int64)
            if codes.shape[1] != frames:
                raise CorruptStreamError(f"stream holds {codes.shape[1]} frames, the header implies {frames}")
            if frames:
                out[c] = self.decode_codes(codes)[:num_samples]
        return out

    # -- entropy model fitting (export hook) ----------------------------------------------------
    @torch.no_grad()
    def fit_entropy_coder(self, signals: Iterable[np.ndarray]) -> dict[str, Any]:
        """Per-codebook code histograms of ``signals`` (all ``n_q`` codebooks) -> static tables."""
        bins, n_q = self.config.bins, self.config.n_q
        counts = np.ones((n_q, bins))
        pairs = [dict() for _ in range(n_q)]  # counts of (code at t-1, code at t), for the model card
        seconds = 0.0
        self.eval()
        for audio in signals:
            audio = np.asarray(audio, dtype=np.float32)
            seconds += audio.shape[-1] / self.sample_rate
            for ch in audio:
                codes = self.net.encode(torch.from_numpy(ch)[None, None], n_q)[0].codes[0].numpy()
                for k in range(n_q):
                    counts[k] += np.bincount(codes[k], minlength=bins)
                    keys, n = np.unique(codes[k][:-1] * bins + codes[k][1:], return_counts=True)
                    for a, b in zip(keys.tolist(), n.tolist()):
                        pairs[k][a] = pairs[k].get(a, 0) + b
        pmf = counts / counts.sum(1, keepdims=True)
        self.static_cdf.copy_(torch.from_numpy(quantize_pmf(pmf, STATIC_PRECISION)))
        ent = -(pmf * np.log2(pmf)).sum(1)
        pair_ent = []
        for k in range(n_q):
            c = np.array(list(pairs[k].values()), dtype=np.float64)
            p = c / c.sum() if c.size else np.ones(1)
            pair_ent.append(float(-(p * np.log2(p)).sum() / 2))
        return {"seconds": seconds,
                "entropy_bits": {f"codebook{k:02d}": float(e) for k, e in enumerate(ent)},
                "pair_entropy_bits": {f"codebook{k:02d}": e for k, e in enumerate(pair_ent)}}


class EncodecPretrained(CodecModel):
    """A registered EnCodec model: the shipped checkpoint ``assets/weights/<codec_id>/model.safetensors``
    (``neurocodec export RUN --name <codec_id>``, or ``neurocodec import encodec FILE.th --out DIR``
    and ``weights_dir=DIR``), loaded on first use."""

    learned = True

    #: the network class the weights load into (a subclass may name another, e.g. the 48 kHz codec)
    model_class: type = None  # set below, once EncodecCodec exists in this module's namespace

    def __init__(self, codec_id: str, config: EncodecConfig, weights_dir: str | Path | None = None):
        self.codec_id = codec_id
        self.description = self.model_class.description
        self.codec_version = self.model_class.codec_version
        self.sample_rate = config.sample_rate
        self.bitrates = BitrateSpec(default=float(config.default_kbps), choices=tuple(float(b) for b in config.bandwidths))
        self.path = Path(weights_dir if weights_dir is not None else self.default_weights_dir(codec_id)) / \
            "model.safetensors"
        self._config = config
        self._model = None

    @staticmethod
    def default_weights_dir(codec_id: str) -> Path:
        """Where the weights are looked for when ``weights_dir`` is not given: the package's own."""
        from .pretrained import WEIGHTS_DIR

        return WEIGHTS_DIR / codec_id

    def missing_weights_hint(self) -> str:
        """The second half of the one-line error when the weights file is absent."""
        return (f"train them with 'neurocodec train {self.codec_id} ...' and 'neurocodec export RUN --name "
                f"{self.codec_id}', or convert an official checkpoint with 'neurocodec import encodec FILE.th'")

    @property
    def model(self):
        if self._model is None:
            if not self.path.is_file():
                raise WeightsError(f"no trained weights for '{self.codec_id}' (expected {self.path}); "
                                   f"{self.missing_weights_hint()}")
            m = self.model_class.from_pretrained(self.path, codec_id=self.codec_id)
            if m.sample_rate != self.sample_rate:
                raise WeightsError(f"{self.path} runs at {m.sample_rate} Hz, expected {self.sample_rate}")
            self._model = m
        return self._model

    def has_trained_weights(self) -> bool:
        return self.path.is_file()

    def config_dict(self) -> dict[str, Any]:
        return self.model.config_dict()

    def weights_digest(self) -> bytes:
        return self.model.weights_digest()

    def stream_config_hash(self, bitrate_kbps: float) -> int:
        return self.model.stream_config_hash(bitrate_kbps)

    def num_parameters(self) -> int:
        return self.model.num_parameters() if self.path.is_file() else self.model_class(self._config).num_parameters()

    @property
    def config(self):
        return self.model.config if self._model is not None else self._config

    def compress(self, audio: np.ndarray, bitrate_kbps: float | None = None,
                 **kwargs) -> EncodedAudio:
        return self.model.compress(audio, bitrate_kbps)

    def decompress(self, chunks, num_channels: int, num_samples: int, bitrate_kbps: float) -> np.ndarray:
        return self.model.decompress(chunks, num_channels, num_samples, bitrate_kbps)


EncodecPretrained.model_class = EncodecCodec


def encodec_24k(weights_dir: str | Path | None = None) -> EncodecPretrained:
    """The registered 24 kHz streamable EnCodec (shipped reduced-width weights, see its model card)."""
    return EncodecPretrained("encodec-24k", shipped_24k_config(), weights_dir)


def encodec_16k(weights_dir: str | Path | None = None) -> EncodecPretrained:
    """The registered 16 kHz speech EnCodec (shipped reduced-width weights, see its model card)."""
    return EncodecPretrained("encodec-16k", shipped_16k_config(), weights_dir)


def encodec_24k_official(weights_dir: str | Path | None = None) -> EncodecPretrained:
    """The official 24 kHz EnCodec, once converted with ``neurocodec import encodec FILE.th``."""
    from .encodec_import import user_weights_dir

    return EncodecPretrained("encodec-24k-official", EncodecConfig(),
                             weights_dir if weights_dir is not None else user_weights_dir() / "encodec-24k-official")
