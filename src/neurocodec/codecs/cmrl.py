"""CMRL: cascaded cross-module residual learning (zhen2019), raw-PCM and LPC variants.

Two component autoencoders in cascade (zhen2019 §2.2, eq. 1; 0.93M parameters), each coding
the residual of the ones before it with a 32-level softmax quantizer; pair-Huffman coding of
the symbols (§2.3).  Operating points (§3.1): 8.85, 15.85, 19.85 and 23.85 kbps; at
8.85 kbps the second module downsamples each frame to 128 symbols, otherwise both produce
256.  The rate of the other points is set by the entropy regularizer during training (the
architectures are identical).  Learning rates: 1e-4 for module 1, 2e-5 for module 2 and for
fine-tuning (factors 1, 0.2, 0.2 of the recipe's ``train.lr``); 30 epochs per module, batch of
128 frames.

:class:`LpcCmrlCodec` ("LPC-CMRL") puts a fixed LPC module first (zhen2019 §3.1: "the LPC
coefficients are quantized and sent directly to the receiver side at 2.4 kbps") and codes
the LPC residual with the same cascade.  The 2019 paper does not describe its LPC
quantizer; we use the analyzer of zhen2020 §3.1 (which CQ makes trainable) with a *fixed*
scalar quantizer of 32 mel-spaced levels per LSP (5 bits, 16 LSPs per 32 ms: 2.5 kbps before
entropy coding, close to the paper's 2.4 kbps), so that LPC-CMRL differs from CQ only in
that its LPC quantization is not learned and its code is not differential.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BitrateError
from ..nn.cmrl_blocks import AutoencoderConfig
from .base import match_rate
from .cascade import CascadeCodec, CascadeConfig, CascadeTraining, LpcConfig

__all__ = ["CMRL_BITRATES", "CmrlConfig", "cmrl_config", "CmrlCodec", "LpcCmrlCodec", "LPC_CMRL_LPC"]

#: operating points of zhen2019 §3.1 (kbps)
CMRL_BITRATES = (8.85, 15.85, 19.85, 23.85)

#: the untrained LPC front end of LPC-CMRL (32 fixed mel-spaced LSP levels); the residual is
#: scaled by 10 before the modules (RMS ~0.1 -> ~1 on corpus speech, :class:`LpcConfig`)
LPC_CMRL_LPC = LpcConfig(num_centroids=32, trainable=False, residual_gain=10.0)


@dataclass(frozen=True)
class CmrlConfig(CascadeConfig):
    """A CMRL operating point (defaults: 15.85 kbps, raw PCM)."""

    bitrate_kbps: float = 15.85
    modules: tuple[AutoencoderConfig, ...] = (AutoencoderConfig(), AutoencoderConfig())
    differential: bool = False
    # zhen2019 §3.1: 1e-4 for module 1, 2e-5 for module 2 and fine-tuning (with train.lr = 1e-4)
    training: CascadeTraining = CascadeTraining(greedy_lr_factors=(1.0, 0.2), finetune_lr_factor=0.2)


def cmrl_config(bitrate_kbps: float, lpc: bool = False) -> CmrlConfig:
    """The configuration of zhen2019 for one of :data:`CMRL_BITRATES` (``lpc``: LPC-CMRL)."""
    kbps = match_rate(bitrate_kbps, CMRL_BITRATES)
    if kbps is None:
        ladder = ", ".join(f"{b:g}" for b in CMRL_BITRATES)
        raise BitrateError(f"CMRL has no {float(bitrate_kbps):g} kbps operating point (choose one of {ladder})")
    second = AutoencoderConfig(num_downsamples=2) if kbps == 8.85 else AutoencoderConfig()
    return CmrlConfig(bitrate_kbps=kbps, modules=(AutoencoderConfig(), second),
                      lpc=LPC_CMRL_LPC if lpc else None)


class CmrlCodec(CascadeCodec):
    """Raw-PCM CMRL (zhen2019).  One instance is one operating point; build it with
    ``CmrlCodec.for_bitrate(kbps)`` or load a trained one with ``from_pretrained``."""

    codec_id = "cmrl"
    description = "CMRL: two cascaded 1-D CNN autoencoders, softmax quantization, pair Huffman (zhen2019)"
    config_class = CmrlConfig
    #: per-channel operating points of the family (registry: ``learned=True``) and its default
    operating_points = CMRL_BITRATES
    default_bitrate = 15.85

    def __init__(self, config: CmrlConfig | None = None) -> None:
        cfg = config if config is not None else cmrl_config(15.85, lpc=self._uses_lpc())
        if (cfg.lpc is not None) != self._uses_lpc():
            raise ValueError(f"{type(self).__name__} {'needs' if self._uses_lpc() else 'must not have'} an LPC front end")
        super().__init__(cfg)

    @classmethod
    def _uses_lpc(cls) -> bool:
        return False

    @classmethod
    def for_bitrate(cls, bitrate_kbps: float) -> "CmrlCodec":
        """An untrained codec for one of :data:`CMRL_BITRATES`."""
        return cls(cmrl_config(bitrate_kbps, lpc=cls._uses_lpc()))


class LpcCmrlCodec(CmrlCodec):
    """LPC-CMRL (zhen2019 §3.1): fixed LPC module, then the CMRL cascade on the residual."""

    codec_id = "lpc-cmrl"
    description = "LPC-CMRL: fixed LPC (LSP) module + two cascaded autoencoders on the residual (zhen2019)"

    @classmethod
    def _uses_lpc(cls) -> bool:
        return True
