"""One coding module of the cascade: a component autoencoder and the softmax quantizer of its
code (zhen2019 Fig. 1, eq. 2; differential code of zhen2020 §3.2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..nn.cmrl_blocks import AutoencoderConfig, ComponentAutoencoder
from ..quant.soft_to_hard import QuantizerOutput, SoftToHardQuantizer

__all__ = ["ModuleOutput", "CodingModule"]


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
