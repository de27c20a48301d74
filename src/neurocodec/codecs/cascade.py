"""Cascaded residual coding shared by CMRL (zhen2019) and CQ (zhen2020) (codecs layer).

Signal flow of :class:`CascadeCodec` (one channel; ``forward`` does the same on a batch,
differentiably, with soft quantization):

1. gain normalisation: the signal is divided by its RMS ``g`` (zhen2019 §3.1 normalises the
   input to unit variance); ``g`` travels as a float32 in every chunk;
2. with an LPC front end (LPC-CMRL, zhen2019 §3.1; CQ, zhen2020 §3.1): 50 Hz high-pass,
   pre-emphasis ``1 - 0.68 z^-1``, LPC of order 16 on 1024-sample frames with 50% overlap
   (window of Fig. 3a), LSPs, softmax quantization of the LSPs, LSP -> LPC, and the
   residual of the non-overlapping 512-sample segments (sub-frame windowing of Fig. 3b);
   the coded signal is the residual.  Without it (raw-PCM CMRL) the coded signal is the
   normalised input;
3. the coded signal is cut into frames of S = 512 samples every S - o = 480 samples (o = 32
   overlap, zhen2019 §2.1.1), starting ``o`` samples before the signal; the modules code
   them in cascade: module ``i`` codes ``x^(i) = x - sum_{j<i} x_hat^(j)`` (zhen2019 eq. 1)
   through encoder -> (differential code ``dh_i = h_i - h_{i-1}`` for CQ, zhen2020 §3.2)
   -> softmax quantizer (32 centroids) -> decoder; the decoded frames are summed;
4. the frames are windowed (ones with Hann halves on the 32 overlap samples, Fig. 3c) and
   overlap-added; with LPC, the all-pole synthesis filter of each segment and the
   de-emphasis follow;
5. the output is multiplied by ``g``.

The training objective (zhen2020 eq. 2) is ``l1 T + l2 F + l3 Q + l4 E``: time-domain MSE,
mel loss over four filterbanks (128, 32, 16, 8 bands), quantization penalty and entropy of
the soft assignments (see :mod:`neurocodec.quant.soft_to_hard`), computed on the
normalised (and, with LPC, high-passed) signal.  Training follows zhen2019 §2.2.1: greedy
phases ``greedy-i`` train module ``i`` alone on the residual of the frozen, hard-quantized
modules before it, then ``finetune`` trains all modules on the total error (eq. 4).  With
CQ the LSP centroids are trained with module 1 and in fine-tuning; gradients reach them
through LSP -> LPC -> residual and through the synthesis filter.

Bitstream: every chunk covers ``chunk_frames`` frames (~1 s) and holds, per channel, the
symbols of its frames and LPC segments, pair-Huffman (or range) coded with tables that are
part of the model state (:mod:`neurocodec.codecs.cascade_tables`).  With
``file_rate_control`` each chunk also carries a ladder step of module 1's quantizer, chosen
so that the whole file lands on the nominal bitrate (:mod:`neurocodec.codecs.cascade_rate`).  Frames are run through
the networks one chunk at a time in the encoder and the decoder alike, so decoding is
bit-exact and does not depend on the number of torch threads.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..audio import atomic_write_bytes, validate
from ..dsp import lpc as lpcdsp
from ..dsp.mel import MelSpectrogram, hz_to_mel, mel_to_hz
from ..errors import AudioError, CorruptStreamError, UserError, WeightsError
from ..nn.cmrl_blocks import AutoencoderConfig, ComponentAutoencoder
from ..quant.soft_to_hard import QuantizerOutput, SoftToHardQuantizer, anneal_alpha
from .base import BitrateSpec, CodecModel, EncodedAudio, ForwardResult
from .cascade_rate import plan_rate_steps
from .cascade_tables import (CODERS, ChunkContent, EntropyTable, SymbolCounts, decode_chunk, encode_chunk,
                             rate_step_multiplier)
from .weights_file import check_state_match, read_weights

__all__ = [
    "LossWeights", "LpcConfig", "CascadeTraining", "CascadeConfig", "RATE_CONTROLS", "Geometry", "ModuleOutput", "CodingModule",
    "TrainingPhase", "LossOutput", "CascadeCodec", "config_to_json", "config_from_json",
]

#: smallest gain (RMS) used for normalisation; digital silence is coded with this gain
GAIN_FLOOR = 1e-5
_CHECKPOINT_FORMAT = "neurocodec-cascade"


# ---------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LossWeights:
    """Weights of zhen2020 eq. 2 and the mel-loss analysis (the papers give no values; these
    are starting points for the trainer; ``entropy`` is ``lambda_4``, used only when the
    codec's ``rate_control`` is off - otherwise a hinge on the bitrate replaces it)."""

    time: float = 1.0
    mel: float = 1.0
    quantization: float = 0.1
    entropy: float = 0.05
    mel_bands: tuple[int, ...] = (128, 32, 16, 8)
    mel_n_fft: int = 512
    mel_hop: int = 128

    def __post_init__(self) -> None:
        object.__setattr__(self, "mel_bands", tuple(int(b) for b in self.mel_bands))


@dataclass(frozen=True)
class LpcConfig:
    """The LPC front end of zhen2020 §3.1 (also used, untrained, by LPC-CMRL).

    ``lsp_levels_hz`` bounds the initial LSP centroids, spaced evenly on the (HTK) mel scale;
    ``lsp_min_gap_hz`` is the minimum LSP distance enforced after quantization (AMR-WB uses
    50 Hz for its ISPs) so that the synthesis filter is always stable.
    """

    order: int = 16
    analysis_length: int = 1024
    segment_length: int = 512
    subframe_length: int = 128
    preemphasis: float = 0.68
    highpass_hz: float = 50.0
    lag_window_hz: float = 60.0
    white_noise: float = 1e-4
    lsp_min_gap_hz: float = 50.0
    num_centroids: int = 256
    trainable: bool = True
    lsp_levels_hz: tuple[float, float] = (50.0, 7950.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lsp_levels_hz", tuple(float(v) for v in self.lsp_levels_hz))
        if self.order % 2 or self.order < 2:
            raise ValueError("LPC order must be even")
        if (self.analysis_length - self.segment_length) % 2 or self.analysis_length < self.segment_length:
            raise ValueError("analysis frames must be centred on the segments")


#: rate controls of training (:class:`CascadeTraining` ``rate_control``)
RATE_CONTROLS = ("steer", "hinge", "fixed")


@dataclass(frozen=True)
class CascadeTraining:
    """How a cascade codec is trained: none of it is part of the bitstream (not in the stream
    header's config hash, :meth:`CascadeCodec.config_dict`); set with ``--set model.training.X=...``.

    Schedule (zhen2019 §2.2.1, and the authors' code, cocosci/NSC): per module ``i`` an
    unquantized pre-training phase ``pretrain-i`` (``pretrain_share`` of the module's steps; 0
    skips it), then ``greedy-i`` with soft-to-hard quantization, whose centroids are first set
    by k-means on the trained encoder's outputs (``kmeans_init``; ``centroid_init="entropy"``
    instead sets an evenly spaced grid whose entropy on those outputs is the phase's target bits
    per symbol, so that the quantized phase starts at its rate), then ``finetune``.

    Learning rates are *factors* of the recipe's ``train.lr`` (so ``--set train.lr=...``
    scales every phase): ``pretrain_lr_factor``, ``greedy_lr_factors[i]``, ``finetune_lr_factor``
    (CMRL: 1e-4 for module 1, 2e-5 for module 2 and fine-tuning, zhen2019 §3.1, with
    ``train.lr=1e-4``).

    Rate (``rate_control``): ``"steer"`` (default) is the papers' ``lambda_4 * E`` with
    ``lambda_4`` steered toward the target between evaluations, as the authors' code does once per
    epoch: every ``steer_every`` steps the mean estimated rate of those steps is compared with
    ``rate_margin`` x the target and ``lambda_4`` is multiplied (above ``1 + steer_tolerance``)
    or divided (below ``1 - steer_tolerance``) by ``steer_factor``; it starts at
    ``loss.entropy``.  ``"hinge"`` is ``rate_penalty * max(0, kbps - rate_margin * target)`` (+
    ``rate_lower_penalty`` below it); ``"fixed"`` is ``loss.entropy * E``.
    """

    alpha: float = 300.0
    alpha_start: float = 5.0
    alpha_anneal_steps: int = 2000  # 0 keeps alpha fixed (a fixed alpha of 300 from step 0 did not learn)
    train_output: str = "soft"
    pretrain_share: float = 0.5  # fraction of each module's greedy budget trained without quantization
    kmeans_init: bool = True  # centroids from the encoder outputs when quantization switches on
    centroid_init: str = "kmeans"  # "kmeans" | "entropy": uniform grid at the phase's target bits/symbol
    relative_alpha: bool = True  # alpha in units of the code centroids' current mean spacing
    pretrain_lr_factor: float = 1.0
    greedy_lr_factors: tuple[float, ...] = (1.0, 0.2)
    finetune_lr_factor: float = 0.2
    rate_control: str = "steer"
    steer_every: int = 100
    steer_factor: float = 1.5
    steer_tolerance: float = 0.03
    rate_penalty: float = 0.1  # hinge: loss per kbps above the target
    rate_margin: float = 0.97  # the rate is held at this fraction of the target (framing overhead)
    rate_lower_penalty: float = 0.0  # hinge: loss per kbps below it
    first_module_share: float = 0.0  # > 0: greedy-1's share of the target (0: by symbol rate)
    loss: LossWeights = LossWeights()

    def __post_init__(self) -> None:
        object.__setattr__(self, "greedy_lr_factors", tuple(float(v) for v in self.greedy_lr_factors))
        if self.rate_control not in RATE_CONTROLS:
            raise ValueError(f"rate_control must be one of {RATE_CONTROLS}")
        if self.centroid_init not in ("kmeans", "entropy"):
            raise ValueError("centroid_init must be 'kmeans' or 'entropy'")
        if not 0.0 <= self.pretrain_share < 1.0:
            raise ValueError("pretrain_share must be in [0, 1)")
        if self.steer_every < 1 or not self.steer_factor > 1.0:
            raise ValueError("steer_every must be >= 1 and steer_factor > 1")


#: fields that configs written before :class:`CascadeTraining` held at the top level
_LEGACY_TRAINING = ("alpha", "alpha_start", "alpha_anneal_steps", "train_output", "rate_penalty", "rate_margin",
                    "rate_lower_penalty", "loss")


@dataclass(frozen=True)
class CascadeConfig:
    """What defines a cascade codec and its bitstream (hashed into the stream header), plus
    ``training`` (:class:`CascadeTraining`, not hashed)."""

    bitrate_kbps: float = 16.0
    modules: tuple[AutoencoderConfig, ...] = (AutoencoderConfig(),)
    lpc: LpcConfig | None = None
    sample_rate: int = 16000
    frame_length: int = 512
    overlap: int = 32
    num_centroids: int = 32
    differential: bool = False
    normalize: bool = True
    chunk_frames: int = 32
    entropy_coder: str = "huffman"  # "huffman" | "range" | "best" (per chunk, the shorter of the two)
    code_scale: float = 1.0  # module 1's code is quantized on centroids * code_scale (export-time rate trim)
    file_rate_control: bool = False  # compress: per-chunk ladder steps land each file on the nominal rate
    training: CascadeTraining = CascadeTraining()

    def __post_init__(self) -> None:
        object.__setattr__(self, "modules", tuple(self.modules))
        if not self.modules:
            raise ValueError("a cascade needs at least one module")
        for m in self.modules:
            if m.frame_length != self.frame_length:
                raise ValueError("module frame length differs from the codec frame length")
            if m.code_length % 2:
                raise ValueError("code length must be even (symbols are coded in pairs)")
        if not 0 <= 2 * self.overlap < self.frame_length:
            raise ValueError("overlap must be smaller than half a frame")
        if self.entropy_coder not in CODERS + ("best",):
            raise ValueError(f"entropy_coder must be one of {CODERS + ('best',)}")
        if self.chunk_frames < 1:
            raise ValueError("chunk_frames must be positive")
        if self.lpc is not None and (self.chunk_frames * self.hop) % self.lpc.segment_length:
            raise ValueError("a chunk must hold a whole number of LPC segments (chunk_frames * hop % 512)")
        if len(self.training.greedy_lr_factors) < len(self.modules):
            raise ValueError("one greedy learning-rate factor per module is needed")
        if not (math.isfinite(self.code_scale) and self.code_scale > 0):
            raise ValueError("code_scale must be a positive number")

    @property
    def hop(self) -> int:
        return self.frame_length - self.overlap


def config_to_json(cfg: CascadeConfig) -> str:
    """Canonical JSON of a config (stored in checkpoints)."""
    return json.dumps(asdict(cfg), sort_keys=True)


def config_from_json(cls: type, text: str) -> CascadeConfig:
    """Rebuild a config of class ``cls`` from :func:`config_to_json` output (WeightsError if
    invalid).  Configs written before the training settings had their own section keep them at
    the top level: they move into ``training``, and the old absolute learning rates and the
    boolean ``rate_control`` (a hinge) are read as today's factors and ``"hinge"``."""
    try:
        d = dict(json.loads(text))
        d["modules"] = tuple(AutoencoderConfig(**m) for m in d["modules"])
        d["lpc"] = None if d.get("lpc") is None else LpcConfig(**d["lpc"])
        tr = dict(d.pop("training", None) or {})
        for key in _LEGACY_TRAINING:
            if key in d:
                tr.setdefault(key, d.pop(key))
        if "rate_control" in d:
            tr.setdefault("rate_control", "hinge" if d.pop("rate_control") else "fixed")
        greedy, fine = d.pop("greedy_learning_rates", None), d.pop("finetune_learning_rate", None)
        if greedy:  # absolute rates of old configs: factors of their first rate
            tr.setdefault("greedy_lr_factors", tuple(g / greedy[0] for g in greedy))
            if fine is not None:
                tr.setdefault("finetune_lr_factor", fine / greedy[0])
            tr.setdefault("pretrain_share", 0.0)
            tr.setdefault("relative_alpha", False)
        if "loss" in tr:
            tr["loss"] = LossWeights(**tr["loss"])
        d["training"] = CascadeTraining(**tr)
        return cls(**d)
    except (TypeError, ValueError, KeyError) as exc:
        raise WeightsError(f"checkpoint config is invalid for {cls.__name__}: {exc}") from None


# ---------------------------------------------------------------------------------------
# framing geometry
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Geometry:
    """Frames, LPC segments and chunks of a signal of ``num_samples`` samples.

    Time axis: the signal starts at sample ``overlap`` of a zero-padded buffer of
    ``padded_length`` samples.  Frame ``f`` covers ``[f hop, f hop + S)``; segment ``k``
    covers ``[k L, (k+1) L)``; chunk ``c`` holds frames ``[c n, (c+1) n)`` and the segments
    that start inside ``[c n hop, (c+1) n hop)``.
    """

    num_samples: int
    frame_length: int
    hop: int
    overlap: int
    num_frames: int
    segment_length: int
    num_segments: int
    padded_length: int
    chunk_frames: int

    @classmethod
    def of(cls, cfg: CascadeConfig, num_samples: int) -> "Geometry":
        T, S, o, H = int(num_samples), cfg.frame_length, cfg.overlap, cfg.hop
        nf = -(-(T + o) // H)
        L = cfg.lpc.segment_length if cfg.lpc is not None else 0
        nseg = -(-(T + o) // L) if L else 0
        padded = max(nf * H + o, nseg * L)
        return cls(T, S, H, o, nf, L, nseg, padded, cfg.chunk_frames)

    @property
    def num_chunks(self) -> int:
        return -(-self.num_frames // self.chunk_frames)

    @property
    def segments_per_chunk(self) -> int:
        return self.chunk_frames * self.hop // self.segment_length if self.segment_length else 0

    def frame_slice(self, chunk: int) -> slice:
        return slice(chunk * self.chunk_frames, min((chunk + 1) * self.chunk_frames, self.num_frames))

    def segment_slice(self, chunk: int) -> slice:
        n = self.segments_per_chunk
        return slice(min(chunk * n, self.num_segments), min((chunk + 1) * n, self.num_segments))


# ---------------------------------------------------------------------------------------
# one coding module
# ---------------------------------------------------------------------------------------
def _autocast(x: torch.Tensor, dtype: torch.dtype | None):
    """Autocast to ``dtype`` on ``x``'s device, or a no-op context when ``dtype`` is None."""
    return torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def _active_autocast(x: torch.Tensor) -> torch.dtype | None:
    """The autocast dtype in effect for ``x``'s device (the trainer's ``amp``), or None."""
    dev = x.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None


@dataclass
class ModuleOutput:
    """Reconstruction ``(N, S)`` of one module, its real-valued code (``dh`` with differential
    coding) and the quantizer output (None when it ran unquantized)."""

    recon: torch.Tensor
    code: torch.Tensor
    quant: QuantizerOutput | None


class CodingModule(nn.Module):
    """Component autoencoder + softmax quantizer of its code (zhen2019 Fig. 1, eq. 2).

    With ``differential`` the quantized scalars are ``dh_i = h_i - h_{i-1}`` (``h_{-1} = 0``,
    zhen2020 §3.2) and the decoder receives the quantized differences as its input code; it
    learns the inverse mapping itself, so quantization errors do not accumulate the way they
    would through an explicit running sum (the paper does not say which it does).

    ``code_scale`` (``g``) quantizes the code on the centroids stretched by ``g``: the symbol is
    the nearest centroid of ``h / g`` and the decoder receives ``g`` times its value.  ``g > 1``
    coarsens the grid (fewer bits), ``g < 1`` refines it; 1 is the trained quantizer.  It is
    the rate trim :func:`neurocodec.train.rate_trim.trim_code_scale` sets at export (a step-size
    knob of a scalar quantizer, not in the papers).
    """

    def __init__(self, ae_config: AutoencoderConfig, num_centroids: int, differential: bool,
                 train_output: str = "soft", code_scale: float = 1.0) -> None:
        super().__init__()
        self.code_scale = float(code_scale)
        self.autoencoder = ComponentAutoencoder(ae_config)
        spacing = 2.0 / (num_centroids - 1)
        self.quantizer = SoftToHardQuantizer(num_centroids, (-1.0, 1.0), train_output=train_output, scale=spacing)
        self.differential = bool(differential)

    @property
    def code_length(self) -> int:
        return self.autoencoder.code_length

    def code(self, frames: torch.Tensor, amp_dtype: torch.dtype | None = None) -> torch.Tensor:
        with _autocast(frames, amp_dtype):
            h = self.autoencoder.encode(frames)
        h = h.float()
        if self.differential:
            h = h - F.pad(h, (1, 0))[:, :-1]
        return h

    def forward(self, frames: torch.Tensor, alpha: float, hard: bool | None = None,
                amp_dtype: torch.dtype | None = None, quantize: bool = True) -> ModuleOutput:
        """Code, quantize and decode ``frames`` (N, S).  ``amp_dtype`` (training only) runs the
        encoder and decoder convolutions under autocast; the code, the quantizer and the
        reconstruction stay float32.  ``quantize=False`` (unquantized pre-training) feeds the
        real-valued code to the decoder; ``quant`` is then None."""
        code = self.code(frames, amp_dtype)
        q = self.quantizer(code / self.code_scale, alpha, hard) if quantize else None
        with _autocast(frames, amp_dtype):
            recon = self.autoencoder.decode(q.output * self.code_scale if q is not None else code)
        return ModuleOutput(recon=recon[:, 0, :].float(), code=code, quant=q)

    @torch.no_grad()
    def encode_indices(self, frames: torch.Tensor, step: float = 1.0) -> torch.Tensor:
        """Hard symbols ``(N, code_length)`` of frames ``(N, S)``, the grid stretched by a
        further factor ``step`` (file-level rate control; 1 = the module's own step)."""
        return self.quantize_code(self.code(frames), step)

    @torch.no_grad()
    def quantize_code(self, code: torch.Tensor, step: float = 1.0) -> torch.Tensor:
        """Hard symbols of a code computed by :meth:`code` (see :meth:`encode_indices`)."""
        return self.quantizer.quantize_indices(code / (self.code_scale * step))

    @torch.no_grad()
    def decode_indices(self, indices: torch.Tensor, step: float = 1.0) -> torch.Tensor:
        """Frames ``(N, S)`` from symbols ``(N, code_length)`` quantized with ``step``."""
        return self.autoencoder.decode(self.quantizer.dequantize(indices) * (self.code_scale * step))[:, 0, :]


# ---------------------------------------------------------------------------------------
# training schedule and loss
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingPhase:
    """One phase of zhen2019 §2.2.1's two-round training.

    ``active_modules`` modules run in ``forward``; those in ``train_modules`` (0-based) are
    trained, the others are frozen and hard-quantized; ``train_lpc`` trains the LSP centroids
    (CQ).  ``quantize=False`` (``pretrain-i``) runs the trained modules (and the LSPs)
    unquantized in training; ``kmeans`` sets the trained modules' centroids by k-means on their
    codes at the phase's first step.  ``trainable`` lists the parameter-name prefixes of the
    phase, ``steps`` its share of the step budget and ``lr_scale`` the factor of the recipe's
    ``train.lr`` per prefix (the fields the trainer reads; ``lr`` stays None so that
    ``train.lr`` always applies).
    """

    name: str
    active_modules: int
    train_modules: tuple[int, ...]
    train_lpc: bool
    lr_factor: float = 1.0
    steps: int = 0
    epochs: int | None = None
    trainable: tuple[str, ...] = ()
    quantize: bool = True
    kmeans: bool = False
    lr: None = None

    @property
    def lr_scale(self) -> tuple[tuple[str, float], ...]:
        return tuple((p, self.lr_factor) for p in self.trainable)


@dataclass
class PreparedChannel:
    """Encoder front end of one channel: float32 ``gain``, LSP symbols (segments, order) or
    None, and the frames (F, S) float32 that the cascade codes."""

    gain: np.float32
    lsp_indices: np.ndarray | None
    frames: np.ndarray


@dataclass
class LossOutput:
    """Scalar objective ``total``, namespaced logging ``terms`` and the forward ``result``."""

    total: torch.Tensor
    terms: dict[str, Any] = field(default_factory=dict)
    result: ForwardResult | None = None


class RateSteer(nn.Module):
    """The entropy weight ``lambda_4`` steered toward the rate target between evaluations
    (:class:`CascadeTraining` ``rate_control="steer"``; the authors' code adjusts it once per
    epoch).  Its state is buffers, so a training checkpoint resumes it exactly; exported
    weights leave it out (:meth:`CascadeCodec.save_pretrained`)."""

    def __init__(self, initial: float) -> None:
        super().__init__()
        self.register_buffer("weight", torch.tensor(float(initial), dtype=torch.float64))
        self.register_buffer("rate_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def reset(self, weight: float) -> None:
        self.weight.fill_(float(weight))
        self.rate_sum.zero_()
        self.count.zero_()

    def observe(self, kbps: float, target: float, every: int, factor: float, tolerance: float) -> float | None:
        """Record one step's estimated rate; after ``every`` steps compare their mean with
        ``target`` and multiply or divide the weight by ``factor``.  Returns the mean when it
        decided, else None."""
        self.rate_sum += float(kbps)
        self.count += 1
        if int(self.count) < every:
            return None
        mean = float(self.rate_sum) / int(self.count)
        if mean > target * (1.0 + tolerance):
            self.weight *= factor
        elif mean < target * (1.0 - tolerance):
            self.weight /= factor
        self.rate_sum.zero_()
        self.count.zero_()
        return mean


def _mel_spaced_lsp_levels(n: int, lo_hz: float, hi_hz: float, sample_rate: int) -> np.ndarray:
    mels = np.linspace(float(hz_to_mel(lo_hz, htk=True)), float(hz_to_mel(hi_hz, htk=True)), n)
    return 2.0 * np.pi * mel_to_hz(mels, htk=True) / sample_rate


# ---------------------------------------------------------------------------------------
# the codec
# ---------------------------------------------------------------------------------------
class CascadeCodec(nn.Module, CodecModel):
    """Base of :class:`~neurocodec.codecs.cmrl.CmrlCodec` and :class:`~neurocodec.codecs.cq.CqCodec`."""

    config_class: ClassVar[type] = CascadeConfig
    codec_version = 1

    def __init__(self, config: CascadeConfig | None = None) -> None:
        nn.Module.__init__(self)
        cfg = config if config is not None else self.config_class()
        if not isinstance(cfg, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(cfg).__name__}")
        self.config = cfg
        self.sample_rate = cfg.sample_rate
        self.bitrates = BitrateSpec(default=cfg.bitrate_kbps, choices=(cfg.bitrate_kbps,))
        self.coding_modules = nn.ModuleList(
            CodingModule(m, cfg.num_centroids, cfg.differential, cfg.training.train_output,
                         cfg.code_scale if i == 0 else 1.0)
            for i, m in enumerate(cfg.modules))
        for m in self.coding_modules:  # training only: hard decisions do not depend on it
            m.quantizer.relative_scale = cfg.training.relative_alpha
        if cfg.lpc is not None:
            lp = cfg.lpc
            levels = _mel_spaced_lsp_levels(lp.num_centroids, *lp.lsp_levels_hz, cfg.sample_rate)
            spacing = float(levels[-1] - levels[0]) / (lp.num_centroids - 1)
            self.lsp_quantizer = SoftToHardQuantizer(lp.num_centroids, centroids=levels, trainable=lp.trainable,
                                                     train_output=cfg.training.train_output, scale=spacing)
        else:
            self.lsp_quantizer = None
        self.entropy_tables = nn.ModuleDict(
            {name: EntropyTable(self.quantizer(name).num_centroids) for name in self.quantizer_names})
        self.register_buffer("ola_window", torch.tensor(lpcdsp.overlap_add_window(cfg.frame_length, cfg.overlap),
                                                        dtype=torch.float32), persistent=False)
        self.alpha = float(cfg.training.alpha)
        self.rate_steer = RateSteer(cfg.training.loss.entropy)
        self.phase_start_step = 0  # global step where the current phase began (set by the trainer)
        self._phase = self._phase_named("finetune")
        self._mel: nn.ModuleList | None = None
        self._trained = False

    # -- identity ---------------------------------------------------------------------
    @property
    def quantizer_names(self) -> list[str]:
        """Quantizers in bitstream order: ``lsp`` (with LPC), then ``module1``, ``module2``..."""
        names = ["lsp"] if self.config.lpc is not None else []
        return names + [f"module{i + 1}" for i in range(len(self.coding_modules))]

    def quantizer(self, name: str) -> SoftToHardQuantizer:
        if name == "lsp" and self.lsp_quantizer is not None:
            return self.lsp_quantizer
        if name.startswith("module"):
            i = int(name[6:]) - 1
            if 0 <= i < len(self.coding_modules):
                return self.coding_modules[i].quantizer
        raise KeyError(f"no quantizer named {name!r} (have {', '.join(self.quantizer_names)})")

    def symbols_per_second(self, name: str) -> float:
        """Symbols of quantizer ``name`` per second of audio (for the rate estimate)."""
        cfg = self.config
        if name == "lsp":
            return cfg.lpc.order * cfg.sample_rate / cfg.lpc.segment_length
        return cfg.modules[int(name[6:]) - 1].code_length * cfg.sample_rate / cfg.hop

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def has_trained_weights(self) -> bool:
        return self._trained

    def weights_digest(self) -> bytes:
        h = hashlib.sha256()
        for name, t in sorted(self.state_dict().items()):
            if name.startswith("rate_steer."):  # training state
                continue
            t = t.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
            h.update(t.numpy().tobytes())
        return h.digest()

    def config_dict(self) -> dict[str, Any]:
        """The config in the stream header's hash: what defines the bitstream, without the
        training settings (``training``); an untrimmed ``code_scale`` (1) is left out so
        that configs written before the trim existed keep their hash."""
        d = asdict(self.config)
        del d["training"]
        if d.get("code_scale") == 1.0:
            del d["code_scale"]
        if not d.get("file_rate_control"):
            d.pop("file_rate_control", None)
        return d

    def set_code_scale(self, scale: float) -> None:
        """Quantize the first module's code on its centroids times ``scale`` from now on (the
        config records it, so :meth:`save_pretrained` keeps it; see :class:`CodingModule`).
        Only module 1, which carries most of the rate and whose symbols spread over many
        centroids, so that its rate moves smoothly with the step: a later module codes a small
        residual whose symbols crowd around one centroid, and moving its grid sends whole
        clusters across a decision boundary (CMRL 15.85: module 2 went 0.16 -> 0.83 -> 0.36
        bit/symbol for steps 1, 0.92, 0.78).  The fitted entropy tables describe the old
        symbols: refit them afterwards."""
        self.config = replace(self.config, code_scale=float(scale))
        self.coding_modules[0].code_scale = self.config.code_scale

    def set_file_rate_control(self, on: bool) -> bool:
        """Switch the file-level rate control of :meth:`compress` on or off (recorded in the
        config); returns the previous setting."""
        was = self.config.file_rate_control
        self.config = replace(self.config, file_rate_control=bool(on))
        return was

    def geometry(self, num_samples: int) -> Geometry:
        return Geometry.of(self.config, num_samples)

    # -- training schedule ------------------------------------------------------------
    def _phase_named(self, name: str) -> TrainingPhase:
        for ph in self.training_phases():
            if ph.name == name:
                return ph
        raise UserError(f"unknown training phase {name!r} "
                        f"(choose one of {', '.join(p.name for p in self.training_phases())})")

    def training_phases(self) -> list[TrainingPhase]:
        """[pretrain-i,] greedy-i for every module i (30 epochs each in both papers; the
        authors' code pre-trains each module unquantized first), then finetune (until the
        entropy reaches the target; no epoch count)."""
        cfg, tr = self.config, self.config.training
        n = len(cfg.modules)
        lpc_trainable = cfg.lpc is not None and cfg.lpc.trainable
        out = []
        for i in range(n):
            prefixes = (f"coding_modules.{i}.",) + (("lsp_quantizer.",) if lpc_trainable and i == 0 else ())
            if tr.pretrain_share > 0:
                # the centroids do not train unquantized: only the autoencoder
                out.append(TrainingPhase(f"pretrain-{i + 1}", i + 1, (i,), False, tr.pretrain_lr_factor,
                                         trainable=(f"coding_modules.{i}.autoencoder.",), quantize=False))
            out.append(TrainingPhase(f"greedy-{i + 1}", i + 1, (i,), lpc_trainable and i == 0,
                                     tr.greedy_lr_factors[i], epochs=30, trainable=prefixes,
                                     kmeans=tr.pretrain_share > 0 and tr.kmeans_init))
        prefixes = tuple(f"coding_modules.{i}." for i in range(n)) + (("lsp_quantizer.",) if lpc_trainable else ())
        out.append(TrainingPhase("finetune", n, tuple(range(n)), lpc_trainable, tr.finetune_lr_factor,
                                 epochs=None, trainable=prefixes))
        return out

    def phases(self, total_steps: int) -> list[TrainingPhase]:
        """The schedule on a step budget (trainer protocol): equal shares per module and for
        fine-tuning, the remainder to fine-tuning (the papers give epochs, not steps); a
        module's share is split ``pretrain_share`` : rest between its two phases."""
        plist = self.training_phases()
        n = len(self.config.modules)
        share = int(total_steps) // (n + 1)
        pre = int(round(share * self.config.training.pretrain_share))
        out = []
        for p in plist[:-1]:
            if p.name.startswith("pretrain-"):
                out.append(replace(p, steps=pre))
            else:
                out.append(replace(p, steps=share - pre if self.config.training.pretrain_share > 0 else share))
        out.append(replace(plist[-1], steps=int(total_steps) - sum(p.steps for p in out)))
        return out

    @property
    def phase(self) -> TrainingPhase:
        return self._phase

    def set_phase(self, phase: str | TrainingPhase) -> None:
        """Select the phase: which modules run and which parameters require gradients."""
        ph = self._phase_named(phase if isinstance(phase, str) else phase.name)
        for i, m in enumerate(self.coding_modules):
            m.requires_grad_(i in ph.train_modules)
        if self.lsp_quantizer is not None:
            self.lsp_quantizer.requires_grad_(ph.train_lpc)
        self._phase = ph

    # -- forward ------------------------------------------------------------------------
    def _check_batch(self, x: Any) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise AudioError("forward expects a torch tensor (batch, channels, samples)")
        if x.dim() != 3 or x.shape[1] < 1 or x.shape[-1] < 1:
            raise AudioError(f"forward expects audio shaped (batch, channels, samples), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise AudioError(f"forward expects floating-point audio, got {x.dtype}")
        return x

    def _lpc_forward(self, s_seg: torch.Tensor, geo: Geometry, train: bool,
                     quantize: bool = True) -> tuple[torch.Tensor, QuantizerOutput]:
        """Quantized LPC filters (B, nseg, p+1) in float64 and the LSP quantizer output
        (``quantize=False``, pre-training: the LSPs are used as they are; the quantizer output
        is still computed for the statistics)."""
        lp = self.config.lpc
        with torch.no_grad():
            frames = lpcdsp.analysis_frames(s_seg.detach().cpu().double().numpy(), geo.num_segments,
                                            lp.segment_length, lp.analysis_length)
            a = lpcdsp.lpc_from_frames(frames, lp.order, None, self.config.sample_rate, lp.lag_window_hz,
                                       lp.white_noise)
            lsp = torch.as_tensor(lpcdsp.lpc_to_lsp(a), dtype=torch.float32, device=s_seg.device)
        if train:
            q = self.lsp_quantizer(lsp, self.alpha)
        else:
            with torch.no_grad():
                q = self.lsp_quantizer(lsp, self.alpha, hard=True)
        gap = 2.0 * math.pi * lp.lsp_min_gap_hz / self.config.sample_rate
        w = lpcdsp.stabilize_lsp_torch((q.output if quantize else lsp).double(), gap)
        a_q = lpcdsp.lsp_to_lpc_torch(w)
        with torch.no_grad():
            f = torch.as_tensor(lpcdsp.stability_factors(a_q.detach().cpu().numpy()), device=a_q.device)
        powers = torch.arange(a_q.shape[-1], device=a_q.device, dtype=a_q.dtype)
        return a_q * f[..., None].to(a_q.dtype) ** powers, q

    def _overlap_add(self, frames: torch.Tensor, geo: Geometry) -> torch.Tensor:
        """Windowed overlap-add of (B, F, S) frames -> (B, F*hop + overlap)."""
        B = frames.shape[0]
        w = self.ola_window.to(frames.dtype)
        length = geo.num_frames * geo.hop + geo.overlap
        out = F.fold((frames * w).transpose(1, 2), output_size=(1, length),
                     kernel_size=(1, geo.frame_length), stride=(1, geo.hop))
        return out.reshape(B, length)

    def forward(self, x: torch.Tensor) -> ForwardResult:
        """Differentiable coding of ``x`` (B, C, T) in the current phase (channels are coded
        independently: they are folded into the batch, so ``extras`` is per (B*C) item).

        ``audio`` (B, C, T) is the reconstruction, ``bits`` (B,) the entropy estimate (sum over
        the quantizers that run of ``E * symbols``; ``E`` is the entropy of the batch's average
        soft assignment, so every item gets an equal share of the batch's bits).  ``extras`` holds ``indices`` and
        ``quantizers`` (per quantizer name), ``losses`` (penalties and entropies),
        ``module_outputs`` (:class:`ModuleOutput` list), ``frames`` (the coded frames
        ``(B*F, S)``), ``residual`` (``frames`` minus the sum of the module outputs),
        ``normalized_target`` / ``normalized_output`` (B, T) on which the loss is computed,
        ``target`` (B, 1, T, in input units), ``gain`` (B,) and ``estimated_kbps``.
        """
        x = self._check_batch(x)
        B, C, T = x.shape
        amp_dtype = _active_autocast(x)
        # Under the trainer's autocast only the autoencoders run in low precision: the LPC
        # analysis and synthesis, the quantizers and the overlap-add stay in full precision.
        with torch.autocast(x.device.type, enabled=False):
            res = self._forward(x.reshape(B * C, 1, T), amp_dtype)
        if C == 1:
            return res
        return ForwardResult(audio=res.audio.reshape(B, C, T), bits=res.bits.reshape(B, C).sum(1), extras=res.extras)

    def _forward(self, x: torch.Tensor, amp_dtype: torch.dtype | None) -> ForwardResult:
        cfg = self.config
        ph = self._phase
        B, _, T = x.shape
        geo = self.geometry(T)
        xs = x[:, 0, :]
        if cfg.normalize:
            g = xs.detach().pow(2).mean(-1).sqrt().clamp_min(GAIN_FLOOR)
        else:
            g = torch.ones(B, dtype=xs.dtype, device=xs.device)
        xn = xs / g[:, None]
        quants: dict[str, QuantizerOutput] = {}
        o, P = cfg.overlap, geo.padded_length
        if cfg.lpc is not None:
            lp = cfg.lpc
            y_ref = lpcdsp.highpass_torch(xn.double(), cfg.sample_rate, lp.highpass_hz)
            s = lpcdsp.preemphasis_torch(y_ref, lp.preemphasis)
            nL = geo.num_segments * geo.segment_length
            s_seg = F.pad(s, (o, P - o - T))[:, :nL]
            a, quants["lsp"] = self._lpc_forward(s_seg, geo, ph.train_lpc and lp.trainable,
                                                 quantize=ph.quantize or not self.training)
            e = lpcdsp.lpc_residual_torch(s_seg, a, lp.segment_length, lp.subframe_length)
            coded = F.pad(e, (0, P - nL)).to(xs.dtype)
            y_ref = y_ref.to(xs.dtype)
        else:
            y_ref = xn
            coded = F.pad(xn, (o, P - o - T))
        frames = coded[:, : geo.num_frames * geo.hop + o].unfold(-1, geo.frame_length, geo.hop)
        flat = frames.reshape(B * geo.num_frames, geo.frame_length)
        residual = flat
        total = torch.zeros_like(flat)
        outputs: list[ModuleOutput] = []
        for i in range(ph.active_modules):
            m = self.coding_modules[i]
            if i in ph.train_modules:
                # unquantized pre-training runs the trained module without its quantizer in
                # training mode; eval mode (validation, reconstruct) is always the hard path
                out = m(residual, self.alpha, amp_dtype=amp_dtype, quantize=ph.quantize or not self.training)
            else:
                with torch.no_grad():
                    out = m(residual, self.alpha, hard=True, amp_dtype=amp_dtype)
            outputs.append(out)
            if out.quant is not None:
                quants[f"module{i + 1}"] = out.quant
            total = total + out.recon
            residual = residual - out.recon
        rec = self._overlap_add(total.reshape(B, geo.num_frames, geo.frame_length), geo)
        if cfg.lpc is not None:
            lp = cfg.lpc
            nL = geo.num_segments * geo.segment_length
            rec = F.pad(rec, (0, max(0, nL - rec.shape[-1])))[:, :nL].double()
            s_hat = lpcdsp.lpc_synthesis_torch(rec, a, lp.segment_length)
            y_hat = lpcdsp.deemphasis_torch(s_hat, lp.preemphasis)[:, o:o + T].to(xs.dtype)
        else:
            y_hat = rec[:, o:o + T]
        audio = (y_hat * g[:, None])[:, None, :]
        bits = sum((q.bits for q in quants.values()), torch.zeros((), dtype=xs.dtype, device=xs.device))
        bits = bits.expand(B) / B
        losses = {}
        for name, q in quants.items():
            losses[f"quantization/{name}"] = q.penalty
            losses[f"entropy/{name}"] = q.entropy_bits
        extras = {
            "indices": {name: q.indices for name, q in quants.items()},
            "quantizers": quants,
            "losses": losses,
            "module_outputs": outputs,
            "frames": flat,
            "residual": residual,
            "normalized_target": y_ref,
            "normalized_output": y_hat,
            "target": (y_ref * g[:, None])[:, None, :],
            "gain": g,
            "estimated_kbps": self.estimated_kbps(quants),
        }
        return ForwardResult(audio=audio, bits=bits, extras=extras)

    def estimated_kbps(self, quants: Mapping[str, QuantizerOutput]) -> torch.Tensor:
        """Bitrate implied by the soft-assignment entropies: ``sum_q E_q * symbols_q / s``."""
        total = None
        for name, q in quants.items():
            v = q.entropy_bits * self.symbols_per_second(name) / 1000.0
            total = v if total is None else total + v
        return total if total is not None else torch.zeros(())

    # -- loss and trainer hooks ---------------------------------------------------------
    def _mel_loss(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        lw = self.config.training.loss
        if self._mel is None:
            self._mel = nn.ModuleList(
                MelSpectrogram(self.config.sample_rate, lw.mel_n_fft, lw.mel_hop, n_mels=b) for b in lw.mel_bands)
            self._mel.to(y.device)
        terms = [F.mse_loss(m(y_hat), m(y)) for m in self._mel]
        return torch.stack(terms).mean()

    def loss(self, batch: torch.Tensor) -> LossOutput:
        """zhen2020 eq. 2 on ``batch`` (B, 1, T): ``time * T + mel * F + quantization * Q +
        R``; Q is summed over the quantizers trained in this phase.

        The rate term ``R`` (:class:`CascadeTraining` ``rate_control``): ``"steer"``, the
        papers' ``lambda_4 * E`` with E the entropies (bits/symbol) summed over the trained
        quantizers and ``lambda_4`` steered between evaluations (:class:`RateSteer`, updated
        in :meth:`training_step`); ``"hinge"``, ``rate_penalty * max(0, kbps - rate_margin *
        target)`` on the entropy-estimated bitrate of the modules that run, plus
        ``rate_lower_penalty`` per kbps below it; ``"fixed"``, ``loss.entropy * E``.  In
        unquantized pre-training there is no Q and no R.  (Two per-step lambda_4 controllers,
        x1.01 per step and proportional, overshot by 2x and collapsed the CQ residual code.)"""
        res = self(batch)
        with torch.autocast(batch.device.type, enabled=False):  # the loss in full precision
            return self._loss_terms(res)

    def _loss_terms(self, res: ForwardResult) -> LossOutput:
        tr = self.config.training
        lw = tr.loss
        ex = res.extras
        y, y_hat = ex["normalized_target"], ex["normalized_output"]
        time_mse = F.mse_loss(y_hat, y)
        mel = self._mel_loss(y_hat, y) if lw.mel > 0 else torch.zeros((), device=y.device)
        trained = [f"module{i + 1}" for i in self._phase.train_modules if f"module{i + 1}" in ex["quantizers"]]
        if self._phase.train_lpc and "lsp" in ex["quantizers"]:
            trained.append("lsp")
        zero = torch.zeros((), device=y.device)
        penalty = sum((ex["quantizers"][n].penalty for n in trained), zero)
        entropy = sum((ex["quantizers"][n].entropy_bits for n in trained), zero)
        target = self.target_kbps_for_phase()
        if not trained:
            rate = zero
        elif tr.rate_control == "hinge":
            gap = ex["estimated_kbps"] - tr.rate_margin * target
            rate = tr.rate_penalty * F.relu(gap) + tr.rate_lower_penalty * F.relu(-gap)
        elif tr.rate_control == "steer":
            rate = float(self.rate_steer.weight) * entropy
        else:
            rate = lw.entropy * entropy
        total = lw.time * time_mse + lw.mel * mel + lw.quantization * penalty + rate
        with torch.no_grad():
            err = (y - y_hat).pow(2).sum()
            snr = 10.0 * torch.log10(y.pow(2).sum().clamp_min(1e-20) / err.clamp_min(1e-20))
        terms: dict[str, Any] = {
            "loss/total": total.detach(), "loss/time_mse": time_mse.detach(), "loss/mel": mel.detach(),
            "loss/quantization": penalty.detach(), "loss/entropy": entropy.detach(), "loss/rate": rate.detach(),
            "rate/estimated_kbps": ex["estimated_kbps"].detach(), "rate/target_kbps": target,
            "quant/alpha": self.alpha, "metrics/snr_db": snr, "rate/entropy_weight": float(self.rate_steer.weight),
        }
        for name, q in ex["quantizers"].items():
            terms[f"rate/entropy_bits/{name}"] = q.entropy_bits.detach()
            terms[f"quant/penalty/{name}"] = q.penalty.detach()
        return LossOutput(total=total, terms=terms, result=res)

    def training_step(self, batch: torch.Tensor, step: int) -> LossOutput:
        """Trainer hook: at the first step of a ``kmeans`` phase set the trained modules'
        centroids by k-means on their codes of this batch (:meth:`init_centroids`) and restart
        the entropy weight; anneal ``alpha`` from the start of the current phase (when
        ``alpha_anneal_steps``; the trainer sets ``phase_start_step``); the loss; with
        ``rate_control="steer"`` feed the step's rate estimate to :class:`RateSteer`."""
        tr = self.config.training
        local = max(step - self.phase_start_step, 0)
        if step == self.phase_start_step and self._phase.quantize:
            if self._phase.kmeans:
                self.init_centroids(batch)
            if tr.rate_control == "steer":
                self.rate_steer.reset(tr.loss.entropy)
        if tr.alpha_anneal_steps > 0:
            # Each phase trains a freshly initialised module (greedy CMRL rounds) or all of them
            # together, so the soft-to-hard annealing restarts at the phase's first step.
            self.alpha = anneal_alpha(local / tr.alpha_anneal_steps, tr.alpha_start, tr.alpha)
        out = self.loss(batch)
        if tr.rate_control == "steer" and self._phase.quantize:
            self.rate_steer.observe(float(out.terms["rate/estimated_kbps"]), tr.rate_margin * self.target_kbps_for_phase(),
                                    tr.steer_every, tr.steer_factor, tr.steer_tolerance)
        return out

    @torch.no_grad()
    def init_centroids(self, batch: torch.Tensor) -> None:
        """Centroids of the modules trained in the current phase from k-means on the codes
        their encoders give for ``batch`` (B, 1, T) (module ``i`` sees the residual of the
        hard-quantized modules before it), as Kankanahalli 2018 initialises its quantization
        bins when quantization switches on after unquantized pre-training."""
        was = self.training
        self.eval()
        try:
            res = self(batch)  # eval mode: every module hard-quantized; codes are pre-quantization
        finally:
            self.train(was)
        frames = res.extras["frames"]
        residual = frames
        bits = None
        if self.config.training.centroid_init == "entropy":
            # the phase's target less what the frozen modules spend, per symbol of the trained ones
            seconds = frames.shape[0] * self.config.hop / self.sample_rate
            frozen = sum(float(res.extras["quantizers"][n].entropy_bits) * res.extras["quantizers"][n].num_symbols
                         for n in res.extras["quantizers"]
                         if n == "lsp" or int(n[6:]) - 1 not in self._phase.train_modules)
            symbols = sum(self.symbols_per_second(f"module{i + 1}") for i in self._phase.train_modules) * seconds
            target = self.config.training.rate_margin * self.target_kbps_for_phase()
            bits = max((target * 1000 * seconds - frozen) / symbols, 0.1)
        for i, out in enumerate(res.extras["module_outputs"]):
            if i in self._phase.train_modules:
                m = self.coding_modules[i]
                code = m.code(residual) / m.code_scale
                m.quantizer.init_from_data(code, bits)
            residual = residual - out.recon

    def target_kbps_for_phase(self) -> float:
        """Rate target of the modules running in the current phase: the codec target scaled
        by their share of the symbol rate (full target in fine-tuning), or
        ``training.first_module_share`` of it when only module 1 runs."""
        share = self.config.training.first_module_share
        if share > 0 and self._phase.active_modules == 1 and len(self.coding_modules) > 1:
            return self.config.bitrate_kbps * share
        names = [n for n in self.quantizer_names if n == "lsp" or int(n[6:]) <= self._phase.active_modules]
        share = sum(self.symbols_per_second(n) for n in names) / sum(self.symbols_per_second(n)
                                                                       for n in self.quantizer_names)
        return self.config.bitrate_kbps * share

    @torch.no_grad()
    def validation_step(self, batch: torch.Tensor) -> dict[str, float]:
        """Trainer hook: loss terms with hard quantization (eval mode), as floats."""
        was = self.training
        self.eval()
        try:
            out = self.loss(batch)
        finally:
            self.train(was)
        return {k: float(v) for k, v in out.terms.items()}

    @torch.no_grad()
    def reconstruct(self, batch: torch.Tensor) -> torch.Tensor:
        """Trainer hook: hard-quantized reconstruction (B, 1, T) of all modules of the phase."""
        was = self.training
        self.eval()
        try:
            return self(batch).audio
        finally:
            self.train(was)

    # -- symbol statistics and entropy tables -------------------------------------------
    def count_symbols(self, indices: Mapping[str, Any]) -> dict[str, SymbolCounts]:
        """Pair/single counts of symbols per quantizer (arrays shaped (..., units_len))."""
        return {name: SymbolCounts.from_indices(v, self.quantizer(name).num_centroids) for name, v in indices.items()}

    @torch.no_grad()
    def analyze_symbols(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """The symbols :meth:`compress` codes for ``audio`` (C, T), all channels stacked:
        ``lsp`` (C * segments, order) and ``moduleI`` (C * frames, code_length)."""
        audio = self._check_audio(audio)
        geo = self.geometry(audio.shape[1])
        coder = _ChunkCoder(self, [self._prepare_channel(audio[c], geo) for c in range(audio.shape[0])], geo)
        per = [coder.symbols(c, k, 0) for c in range(audio.shape[0]) for k in range(geo.num_chunks)]
        return {name: np.concatenate([p[name] for p in per]) for name in self.quantizer_names}

    @torch.no_grad()
    def fit_entropy_coder(self, signals: Iterable[np.ndarray]) -> dict[str, Any]:
        """Export hook: gather the symbol statistics of ``signals`` ((C, T) float32 at the codec
        rate, normally the training files) and fit every quantizer's pair-Huffman and range
        tables (zhen2019 §2.3: the Huffman code is built from training-set statistics).
        Returns per-quantizer single-symbol and pair entropies (bits per symbol) and the total
        duration used."""
        was = self.training
        self.eval()
        try:
            totals = {name: SymbolCounts.zeros(self.quantizer(name).num_centroids) for name in self.quantizer_names}
            seconds = 0.0
            for audio in signals:
                counts = self.count_symbols(self.analyze_symbols(audio))
                totals = {name: totals[name] + counts[name] for name in totals}
                seconds += audio.shape[-1] / self.sample_rate
            if seconds <= 0:
                raise UserError("no audio to fit the entropy tables on")
            self.fit_entropy_tables(totals)
        finally:
            self.train(was)
        return {"seconds": seconds,
                "entropy_bits": {n: c.entropy_bits() for n, c in totals.items()},
                "pair_entropy_bits": {n: c.pair_entropy_bits() for n, c in totals.items()}}

    def fit_entropy_tables(self, symbol_counts: Mapping[str, SymbolCounts]) -> None:
        """Build the pair-Huffman and range tables of each named quantizer from training
        statistics (see :meth:`count_symbols`, :meth:`analyze_symbols`)."""
        for name, counts in symbol_counts.items():
            if name not in self.entropy_tables:
                raise UserError(f"no quantizer named {name!r} (have {', '.join(self.quantizer_names)})")
            self.entropy_tables[name].fit(counts)

    # -- compress / decompress ----------------------------------------------------------
    def _check_audio(self, audio: Any) -> np.ndarray:
        a = np.asarray(audio)
        if a.ndim != 2:
            raise AudioError(f"{self.codec_id} expects (channels, samples) audio, got shape {a.shape}")
        if a.dtype.kind != "f":
            raise AudioError(f"{self.codec_id} expects floating-point audio, got {a.dtype}")
        return validate(np.ascontiguousarray(a, dtype=np.float32))

    def _gain(self, x: np.ndarray) -> np.float32:
        if not self.config.normalize:
            return np.float32(1.0)
        rms = float(np.sqrt(np.mean(np.square(x.astype(np.float64)))))
        return np.float32(max(rms, GAIN_FLOOR))

    def _lpc_from_indices(self, idx: np.ndarray) -> np.ndarray:
        lp = self.config.lpc
        c = self.lsp_quantizer.centroids.detach().cpu().double().numpy()
        gap = 2.0 * math.pi * lp.lsp_min_gap_hz / self.config.sample_rate
        a = lpcdsp.lsp_to_lpc(lpcdsp.stabilize_lsp(c[idx], gap))
        return lpcdsp.bandwidth_expand(a, lpcdsp.stability_factors(a))

    def _prepare_channel(self, x: np.ndarray, geo: Geometry) -> PreparedChannel:
        """Encoder front end of one channel: gain, LSP symbols and the frames to code."""
        cfg = self.config
        g = self._gain(x)
        xn = x.astype(np.float64) / np.float64(g)
        o, T, P = cfg.overlap, geo.num_samples, geo.padded_length
        coded = np.zeros(P)
        lsp_idx = None
        if cfg.lpc is not None:
            lp = cfg.lpc
            s = lpcdsp.preemphasis(lpcdsp.highpass(xn, cfg.sample_rate, lp.highpass_hz), lp.preemphasis)
            nL = geo.num_segments * geo.segment_length
            s_pad = np.zeros(max(P, nL))
            s_pad[o:o + T] = s
            s_seg = s_pad[:nL]
            frames = lpcdsp.analysis_frames(s_seg, geo.num_segments, lp.segment_length, lp.analysis_length)
            a = lpcdsp.lpc_from_frames(frames, lp.order, None, cfg.sample_rate, lp.lag_window_hz, lp.white_noise)
            lsp = lpcdsp.lpc_to_lsp(a)
            c = self.lsp_quantizer.centroids.detach().cpu().double().numpy()
            lsp_idx = np.argmin((lsp[..., None] - c) ** 2, axis=-1).astype(np.int64)
            coded[:nL] = lpcdsp.lpc_residual(s_seg, self._lpc_from_indices(lsp_idx), lp.segment_length,
                                              lp.subframe_length)
        else:
            coded[o:o + T] = xn
        view = np.lib.stride_tricks.sliding_window_view(coded[: geo.num_frames * geo.hop + o], geo.frame_length)
        frames = np.ascontiguousarray(view[:: geo.hop], dtype=np.float32)
        return PreparedChannel(gain=g, lsp_indices=lsp_idx, frames=frames)

    def _synthesize_channel(self, frames: np.ndarray, lsp_idx: np.ndarray | None, gain: float,
                            geo: Geometry) -> np.ndarray:
        """Decoder back end of one channel: overlap-add of decoded frames (F, S), LPC
        synthesis and de-emphasis, gain; returns (T,) float32."""
        cfg = self.config
        o = cfg.overlap
        window = lpcdsp.overlap_add_window(cfg.frame_length, cfg.overlap)
        rec = np.zeros(max(geo.padded_length, geo.num_frames * geo.hop + o))
        for f in range(geo.num_frames):
            rec[f * geo.hop: f * geo.hop + geo.frame_length] += frames[f].astype(np.float64) * window
        if cfg.lpc is not None:
            lp = cfg.lpc
            nL = geo.num_segments * geo.segment_length
            s_hat = lpcdsp.lpc_synthesis(rec[:nL], self._lpc_from_indices(lsp_idx), lp.segment_length)
            rec = lpcdsp.deemphasis(s_hat, lp.preemphasis)
        return (rec[o:o + geo.num_samples] * np.float64(gain)).astype(np.float32)

    def num_chunks(self, num_channels: int, num_samples: int, bitrate_kbps: float) -> int:
        return self.geometry(int(num_samples)).num_chunks

    @torch.no_grad()
    def compress(self, audio: np.ndarray, bitrate_kbps: float | None = None, *,
                 payload_budget_bytes: int | None = None, **kwargs) -> EncodedAudio:
        """Entropy-code ``(channels, samples)`` float32 audio at 16 kHz (channels coded
        independently); one chunk per ``chunk_frames`` frames.  ``bitrate_kbps`` is the total
        over the channels (each at the operating point; :class:`CodecModel`); the real rate is
        ``8 * num_bytes / duration``.  With ``file_rate_control`` the chunks' ladder steps are
        chosen so that the payload fits ``payload_budget_bytes`` (what ``neurocodec.api`` leaves
        of ``bitrate x duration`` after the container; the payload alone gets ``bitrate x
        duration`` when None) (:mod:`neurocodec.codecs.cascade_rate`); without it every chunk
        uses the trained step."""
        audio = self._check_audio(audio)
        C, T = audio.shape
        kbps = self.validate_bitrate(bitrate_kbps, C)
        geo = self.geometry(T)
        coder = _ChunkCoder(self, [self._prepare_channel(audio[c], geo) for c in range(C)], geo)
        steps = [0] * geo.num_chunks
        if self.config.file_rate_control:
            budget = payload_budget_bytes
            if budget is None:
                budget = int(kbps * 1000.0 / 8.0 * T / self.sample_rate)
            steps = plan_rate_steps(coder.size, geo.num_chunks, int(budget))
        chunks = [coder.chunk(k, s) for k, s in enumerate(steps)]
        return EncodedAudio(chunks=chunks, bitrate_kbps=kbps, num_channels=C, num_samples=T)

    @torch.no_grad()
    def decompress(self, chunks: Sequence[bytes] | Iterable[bytes], num_channels: int,
                   num_samples: int, bitrate_kbps: float) -> np.ndarray:
        """Decode chunks into ``(num_channels, num_samples)`` float32 audio."""
        chunks = [bytes(c) for c in chunks]
        C, T = int(num_channels), int(num_samples)
        if C < 1 or T < 1:
            raise CorruptStreamError(f"invalid stream dimensions ({C} channels, {T} samples)")
        cfg = self.config
        geo = self.geometry(T)
        if len(chunks) != geo.num_chunks:
            raise CorruptStreamError(f"{self.codec_id} stream of {T} samples needs {geo.num_chunks} chunks, "
                                     f"got {len(chunks)}")
        recon = np.zeros((C, geo.num_frames, geo.frame_length), dtype=np.float32)
        lsp_idx = np.zeros((C, geo.num_segments, cfg.lpc.order if cfg.lpc else 0), dtype=np.int64)
        gains = None
        for k, data in enumerate(chunks):
            fs, ss = geo.frame_slice(k), geo.segment_slice(k)
            shapes = {}
            for name in self.quantizer_names:
                if name == "lsp":
                    shapes[name] = (ss.stop - ss.start, cfg.lpc.order)
                else:
                    shapes[name] = (fs.stop - fs.start, self.quantizer_code_length(name))
            content = decode_chunk(data, C, self.entropy_tables, self.quantizer_names, shapes)
            if gains is None:
                gains = content.gains
            elif not np.array_equal(gains, content.gains):
                raise CorruptStreamError("chunks disagree on the channel gains")
            step = rate_step_multiplier(content.rate_step)
            for c, sym in enumerate(content.symbols):
                if cfg.lpc is not None:
                    lsp_idx[c, ss] = sym["lsp"]
                total = None
                for i, m in enumerate(self.coding_modules):
                    part = m.decode_indices(torch.from_numpy(sym[f"module{i + 1}"]), step if i == 0 else 1.0)
                    total = part if total is None else total + part
                recon[c, fs] = total.numpy()
        out = np.empty((C, T), dtype=np.float32)
        for c in range(C):
            out[c] = self._synthesize_channel(recon[c], lsp_idx[c] if cfg.lpc is not None else None, gains[c], geo)
        return out

    def quantizer_code_length(self, name: str) -> int:
        """Symbols per coding unit of quantizer ``name`` (LPC order or module code length)."""
        if name == "lsp":
            return self.config.lpc.order
        return self.config.modules[int(name[6:]) - 1].code_length

    # -- checkpoints -------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> None:
        """Write weights, entropy tables and the config (JSON metadata) as one safetensors file."""
        from safetensors.torch import save

        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()
                 if not k.startswith("rate_steer.")}  # training state, not part of the model
        meta = {"format": _CHECKPOINT_FORMAT, "format_version": "1", "codec_id": self.codec_id,
                "config_class": type(self.config).__name__, "config": config_to_json(self.config)}
        atomic_write_bytes(path, save(state, metadata=meta))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "CascadeCodec":
        """Rebuild a codec from :meth:`save_pretrained` output; the checkpoint alone defines it."""
        p = Path(path)
        state, meta = read_weights(p, _CHECKPOINT_FORMAT, cls.codec_id, "cascade")
        model = cls(config_from_json(cls.config_class, meta["config"]))
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise WeightsError(f"{p} does not match its config: {exc}") from None
        check_state_match(p, [k for k in missing if not k.startswith("rate_steer.")], unexpected)
        model._trained = True
        model.eval()
        return model


class _ChunkCoder:
    """The symbols and chunk payloads of one signal at any ladder step, each payload computed
    once (:meth:`CascadeCodec.compress`; :meth:`CascadeCodec.analyze_symbols` at the trained step).

    Module 1's code of every chunk is computed once; a step re-quantizes it and runs the
    later modules on the new residual.  ``"best"`` codes both ways and keeps the shorter."""

    def __init__(self, model: CascadeCodec, prepared: list[PreparedChannel], geo: Geometry) -> None:
        self.model, self.prepared, self.geo = model, prepared, geo
        self.gains = np.array([p.gain for p in prepared], dtype=np.float32)
        self.frames = [torch.from_numpy(p.frames) for p in prepared]
        self.codes: dict[tuple[int, int], torch.Tensor] = {}
        self.payloads: dict[tuple[int, int], bytes] = {}

    def symbols(self, c: int, k: int, step: int) -> dict[str, np.ndarray]:
        """Symbols of every quantizer for channel ``c``, chunk ``k``, module 1 at ladder step
        ``step``: module ``i`` codes the residual of modules ``1..i-1`` (zhen2019 eq. 1)."""
        geo, modules = self.geo, self.model.coding_modules
        frames = self.frames[c][geo.frame_slice(k)]
        if (c, k) not in self.codes:
            self.codes[c, k] = modules[0].code(frames)
        mult = rate_step_multiplier(step)
        idx = modules[0].quantize_code(self.codes[c, k], mult)
        out = {"module1": idx.numpy().astype(np.int64)}
        if len(modules) > 1:
            r = frames - modules[0].decode_indices(idx, mult)
            for i, m in enumerate(modules[1:], start=2):
                idx = m.encode_indices(r)
                out[f"module{i}"] = idx.numpy().astype(np.int64)
                if i < len(modules):
                    r = r - m.decode_indices(idx)
        lsp = self.prepared[c].lsp_indices
        if lsp is not None:
            out["lsp"] = lsp[geo.segment_slice(k)]
        return out

    def chunk(self, k: int, step: int) -> bytes:
        """Payload of chunk ``k`` at ladder step ``step`` (all channels)."""
        key = (k, step)
        if key not in self.payloads:
            model = self.model
            per_ch = [self.symbols(c, k, step) for c in range(len(self.prepared))]
            cfg = model.config
            coders = CODERS if cfg.entropy_coder == "best" else (cfg.entropy_coder,)
            # "best": both coders, the shorter chunk is kept (its first byte names the coder)
            coded = [encode_chunk(ChunkContent(name, self.gains, per_ch, step), model.entropy_tables,
                                  model.quantizer_names) for name in coders]
            self.payloads[key] = min(coded, key=len)
        return self.payloads[key]

    def size(self, k: int, step: int) -> int:
        return len(self.chunk(k, step))
