"""Configuration of the cascade codecs (CMRL, CQ): what defines the bitstream
(:class:`CascadeConfig`, :class:`LpcConfig`, hashed into the stream header by
:meth:`~neurocodec.codecs.cascade.CascadeCodec.config_dict`) and how they are trained
(:class:`CascadeTraining`, :class:`LossWeights`, not hashed), with the JSON form stored in
checkpoints (:func:`config_to_json`, :func:`config_from_json`, which also reads the configs of
earlier versions)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from ..errors import WeightsError
from ..nn.cmrl_blocks import AutoencoderConfig
from .cascade_tables import CODERS

__all__ = ["GAIN_FLOOR", "LossWeights", "LpcConfig", "RATE_CONTROLS", "CascadeTraining", "CascadeConfig",
           "config_to_json", "config_from_json"]

#: smallest gain (RMS) used for normalisation; digital silence is coded with this gain
GAIN_FLOOR = 1e-5


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
    50 Hz for its ISPs) so that the synthesis filter is always stable.  ``residual_gain``
    multiplies the LPC residual before the modules code it (and divides their output before
    synthesis), so that the modules see about unit variance as zhen2019 §3.1's input
    normalisation intends: the residual of RMS-normalised corpus speech has RMS ~0.1
    (LPC-CMRL: 10; CQ keeps 1, as its weights were trained).
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
    residual_gain: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lsp_levels_hz", tuple(float(v) for v in self.lsp_levels_hz))
        if not (math.isfinite(self.residual_gain) and self.residual_gain > 0):
            raise ValueError("residual_gain must be a positive number")
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
    code_scale: float = 1.0  # the rate module's code is quantized on centroids * code_scale (export-time rate trim)
    rate_module: int = 1  # module (1-based) whose step code_scale and the file rate control's ladder scale
    ladder_tables: tuple[int, ...] = ()  # ladder steps with entropy tables of their own (file rate control)
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
        steps = tuple(sorted({int(k) for k in self.ladder_tables}))
        object.__setattr__(self, "ladder_tables", steps)
        if any(k == 0 or not -32 <= k < 32 for k in steps):
            raise ValueError("ladder_tables must be non-zero ladder steps in -32..31")
        if not 1 <= self.rate_module <= len(self.modules):
            raise ValueError(f"rate_module must name one of the {len(self.modules)} module(s) (1..{len(self.modules)})")

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
