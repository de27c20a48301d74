"""The trainer protocol of the byun2023 coder (:class:`~neurocodec.codecs.perceptual.PerceptualCodec`):
phases, the loss and the validation step, apart from the model and its bitstream.

The loss is byun2023's Eq. 2, ``L = L_e + λ1·MSE + λ2·L_p^G + λ3·L_p^L`` (§3.3), with the rate
term ``L_e`` weighted (``rate_weight``) and counted in bits per sample from the density model
(additive uniform noise in training, rounding in evaluation), the NMR losses of
:class:`neurocodec.dsp.pam1.PerceptualLoss` (global: 512-sample frames; local: seven 128-sample
subframes), and the rate weight steered toward the target rate from an exponential average of
the estimated rate (``rate_steer``; the paper adjusts its factors "until the coder reached the
pre-set bitrate range", §4).  Training runs in two phases: "reconstruct" (no quantization noise,
no rate term) for ``reconstruct_fraction`` of the steps, then "quantize".
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ..errors import AudioError
from .perceptual_config import PerceptualPhase


class PerceptualTrainingMixin:
    """Phases, loss, training and validation steps of the perceptual coder (mixed into
    :class:`~neurocodec.codecs.perceptual.PerceptualCodec`, whose ``config``, ``code_frames``,
    ``rate_ema``, ``rate_weight``, ``_phase`` and ``_loss`` it uses)."""

    def phases(self, total_steps: int) -> list[PerceptualPhase]:
        first = int(round(total_steps * self.config.reconstruct_fraction))
        return [PerceptualPhase("reconstruct", first), PerceptualPhase("quantize", int(total_steps) - first)]

    def set_phase(self, phase) -> None:
        name = phase if isinstance(phase, str) else phase.name
        if name not in ("reconstruct", "quantize"):
            raise ValueError(f"unknown phase {name!r}")
        self._phase = name

    def perceptual_loss(self, device=None):
        """The PAM-1/NMR loss module (built on first use), on ``device`` when given (it is built
        after the model may have been moved to an accelerator, and its buffers must follow the
        frames it is applied to)."""
        if self._loss is None:
            from ..dsp.pam1 import PerceptualLoss

            self._loss = PerceptualLoss(self.sample_rate, self.config.frame)
        if device is not None and (not getattr(self, "_loss_placed", False)
                                   or self._loss.pam_g.window.device != torch.device(device)):
            self._loss.to(device)  # also on the CPU the first time, so that a device guard sees the move
            self._loss_placed = True
        return self._loss

    def _frames_of_batch(self, batch: torch.Tensor) -> torch.Tensor:
        f = self.config.frame
        x = batch.reshape(batch.shape[0], -1)
        usable = (x.shape[1] // f) * f
        if usable == 0:
            raise AudioError(f"training segments must hold at least one frame of {f} samples")
        return x[:, :usable].reshape(-1, f)

    def loss(self, batch: torch.Tensor, steer: bool = False):
        cfg = self.config
        frames = self._frames_of_batch(batch)
        quant = self._phase == "quantize" or not self.training
        out = self.code_frames(frames, quantize=quant)
        xh = out["frames"]
        mse = F.mse_loss(xh, frames)
        lg, ll = self.perceptual_loss(frames.device)(frames, xh)
        per_sample = float(cfg.hop)
        bits = (out["main_bits"] + out["side_bits"]).mean() / per_sample  # bits per sample
        kbps = bits.detach() * cfg.sample_rate / 1000.0
        if steer and quant:
            with torch.no_grad():
                ema = self.rate_ema
                ema.copy_(kbps if float(ema) < 0 else 0.95 * ema + 0.05 * kbps)
                ratio = float(ema) / cfg.bitrate_kbps
                w = float(self.rate_weight) * math.exp(cfg.rate_steer * max(min(ratio - 1.0, 1.0), -1.0))
                self.rate_weight.fill_(min(max(w, 1e-6), 1e3))
        dist = cfg.lambda_mse * mse + cfg.lambda_global * lg + cfg.lambda_local * ll
        total = dist + (self.rate_weight * bits if quant else 0.0)
        snr = 10 * torch.log10(frames.pow(2).sum() / (frames - xh).pow(2).sum().clamp(min=1e-12))
        terms = {"loss/mse": mse.detach(), "loss/nmr_global": lg.detach(), "loss/nmr_local": ll.detach(),
                 "loss/distortion": dist.detach(), "rate/estimated_kbps": kbps,
                 "rate/main_kbps": out["main_bits"].mean().detach() / per_sample * cfg.sample_rate / 1000.0,
                 "rate/side_kbps": out["side_bits"].mean().detach() / per_sample * cfg.sample_rate / 1000.0,
                 "rate/target_kbps": cfg.bitrate_kbps, "rate/weight": float(self.rate_weight),
                 "metrics/snr_db": snr.detach()}
        return {"loss": total, **terms}

    def training_step(self, batch: torch.Tensor, step: int):
        return self.loss(batch, steer=True)

    @torch.no_grad()
    def validation_step(self, batch: torch.Tensor) -> dict[str, float]:
        was = self.training
        self.eval()
        try:
            out = self.loss(batch)
        finally:
            self.train(was)
        return {k: float(v) for k, v in out.items() if k != "loss"}

    @torch.no_grad()
    def reconstruct(self, batch: torch.Tensor) -> torch.Tensor:
        was = self.training
        self.eval()
        try:
            return self(batch).audio
        finally:
            self.train(was)
