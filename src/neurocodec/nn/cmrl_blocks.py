"""The 1-D CNN component autoencoder of CMRL and CQ (zhen2019 §2.1, Table 1; zhen2020 §2.1, Table 1).

Per Table 1 (widths x channels, kernel 9 everywhere, Leaky ReLU):

encoder  (512, 1) --change channel--> (512, 100) --bottleneck stage--> (512, 100)
         --downsampling (stride 2)--> (256, 100) --bottleneck stage--> (256, 100)
         --change channel--> (256, 1)                               = the code h
decoder  (256, 1) --change channel--> (256, 100) --bottleneck stage--> (256, 100)
         --sub-pixel upsampling--> (512, 50) --bottleneck stage--> (512, 50)
         --change channel--> (512, 1)

* A *bottleneck block* is ``C -> 20 -> 20 -> C`` (three kernel-9 convolutions) with an
  identity shortcut (zhen2019 §2.1.1); a *stage* holds two of them whose middle
  convolution has dilation 1 and 2 ("each residual learning block contains two bottleneck
  structures with the dilation rate of 1 and 2", zhen2019 §3.1; the "x2" of zhen2020 Table 1).
* Downsampling is a stride-2 convolution ``C -> C``; upsampling is a ``C -> C``
  convolution whose output channels are interlaced in pairs (sub-pixel convolution, Shi et
  al. 2016, zhen2019 Fig. 2), halving the channels and doubling the width.
* ``num_downsamples = 2`` adds a second (stage, downsampling) pair to the encoder and a second
  (upsampling, stage) pair to the decoder, giving a 128-sample code (zhen2019 §3.1, 8.85 kbps
  second module; zhen2020 §4.1, CQ at 9 kbps).  The decoder's channels halve at every
  upsampling (100 -> 50 -> 25).  This gives 0.465M parameters for one downsampling and
  0.683M for two, against "0.45 million" and "0.67 million" in zhen2020 §4.3.

Choices the papers leave open (documented here, made as a careful reimplementation):
* the code layer ends with ``tanh`` (so codes live in [-1, 1], where the 32 centroids are
  initialised); the decoder output is linear;
* Leaky ReLU slope 0.2 (TensorFlow's default, the framework of the original code);
  activations follow every convolution except the last of each bottleneck block (whose
  output is added to the shortcut) and the two output layers;
* "same" zero padding, so frames are coded independently (the 32-sample overlap of the
  frames hides the edges).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "AutoencoderConfig", "BottleneckBlock", "BottleneckStage", "Downsample1d", "SubPixelUpsample1d",
    "interlace", "ConvEncoder", "ConvDecoder", "ComponentAutoencoder", "count_parameters",
]


@dataclass(frozen=True)
class AutoencoderConfig:
    """Hyper-parameters of one component autoencoder (defaults: zhen2019/zhen2020 Table 1)."""

    frame_length: int = 512
    channels: int = 100
    bottleneck_channels: int = 20
    kernel_size: int = 9
    dilations: tuple[int, ...] = (1, 2)
    num_downsamples: int = 1
    leaky_slope: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))
        if self.num_downsamples < 0:
            raise ValueError("num_downsamples must be >= 0")
        if self.frame_length % (2 ** self.num_downsamples):
            raise ValueError("frame_length must be divisible by 2**num_downsamples")
        if self.channels % (2 ** self.num_downsamples):
            raise ValueError("channels must be divisible by 2**num_downsamples (sub-pixel upsampling)")
        if self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd ('same' padding)")

    @property
    def code_length(self) -> int:
        """Number of code values (symbols) per frame: ``frame_length / 2**num_downsamples``."""
        return self.frame_length // (2 ** self.num_downsamples)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable-or-not parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def _conv(cin: int, cout: int, k: int, dilation: int = 1, stride: int = 1) -> nn.Conv1d:
    pad = dilation * (k - 1) // 2
    return nn.Conv1d(cin, cout, k, stride=stride, padding=pad, dilation=dilation)


class BottleneckBlock(nn.Module):
    """``x + conv(C<-n) act conv_d(n<-n) act conv(n<-C) x`` (zhen2019 §2.1.1 "bottleneck" block)."""

    def __init__(self, channels: int, narrow: int, kernel_size: int, dilation: int, slope: float) -> None:
        super().__init__()
        self.reduce = _conv(channels, narrow, kernel_size)
        self.middle = _conv(narrow, narrow, kernel_size, dilation=dilation)
        self.expand = _conv(narrow, channels, kernel_size)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.reduce(x), self.slope)
        y = F.leaky_relu(self.middle(y), self.slope)
        return x + self.expand(y)


class BottleneckStage(nn.Module):
    """Bottleneck blocks with the given dilations (1 and 2 in the papers), in sequence."""

    def __init__(self, channels: int, narrow: int, kernel_size: int, dilations: tuple[int, ...], slope: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(BottleneckBlock(channels, narrow, kernel_size, d, slope) for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class Downsample1d(nn.Module):
    """Stride-2 convolution ``C -> C`` followed by Leaky ReLU (width ``S -> S/2``)."""

    def __init__(self, channels: int, kernel_size: int, slope: float) -> None:
        super().__init__()
        self.conv = _conv(channels, channels, kernel_size, stride=2)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(x), self.slope)


def interlace(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Sub-pixel shuffle: ``(N, C, T) -> (N, C/r, r T)`` with ``out[n, c, r t + i] = x[n, r c + i, t]``
    (zhen2019 Fig. 2: channel pairs interlaced into one twice-as-long feature map)."""
    n, c, t = x.shape
    if c % factor:
        raise ValueError(f"{c} channels cannot be interlaced by {factor}")
    return x.reshape(n, c // factor, factor, t).permute(0, 1, 3, 2).reshape(n, c // factor, t * factor)


class SubPixelUpsample1d(nn.Module):
    """Convolution ``C -> C``, Leaky ReLU, then :func:`interlace` to ``(C/2, 2 T)``."""

    def __init__(self, channels: int, kernel_size: int, slope: float) -> None:
        super().__init__()
        self.conv = _conv(channels, channels, kernel_size)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return interlace(F.leaky_relu(self.conv(x), self.slope), 2)


class ConvEncoder(nn.Module):
    """Encoder half of Table 1: frames ``(N, 1, S)`` -> real code ``(N, S / 2**d)`` in (-1, 1)."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        c, k, s = cfg.channels, cfg.kernel_size, cfg.leaky_slope
        self.slope = s
        self.input = _conv(1, c, k)
        self.stages = nn.ModuleList()
        self.downs = nn.ModuleList()
        for _ in range(cfg.num_downsamples):
            self.stages.append(BottleneckStage(c, cfg.bottleneck_channels, k, cfg.dilations, s))
            self.downs.append(Downsample1d(c, k, s))
        self.last_stage = BottleneckStage(c, cfg.bottleneck_channels, k, cfg.dilations, s)
        self.output = _conv(c, 1, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.input(x), self.slope)
        for stage, down in zip(self.stages, self.downs):
            y = down(stage(y))
        y = self.last_stage(y)
        return torch.tanh(self.output(y))[:, 0, :]


class ConvDecoder(nn.Module):
    """Decoder half of Table 1: code ``(N, S / 2**d)`` -> frames ``(N, 1, S)``."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        c, k, s = cfg.channels, cfg.kernel_size, cfg.leaky_slope
        self.slope = s
        self.input = _conv(1, c, k)
        self.stages = nn.ModuleList()
        self.ups = nn.ModuleList()
        for _ in range(cfg.num_downsamples):
            self.stages.append(BottleneckStage(c, cfg.bottleneck_channels, k, cfg.dilations, s))
            self.ups.append(SubPixelUpsample1d(c, k, s))
            c //= 2
        self.last_stage = BottleneckStage(c, cfg.bottleneck_channels, k, cfg.dilations, s)
        self.output = _conv(c, 1, k)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.input(code[:, None, :]), self.slope)
        for stage, up in zip(self.stages, self.ups):
            y = up(stage(y))
        return self.output(self.last_stage(y))


class ComponentAutoencoder(nn.Module):
    """Encoder and decoder of one CMRL module (quantization sits between them, in the codec)."""

    def __init__(self, cfg: AutoencoderConfig | None = None) -> None:
        super().__init__()
        self.config = cfg or AutoencoderConfig()
        self.encoder = ConvEncoder(self.config)
        self.decoder = ConvDecoder(self.config)

    @property
    def code_length(self) -> int:
        return self.config.code_length

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, 1, S)`` or ``(N, S)`` frames -> code ``(N, code_length)``."""
        if frames.dim() == 2:
            frames = frames[:, None, :]
        if frames.shape[-1] != self.config.frame_length or frames.shape[1] != 1:
            raise ValueError(f"expected frames (N, 1, {self.config.frame_length}), got {tuple(frames.shape)}")
        return self.encoder(frames)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Code ``(N, code_length)`` -> frames ``(N, 1, S)``."""
        if code.dim() != 2 or code.shape[-1] != self.code_length:
            raise ValueError(f"expected code (N, {self.code_length}), got {tuple(code.shape)}")
        return self.decoder(code)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Unquantized reconstruction (useful for pre-training and tests)."""
        return self.decode(self.encode(frames))

    def num_parameters(self) -> int:
        return count_parameters(self)
