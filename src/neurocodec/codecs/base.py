"""The interface every codec implements (codecs layer).

A :class:`CodecModel` works on float32 audio shaped ``(channels, samples)`` at its own
``sample_rate``.  It has three entry points, as in CompressAI:

* :meth:`CodecModel.forward` - reconstruction and rate (bits) of a signal; differentiable
  for learned codecs, used in training and analysis;
* :meth:`CodecModel.compress` - entropy-coded payload chunks (:class:`EncodedAudio`);
* :meth:`CodecModel.decompress` - audio from those chunks.

The container (``neurocodec.bitstream``) wraps the chunks with a versioned, checksummed
header; resampling and channel bookkeeping happen in ``neurocodec.api``.
"""

from __future__ import annotations

import json
import zlib
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np

from ..errors import BitrateError


@dataclass
class EncodedAudio:
    """Entropy-coded payload of one signal: chunks in stream order, plus the nominal rate."""

    chunks: list[bytes]
    bitrate_kbps: float
    num_channels: int
    num_samples: int

    @property
    def num_bytes(self) -> int:
        return sum(len(c) for c in self.chunks)


@dataclass(frozen=True)
class Framing:
    """Bytes a container adds around a codec's payload: ``stream_bytes`` once per stream (header,
    end marker) and ``chunk_bytes`` per payload chunk.  A codec that controls its rate per file
    (:class:`~neurocodec.codecs.cascade.CascadeCodec` with ``file_rate_control``) subtracts them
    from the file's budget, so that the *file* lands on the nominal bitrate."""

    stream_bytes: int = 0
    chunk_bytes: int = 0

    def bytes_for(self, num_chunks: int) -> int:
        """Framing bytes of a stream of ``num_chunks`` chunks."""
        return self.stream_bytes + self.chunk_bytes * int(num_chunks)


@dataclass
class ForwardResult:
    """Reconstruction and rate of a signal (``forward``).

    ``audio`` has the shape of the input; ``bits`` is the (estimated or measured) number of
    bits; ``extras`` holds codec-specific tensors (losses, code indices, side information).
    """

    audio: Any
    bits: Any
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BitrateSpec:
    """Bitrates a codec accepts: a fixed ladder (``choices``) or a continuous range."""

    default: float
    choices: tuple[float, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def validate(self, kbps: float, codec_id: str) -> float:
        kbps = float(kbps)
        if self.choices:
            for c in self.choices:
                if abs(c - kbps) < 1e-6:
                    return c
            ladder = ", ".join(f"{c:g}" for c in self.choices)
            raise BitrateError(f"codec '{codec_id}' does not support {kbps:g} kbps (choose one of {ladder})")
        lo = self.minimum if self.minimum is not None else 0.0
        hi = self.maximum if self.maximum is not None else float("inf")
        if not (lo <= kbps <= hi) or not np.isfinite(kbps):
            raise BitrateError(f"codec '{codec_id}' supports {lo:g} to {hi:g} kbps, not {kbps:g}")
        return kbps

    def describe(self) -> str:
        if self.choices:
            if len(self.choices) <= 4:
                return ",".join(f"{c:g}" for c in self.choices)
            return f"{min(self.choices):g}..{max(self.choices):g} ({len(self.choices)} rates)"
        return f"{self.minimum:g}-{self.maximum:g}"


def config_hash(config: Any, extra: bytes = b"") -> int:
    """CRC32 of a config (dataclass or dict) in canonical JSON, plus optional bytes (weights)."""
    if is_dataclass(config):
        config = asdict(config)
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()
    return zlib.crc32(blob + extra) & 0xFFFFFFFF


class CodecModel(ABC):
    """Base class of all codecs.  Subclasses set the class attributes and implement
    :meth:`compress` and :meth:`decompress` (and override :meth:`forward` when learned)."""

    #: stable string id used in the registry and written into every stream
    codec_id: ClassVar[str] = ""
    #: version of the codec's payload format; bump when old streams can no longer be decoded
    codec_version: ClassVar[int] = 1
    #: one-line description shown by ``neurocodec codecs``
    description: ClassVar[str] = ""
    #: whether the codec has trained parameters (learned codecs ship weights)
    learned: ClassVar[bool] = False

    sample_rate: int
    bitrates: BitrateSpec

    # -- identity ---------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The configuration that determines the bitstream (used for the config hash)."""
        cfg = getattr(self, "config", None)
        if cfg is None:
            return {}
        return asdict(cfg) if is_dataclass(cfg) else dict(cfg)

    def weights_digest(self) -> bytes:
        """Bytes identifying trained weights (empty for codecs without weights)."""
        return b""

    def config_hash(self) -> int:
        """32-bit hash of config and weights written into the stream header."""
        return config_hash(self.config_dict(), self.weights_digest())

    def stream_config_hash(self, bitrate_kbps: float) -> int:
        """Config hash written into (and checked against) a stream coded at ``bitrate_kbps``;
        codecs with one checkpoint per operating point override it."""
        return self.config_hash()

    def num_parameters(self) -> int:
        """Number of trained parameters (0 for classic codecs)."""
        return 0

    def num_parameters_at(self, bitrate_kbps: float) -> int:
        """Parameters of the model that codes ``bitrate_kbps`` (learned families ship one model
        per operating point)."""
        return self.num_parameters()

    def has_trained_weights(self) -> bool:
        """Whether trained weights are loaded (always True for classic codecs)."""
        return True

    def validate_bitrate(self, kbps: float | None) -> float:
        """Return the bitrate to use, raising :class:`BitrateError` when unsupported."""
        if kbps is None:
            return self.bitrates.default
        return self.bitrates.validate(kbps, self.codec_id)

    # -- coding -----------------------------------------------------------------
    @abstractmethod
    def compress(self, audio: np.ndarray, bitrate_kbps: float | None = None,
                 framing: Framing | None = None) -> EncodedAudio:
        """Entropy-code ``(channels, samples)`` float32 audio at ``self.sample_rate``;
        ``framing``: what the container will add (codecs with a file-level rate budget use it)."""

    @abstractmethod
    def decompress(self, chunks: Sequence[bytes] | Iterable[bytes], num_channels: int,
                   num_samples: int, bitrate_kbps: float) -> np.ndarray:
        """Decode chunks into ``(num_channels, num_samples)`` float32 audio."""

    def forward(self, audio: np.ndarray, bitrate_kbps: float | None = None) -> ForwardResult:
        """Reconstruction and measured rate through a real compress/decompress round trip.

        Learned codecs override this with a differentiable version (estimated rate)."""
        audio = np.asarray(audio, dtype=np.float32)
        enc = self.compress(audio, bitrate_kbps)
        rec = self.decompress(enc.chunks, enc.num_channels, enc.num_samples, enc.bitrate_kbps)
        return ForwardResult(audio=rec, bits=8 * enc.num_bytes)
