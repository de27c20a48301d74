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

The cascade is split by what each part does; this module holds the codec (construction, the
differentiable signal path ``forward``, checkpoints) and re-exports the public names:

- :mod:`.cascade_config`: what defines the bitstream and how it is trained, JSON form;
- :mod:`.cascade_geometry`: frames, LPC segments and chunks of a signal;
- :mod:`.cascade_module`: one autoencoder and the quantizer of its code;
- :mod:`.cascade_training`: phases, loss, annealing, rate term (trainer hooks);
- :mod:`.cascade_coding`: ``compress`` / ``decompress`` (numpy front and back ends, chunks);
- :mod:`.cascade_tables`: entropy tables and the chunk payload format;
- :mod:`.cascade_rate`: the file-level rate control of ``compress``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..audio import atomic_write_bytes
from ..dsp import lpc as lpcdsp
from ..dsp.mel import hz_to_mel, mel_to_hz
from ..errors import AudioError, UserError, WeightsError
from ..quant.soft_to_hard import QuantizerOutput, SoftToHardQuantizer
from .base import BitrateSpec, CodecModel, ForwardResult
from .cascade_coding import CascadeCodingMixin, ChunkCoder, PreparedChannel
from .cascade_config import (GAIN_FLOOR, RATE_CONTROLS, CascadeConfig, CascadeTraining, LossWeights, LpcConfig,
                             config_from_json, config_to_json)
from .cascade_geometry import Geometry
from .cascade_module import CodingModule, ModuleOutput, _active_autocast
from .cascade_tables import EntropyTable, step_table_key
from .cascade_training import CascadeTrainingMixin, LossOutput, RateSteer, TrainingPhase
from .weights_file import (INT_DTYPES_KEY, check_state_match, compact_integers, read_weights, restore_integers,
                           state_digest)

# The cascade is a package of small modules; this one holds the codec itself (construction,
# the differentiable signal path, checkpoints) and re-exports the public names of the others.
__all__ = [
    "LossWeights", "LpcConfig", "CascadeTraining", "CascadeConfig", "RATE_CONTROLS", "Geometry", "ModuleOutput", "CodingModule",
    "TrainingPhase", "LossOutput", "CascadeCodec", "config_to_json", "config_from_json",
    "GAIN_FLOOR", "RateSteer", "PreparedChannel", "ChunkCoder",
]

_CHECKPOINT_FORMAT = "neurocodec-cascade"


def _mel_spaced_lsp_levels(n: int, lo_hz: float, hi_hz: float, sample_rate: int) -> np.ndarray:
    mels = np.linspace(float(hz_to_mel(lo_hz, htk=True)), float(hz_to_mel(hi_hz, htk=True)), n)
    return 2.0 * np.pi * mel_to_hz(mels, htk=True) / sample_rate


