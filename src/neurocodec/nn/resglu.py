"""ResGLU blocks and channel changers of byun2023 §3.1 (nn layer).

A ResGLU *layer* is a dilated 1-D convolution producing twice the output channels, split into a
value half ``a`` and a gate half ``b`` and combined by a gated linear unit ``a * sigmoid(b)``
(Dauphin et al. 2017); when input and output channels agree the input is added back (residual).
A ResGLU *block* is six such layers with dilations 1, 2, 4, 8, 16, 32 (kernel 9, "same"
padding), followed by a 1-D GDN (or IGDN in the decoder, :mod:`.gdn`) as the block's
non-linearity.  The front- and back-end *channel changers* are single ResGLU layers that map
between channel counts (no residual).
"""

from __future__ import annotations

from torch import nn

from .gdn import GDN1d

__all__ = ["ResGLULayer", "ResGLUBlock", "DILATIONS", "KERNEL"]

#: dilation factors of the six layers of a block (byun2023 §3.1)
DILATIONS = (1, 2, 4, 8, 16, 32)
#: kernel size of every layer (byun2023 §3.1)
KERNEL = 9


class ResGLULayer(nn.Module):
    """``conv(x) -> a * sigmoid(b)`` (+ ``x`` when ``in_channels == out_channels``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = KERNEL, dilation: int = 1,
                 residual: bool | None = None):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, 2 * out_channels, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size - 1) // 2)
        self.residual = (in_channels == out_channels) if residual is None else bool(residual)
        if self.residual and in_channels != out_channels:
            raise ValueError("a residual ResGLU layer needs as many input as output channels")

    def forward(self, x):
        a, b = self.conv(x).chunk(2, dim=1)
        y = a * b.sigmoid()
        return x + y if self.residual else y


class ResGLUBlock(nn.Module):
    """Six residual GLU layers (dilations 1..32, kernel 9) and a GDN (``inverse``: IGDN)."""

    def __init__(self, channels: int, kernel_size: int = KERNEL, dilations=DILATIONS, inverse_gdn: bool = False):
        super().__init__()
        self.layers = nn.Sequential(*[ResGLULayer(channels, channels, kernel_size, d) for d in dilations])
        self.gdn = GDN1d(channels, inverse=inverse_gdn)

    def forward(self, x):
        return self.gdn(self.layers(x))
