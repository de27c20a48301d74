"""CQ: collaborative quantization of LPC and residual (zhen2020).

The trainable LPC analyzer of zhen2020 §3.1 (50 Hz high-pass, pre-emphasis 1 - 0.68 z^-1,
order-16 LPC on 1024-sample frames with 50% overlap, LSPs softmax-quantized with 256 learned
centroids, residual on 512-sample segments with the sub-frame windowing of Fig. 3b)
followed by CMRL residual coding with differential codes (§3.2), trained jointly so that
the LPC bit allocation is learned (§3.3).  Operating points (§4.1):

* 24 kbps: LPC + two autoencoders (as LPC-CMRL);
* 16 and 20 kbps: LPC + one autoencoder with a stride-2 code (256 symbols per frame);
* 9 kbps: LPC + one autoencoder with two downsampling layers (128 symbols, 0.68M parameters).

Learning rate 2e-4 for 30 epochs, then fine-tuning until the entropy is in the target
range; batch of 128 frames; alpha = 300.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BitrateError
from ..nn.cmrl_blocks import AutoencoderConfig
from .base import match_rate
from .cascade import CascadeCodec, CascadeConfig, CascadeTraining, LpcConfig

__all__ = ["CQ_BITRATES", "CqConfig", "cq_config", "CqCodec"]

#: operating points of zhen2020 §4.1 (kbps)
CQ_BITRATES = (9.0, 16.0, 20.0, 24.0)


@dataclass(frozen=True)
class CqConfig(CascadeConfig):
    """A CQ operating point (defaults: 16 kbps)."""

    bitrate_kbps: float = 16.0
    modules: tuple[AutoencoderConfig, ...] = (AutoencoderConfig(),)
    lpc: LpcConfig | None = LpcConfig()
    differential: bool = True
    # zhen2020 §4.1: one learning rate, 2e-4 (the recipe's train.lr), for every phase
    training: CascadeTraining = CascadeTraining(greedy_lr_factors=(1.0, 1.0), finetune_lr_factor=1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lpc is None:
            raise ValueError("CQ needs its LPC front end (lpc=LpcConfig(...))")


def cq_config(bitrate_kbps: float) -> CqConfig:
    """The configuration of zhen2020 §4.1 for one of :data:`CQ_BITRATES`."""
    kbps = match_rate(bitrate_kbps, CQ_BITRATES)
    if kbps is None:
        ladder = ", ".join(f"{b:g}" for b in CQ_BITRATES)
        raise BitrateError(f"CQ has no {float(bitrate_kbps):g} kbps operating point (choose one of {ladder})")
    if kbps == 24.0:
        modules = (AutoencoderConfig(), AutoencoderConfig())
    elif kbps == 9.0:
        modules = (AutoencoderConfig(num_downsamples=2),)
    else:
        modules = (AutoencoderConfig(),)
    return CqConfig(bitrate_kbps=kbps, modules=modules)


class CqCodec(CascadeCodec):
    """CQ (zhen2020).  One instance is one operating point: ``CqCodec.for_bitrate(kbps)`` or
    ``CqCodec.from_pretrained(path)``."""

    codec_id = "cq"
    description = "CQ: trainable LPC (LSP softmax quantization) + CMRL residual coding (zhen2020)"
    config_class = CqConfig
    #: per-channel operating points of the family (registry: ``learned=True``) and its default
    operating_points = CQ_BITRATES
    default_bitrate = 16.0

    def __init__(self, config: CqConfig | None = None) -> None:
        super().__init__(config if config is not None else cq_config(16.0))

    @classmethod
    def for_bitrate(cls, bitrate_kbps: float) -> "CqCodec":
        """An untrained codec for one of :data:`CQ_BITRATES`."""
        return cls(cq_config(bitrate_kbps))