# ---------------------------------------------------------------------------------------
# the codec
# ---------------------------------------------------------------------------------------
class CascadeCodec(CascadeTrainingMixin, CascadeCodingMixin, nn.Module, CodecModel):
    """Base of :class:`~neurocodec.codecs.cmrl.CmrlCodec` and :class:`~neurocodec.codecs.cq.CqCodec`."""

    config_class: ClassVar[type] = CascadeConfig
    codec_version = 1
    #: state that ``neurocodec export`` fits rather than loads from a training checkpoint
    export_fitted_prefixes: ClassVar[tuple[str, ...]] = ("step_tables.",)

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
                         cfg.code_scale if i == cfg.rate_module - 1 else 1.0)
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
        self.step_tables = self._new_step_tables()
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
        return state_digest(self.state_dict(), lambda name: name.startswith("rate_steer.")).digest()  # training state

    def config_dict(self) -> dict[str, Any]:
        """The config in the stream header's hash: what defines the bitstream, without the
        training settings (``training``); an untrimmed ``code_scale`` (1) is left out so
        that configs written before the trim existed keep their hash."""
        d = asdict(self.config)
        del d["training"]
        if d.get("code_scale") == 1.0:
            del d["code_scale"]
        if d.get("rate_module") == 1:
            del d["rate_module"]  # configs written before it existed keep their hash
        if not d.get("file_rate_control"):
            d.pop("file_rate_control", None)
        if not d.get("ladder_tables"):
            d.pop("ladder_tables", None)
        if d.get("lpc") is not None and d["lpc"].get("residual_gain") == 1.0:
            del d["lpc"]["residual_gain"]  # configs written before it existed keep their hash
        return d

    def set_code_scale(self, scale: float) -> None:
        """Quantize the rate module's code (``config.rate_module``, module 1 unless
        :meth:`set_rate_module` chose another) on its centroids times ``scale`` from now on (the
        config records it, so :meth:`save_pretrained` keeps it; see :class:`CodingModule`).
        One module only, the one that carries most of the rate, whose symbols spread over many
        centroids so that its rate moves smoothly with the step: a module that codes a small
        residual has symbols crowding around one centroid, and moving its grid sends whole
        clusters across a decision boundary (CMRL 15.85: module 2 went 0.16 -> 0.83 -> 0.36
        bit/symbol for steps 1, 0.92, 0.78).  The fitted entropy tables describe the old
        symbols: refit them afterwards."""
        self.config = replace(self.config, code_scale=float(scale))
        self.coding_modules[self.config.rate_module - 1].code_scale = self.config.code_scale

    def set_rate_module(self, number: int) -> None:
        """Make module ``number`` (1-based) the one whose step ``code_scale`` and the file rate
        control turn; when that changes the module, the step restarts at 1 (the trained
        quantizer): refit the entropy tables afterwards if the old step was not 1."""
        number = int(number)
        if not 1 <= number <= len(self.coding_modules):
            raise UserError(f"rate module {number} does not exist ({self.codec_id} has modules "
                            f"1..{len(self.coding_modules)})")
        if number == self.config.rate_module:
            return
        self.coding_modules[self.config.rate_module - 1].code_scale = 1.0
        self.config = replace(self.config, rate_module=number, code_scale=1.0)
        self.step_tables = self._new_step_tables()

    def _new_step_tables(self) -> nn.ModuleDict:
        """Unfitted entropy tables of every step of ``config.ladder_tables``, for the quantizers
        whose symbols depend on the step (the rate module and the modules after it); keys
        ``step+4``, ``step-4``... (:meth:`tables_for_step`)."""
        names = [f"module{i}" for i in range(self.config.rate_module, len(self.coding_modules) + 1)]
        return nn.ModuleDict({
            step_table_key(k): nn.ModuleDict({n: EntropyTable(self.quantizer(n).num_centroids) for n in names})
            for k in self.config.ladder_tables})

    def tables_for_step(self, step: int) -> Mapping[str, EntropyTable]:
        """Entropy tables of a chunk coded at ladder step ``step``: a step of
        ``config.ladder_tables`` has tables of its own for the rate module and the modules after
        it (fitted at that step, :meth:`fit_entropy_coder`); every other step, and every other
        quantizer, uses the trained step's tables."""
        key = step_table_key(step)
        if step == 0 or key not in self.step_tables:
            return self.entropy_tables
        return {**self.entropy_tables, **self.step_tables[key]}

    def set_file_rate_control(self, on: bool) -> bool:
        """Switch the file-level rate control of :meth:`compress` on or off (recorded in the
        config); returns the previous setting."""
        was = self.config.file_rate_control
        self.config = replace(self.config, file_rate_control=bool(on))
        return was

    def geometry(self, num_samples: int) -> Geometry:
        return Geometry.of(self.config, num_samples)
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
            if lp.residual_gain != 1.0:
                e = e * lp.residual_gain
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
            if lp.residual_gain != 1.0:
                rec = rec / lp.residual_gain
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
    # -- checkpoints -------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> None:
        """Write weights, entropy tables and the config (JSON metadata) as one safetensors file."""
        from safetensors.torch import save

        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()
                 if not k.startswith("rate_steer.")}  # training state, not part of the model
        state, int_dtypes = compact_integers(state)  # entropy tables in their narrowest integer type
        meta = {"format": _CHECKPOINT_FORMAT, "format_version": "1", "codec_id": self.codec_id,
                "config_class": type(self.config).__name__, "config": config_to_json(self.config),
                INT_DTYPES_KEY: int_dtypes}
        atomic_write_bytes(path, save(state, metadata=meta))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "CascadeCodec":
        """Rebuild a codec from :meth:`save_pretrained` output; the checkpoint alone defines it."""
        p = Path(path)
        state, meta = read_weights(p, _CHECKPOINT_FORMAT, cls.codec_id, "cascade")
        state = restore_integers(state, meta)
        model = cls(config_from_json(cls.config_class, meta["config"]))
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise WeightsError(f"{p} does not match its config: {exc}") from None
        check_state_match(p, [k for k in missing if not k.startswith("rate_steer.")], unexpected)
        model._trained = True
        model.eval()
        return model
