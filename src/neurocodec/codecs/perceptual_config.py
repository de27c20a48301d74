"""Configuration of the byun2023 perceptual coder: one operating point (:class:`PerceptualConfig`,
the paper's sizes and loss weights of §3.1 and §3.3 as defaults, except the two NMR weights,
which are 30x the paper's initial values), its recipe hooks and the
training phase record.  The model itself is :mod:`neurocodec.codecs.perceptual`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PERCEPTUAL_BITRATES", "PerceptualConfig", "perceptual_config", "fem_config", "hpm_config",
           "PerceptualPhase"]

#: operating points of byun2023 §4.2 (kbps)
PERCEPTUAL_BITRATES = (9.0, 13.0, 16.0, 20.0, 24.0)


@dataclass(frozen=True)
class PerceptualConfig:
    """One operating point of the byun2023 coder (defaults: the paper's sizes, 16 kbps, FEM;
    ``lambda_global``/``lambda_local`` 30x the paper's 0.003/0.0005, see docs/perceptual.md)."""

    bitrate_kbps: float = 16.0
    density: str = "fem"  # fem | hpm
    sample_rate: int = 16000
    frame: int = 512
    overlap: int = 32
    channels: int = 100
    bottleneck_channels: int = 30
    hyper_channels: int = 96
    hyper_latent: int = 1  # channels of z_h (T/8 steps each); see the module doc
    frames_per_chunk: int = 64
    code_scale: float = 1.0  # export-time rate trim: the coder quantizes code_scale * z (step 1/code_scale)
    #: encoder only (not in the config hash: the decoder reads the grid index from each chunk):
    #: choose each chunk's g on the grid code_scale * 2**(k/16) so that the file fits its rate
    #: (:mod:`neurocodec.codecs.perceptual_rate`); off: every chunk at code_scale (k = 0)
    file_rate_control: bool = True
    # training (§3.3, §4.1)
    lambda_mse: float = 60.0
    # 30x the paper's initial 0.003 / 0.0005: at this package's signal scale those leave the NMR
    # terms ~15% of the distortion, nearly an MSE-only loss (docs/perceptual.md, "Session 13")
    lambda_global: float = 0.09
    lambda_local: float = 0.015
    rate_weight_init: float = 0.01
    rate_steer: float = 0.02  # per step: a *= exp(rate_steer * (R / target - 1)), R an EMA
    reconstruct_fraction: float = 0.2  # share of the steps trained without quantization
    decoder_input: str = "ste"  # ste | noise

    @property
    def hop(self) -> int:
        return self.frame - self.overlap

    @property
    def latent_length(self) -> int:
        return self.frame // 2

    def validate(self) -> "PerceptualConfig":
        if self.density not in ("fem", "hpm"):
            raise ValueError(f"density must be 'fem' or 'hpm', got {self.density!r}")
        if self.decoder_input not in ("ste", "noise"):
            raise ValueError(f"decoder_input must be 'ste' or 'noise', got {self.decoder_input!r}")
        if not self.code_scale > 0:
            raise ValueError(f"code_scale must be positive, got {self.code_scale}")
        if self.frame % 8 or not 0 < self.overlap < self.frame // 2:
            raise ValueError("frame must be a multiple of 8 and overlap in (0, frame/2)")
        return self


def perceptual_config(bitrate_kbps: float, density: str = "fem", **kwargs) -> PerceptualConfig:
    """The configuration of an operating point (any positive rate; the paper's are 9..24)."""
    kbps = float(bitrate_kbps)
    if not kbps > 0:
        raise ValueError("bitrate must be positive")
    return PerceptualConfig(bitrate_kbps=kbps, density=density, **kwargs).validate()


def fem_config(bitrate_kbps: float) -> PerceptualConfig:
    """Recipe hook: the FEM variant at ``bitrate_kbps``."""
    return perceptual_config(bitrate_kbps, "fem")


def hpm_config(bitrate_kbps: float) -> PerceptualConfig:
    """Recipe hook: the HPM variant at ``bitrate_kbps``."""
    return perceptual_config(bitrate_kbps, "hpm")


@dataclass(frozen=True)
class PerceptualPhase:
    """A training phase (trainer protocol: ``name``, ``steps``)."""

    name: str
    steps: int
