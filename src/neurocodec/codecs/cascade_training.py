"""Training side of the cascade codecs: the phases of zhen2019 §2.2.1 (with the authors'
unquantized pre-training), the loss of zhen2020 eq. 2, the soft-to-hard annealing, the rate
term (:class:`RateSteer`, or a hinge) and the k-means centroid initialisation.

:class:`CascadeTrainingMixin` holds the trainer hooks of
:class:`~neurocodec.codecs.cascade.CascadeCodec` (``phases``, ``set_phase``,
``training_step``, ``validation_step``, ``reconstruct``); none of it is used to code a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..dsp.mel import MelSpectrogram
from ..errors import UserError
from ..nn.modes import eval_mode
from ..quant.soft_to_hard import anneal_alpha
from .base import ForwardResult

__all__ = ["TrainingPhase", "LossOutput", "RateSteer", "CascadeTrainingMixin"]


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


class CascadeTrainingMixin:
    """Trainer hooks of :class:`~neurocodec.codecs.cascade.CascadeCodec` (mixed into it; uses
    its ``config``, ``coding_modules``, ``lsp_quantizer``, ``rate_steer``, ``alpha``,
    ``phase_start_step`` and ``_phase``)."""

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
        with eval_mode(self):
            res = self(batch)  # eval mode: every module hard-quantized; codes are pre-quantization
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
        with eval_mode(self):
            out = self.loss(batch)
        return {k: float(v) for k, v in out.terms.items()}

    @torch.no_grad()
    def reconstruct(self, batch: torch.Tensor) -> torch.Tensor:
        """Trainer hook: hard-quantized reconstruction (B, 1, T) of all modules of the phase."""
        with eval_mode(self):
            return self(batch).audio
