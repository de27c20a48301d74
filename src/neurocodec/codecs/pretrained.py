"""Learned codecs as users load them: one shipped checkpoint per operating point.

A learned model instance is one operating point (e.g. ``CqCodec.for_bitrate(16)``).  A
:class:`PretrainedFamily` is what ``neurocodec.load("cq")`` returns (the registry builds it from
the class registered with ``learned=True``: :meth:`PretrainedFamily.of`): it accepts every
per-channel bitrate of the class's ``operating_points`` and loads the trained weights of that operating point from
``src/neurocodec/assets/weights/<prefix>-<kbps>k/model.safetensors`` (what
``neurocodec export RUN --name <prefix>-<kbps>k`` writes) the first time it is used.  The
stream header's config hash is that of the checkpoint used, so a stream only decodes with the
very weights that made it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import WeightsError
from .base import BitrateSpec, CodecModel, EncodedAudio

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "assets" / "weights"


class PretrainedFamily(CodecModel):
    """All operating points of one learned codec, each backed by its shipped checkpoint."""

    learned = True

    def __init__(self, codec_cls, bitrates: Sequence[float], prefix: str, default: float,
                 weights_dir: str | Path | None = None, sample_rate: int = 16000):
        self.codec_cls = codec_cls
        self.codec_id = codec_cls.codec_id
        self.codec_version = codec_cls.codec_version
        self.decodes_versions = tuple(getattr(codec_cls, "decodes_versions", ()))
        self.description = codec_cls.description
        self.prefix = prefix
        self.sample_rate = sample_rate
        self.bitrates = BitrateSpec(default=float(default), choices=tuple(float(b) for b in bitrates))
        self.weights_dir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
        self._models: dict[float, CodecModel] = {}

    @classmethod
    def of(cls, codec_cls, weights_dir: str | Path | None = None) -> "PretrainedFamily":
        """The family of a learned codec class: its ``operating_points`` and ``default_bitrate``
        (per channel), weights under ``<weights_dir>/<codec_id>-<kbps>k/``."""
        return cls(codec_cls, codec_cls.operating_points, codec_cls.codec_id, codec_cls.default_bitrate,
                   weights_dir, sample_rate=int(getattr(codec_cls, "family_sample_rate", 16000)))

    def weights_path(self, kbps: float) -> Path:
        return self.weights_dir / f"{self.prefix}-{kbps:g}k" / "model.safetensors"

    def missing_weights_error(self) -> WeightsError | None:
        """The one-line error of a family with no shipped checkpoint at all (None otherwise)."""
        if any(self.weights_path(b).is_file() for b in self.bitrates.choices):
            return None
        return WeightsError(
            f"no trained weights are shipped for '{self.codec_id}' (none of {self.prefix}-<kbps>k for kbps in "
            f"{', '.join(f'{b:g}' for b in self.bitrates.choices)} under {self.weights_dir}); train them with "
            f"'neurocodec train {self.prefix} --bitrate K ...' and 'neurocodec export RUN_DIR --name {self.prefix}-Kk'")

    def model_for(self, kbps: float | None) -> CodecModel:
        """The trained model of the per-channel operating point ``kbps`` (:class:`WeightsError`
        when none is shipped)."""
        kbps = self.channel_bitrate(kbps)
        if kbps not in self._models:
            path = self.weights_path(kbps)
            if not path.is_file():
                raise WeightsError(
                    f"no trained weights for '{self.codec_id}' at {kbps:g} kbps (expected {path}); train them with "
                    f"'neurocodec train {self.prefix} --bitrate {kbps:g} ...' and 'neurocodec export RUN_DIR "
                    f"--name {self.prefix}-{kbps:g}k'"
                )
            model = self.codec_cls.from_pretrained(path)
            if model.sample_rate != self.sample_rate:
                raise WeightsError(f"{path} runs at {model.sample_rate} Hz, expected {self.sample_rate}")
            if hasattr(model, "eval"):
                model.eval()
            self._models[kbps] = model
        return self._models[kbps]

    def has_trained_weights(self) -> bool:
        return all(self.weights_path(b).is_file() for b in self.bitrates.choices)

    def num_parameters(self) -> int:
        return self.num_parameters_at(self.bitrates.default)

    def num_parameters_at(self, bitrate_kbps: float) -> int:
        kbps = self.channel_bitrate(bitrate_kbps)
        if self.weights_path(kbps).is_file():
            return self.model_for(kbps).num_parameters()
        return self.codec_cls.for_bitrate(kbps).num_parameters()

    def stream_config_hash(self, bitrate_kbps: float) -> int:
        return self.model_for(bitrate_kbps).config_hash()

    def config_hash(self) -> int:
        return self.stream_config_hash(self.bitrates.default)

    def num_chunks(self, num_channels: int, num_samples: int, bitrate_kbps: float) -> int | None:
        return self.model_for(self.channel_bitrate(bitrate_kbps, num_channels)).num_chunks(
            num_channels, num_samples, bitrate_kbps)

    def compress(self, audio: np.ndarray, bitrate_kbps: float | None = None, **kwargs) -> EncodedAudio:
        """Code with the model of the operating point ``bitrate_kbps / channels`` (the total
        over all channels; see :class:`CodecModel`)."""
        channels = int(np.shape(audio)[0]) if np.ndim(audio) == 2 else 1
        per = self.channel_bitrate(bitrate_kbps, channels)
        return self.model_for(per).compress(audio, per * channels, **kwargs)

    def decompress(self, chunks: Sequence[bytes] | Iterable[bytes], num_channels: int, num_samples: int,
                   bitrate_kbps: float) -> np.ndarray:
        per = self.channel_bitrate(bitrate_kbps, num_channels)
        return self.model_for(per).decompress(chunks, num_channels, num_samples, per * num_channels)


def cq_family(weights_dir: str | Path | None = None) -> PretrainedFamily:
    """CQ (zhen2020) at 9, 16, 20 and 24 kbps per channel (``neurocodec.load("cq")``)."""
    from .cq import CqCodec

    return PretrainedFamily.of(CqCodec, weights_dir)


def cmrl_family(weights_dir: str | Path | None = None) -> PretrainedFamily:
    """CMRL (zhen2019) at 8.85, 15.85, 19.85 and 23.85 kbps per channel (``neurocodec.load("cmrl")``)."""
    from .cmrl import CmrlCodec

    return PretrainedFamily.of(CmrlCodec, weights_dir)
