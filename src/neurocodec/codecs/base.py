"""The interface every codec implements (codecs layer).

A :class:`CodecModel` works on float32 audio shaped ``(channels, samples)`` at its own
``sample_rate``.  It has three entry points, as in CompressAI:

* :meth:`CodecModel.forward` - reconstruction and rate of a batch, torch ``(batch, channels,
  samples)`` in, :class:`ForwardResult` (``audio`` in the same layout, ``bits`` per item) out;
  differentiable for learned codecs, used in training and analysis;
* :meth:`CodecModel.compress` - entropy-coded payload chunks (:class:`EncodedAudio`);
* :meth:`CodecModel.decompress` - audio from those chunks.

Bitrates: what a user asks for (``--bitrate``, ``Codec.compress(bitrate=)``) and what
``compress`` / ``decompress`` and the stream header carry is the *total* over all channels;
``bitrates`` (:class:`BitrateSpec`) lists the rates of *one* channel, and every channel gets an
equal share (:meth:`CodecModel.channel_bitrate`).  A share outside ``bitrates`` is a
:class:`~neurocodec.errors.BitrateError`.

The container (``neurocodec.bitstream``) wraps the chunks with a versioned, checksummed
header; resampling, channel bookkeeping and the container's overhead (the payload budget
handed to ``compress``) are ``neurocodec.api``'s.
"""

from __future__ import annotations

import json
import zlib
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np

from ..errors import AudioError, BitrateError


@dataclass
class EncodedAudio:
    """Entropy-coded payload of one signal: chunks in stream order, plus the nominal rate (the
    total over all channels) and, when it differs from the codec's ``codec_version``, the
    payload version the stream header must carry (a codec may write the older version when a
    stream uses none of the newer features, so that older decoders still read it)."""

    chunks: list[bytes]
    bitrate_kbps: float
    num_channels: int
    num_samples: int
    codec_version: int | None = None

    @property
    def num_bytes(self) -> int:
        return sum(len(c) for c in self.chunks)


@dataclass
class ForwardResult:
    """Reconstruction and rate of a batch of signals (:meth:`CodecModel.forward`).

    ``audio``: torch tensor ``(batch, channels, samples)``, the layout of the input;
    ``bits``: torch tensor ``(batch,)``, the (estimated or measured) bits of each item, all
    its channels together; ``extras``: codec-specific tensors (losses, code indices, side
    information; documented by each codec's ``forward``).
    """

    audio: Any
    bits: Any
    extras: dict[str, Any] = field(default_factory=dict)


def match_rate(kbps: float, ladder: Sequence[float]) -> float | None:
    """The rate of ``ladder`` equal to ``kbps`` (within 1e-6 kbps), or None: the one place a
    bitrate is looked up on a ladder of operating points."""
    kbps = float(kbps)
    for c in ladder:
        if abs(float(c) - kbps) < 1e-6:
            return float(c)
    return None


def _fmt(values: Iterable[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)


@dataclass(frozen=True)
class BitrateSpec:
    """Bitrates a codec accepts *per channel*: a fixed ladder (``choices``) or a continuous
    range.  The bitrate a user asks for is the total over all channels
    (:meth:`CodecModel.validate_bitrate`); every channel gets an equal share of it."""

    default: float
    choices: tuple[float, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def validate(self, kbps: float, codec_id: str, num_channels: int = 1) -> float:
        """The per-channel rate of a total of ``kbps`` over ``num_channels`` channels
        (:class:`BitrateError` when that share is not one the codec supports)."""
        total = float(kbps)
        num_channels = max(int(num_channels), 1)
        per = total / num_channels
        if num_channels == 1:
            share = ""
        else:
            share = (f" per channel: {total:g} kbps over {num_channels} channels gives {per:.4g} kbps per channel "
                     f"(--bitrate is the total over all channels)")
        if self.choices:
            got = match_rate(per, self.choices)
            if got is not None:
                return got
            if num_channels == 1:
                raise BitrateError(f"codec '{codec_id}' does not support {total:g} kbps (choose one of "
                                   f"{_fmt(self.choices)})")
            raise BitrateError(f"codec '{codec_id}' codes one of {_fmt(self.choices)} kbps{share}; for "
                               f"{num_channels} channels choose one of {_fmt(num_channels * c for c in self.choices)}")
        lo = self.minimum if self.minimum is not None else 0.0
        hi = self.maximum if self.maximum is not None else float("inf")
        if not np.isfinite(total) or not (lo <= per + 1e-9 and per - 1e-9 <= hi):
            if num_channels == 1:
                raise BitrateError(f"codec '{codec_id}' supports {lo:g} to {hi:g} kbps, not {total:g}")
            raise BitrateError(f"codec '{codec_id}' supports {lo:g} to {hi:g} kbps{share}; for {num_channels} "
                               f"channels choose {num_channels * lo:g} to {num_channels * hi:g} kbps")
        return min(max(per, lo), hi)

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
    #: version of the codec's payload format; bump when a new stream may not decode with an
    #: older decoder
    codec_version: ClassVar[int] = 1
    #: payload versions :meth:`decompress` reads (default: ``(codec_version,)``)
    decodes_versions: ClassVar[tuple[int, ...]] = ()
    #: one-line description shown by ``neurocodec codecs``
    description: ClassVar[str] = ""
    #: whether the codec has trained parameters (learned codecs ship weights)
    learned: ClassVar[bool] = False

    sample_rate: int
    bitrates: BitrateSpec

    # -- identity ---------------------------------------------------------------
    def decodable_versions(self) -> tuple[int, ...]:
        """Payload versions this codec decodes."""
        return tuple(self.decodes_versions) or (self.codec_version,)

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
        """Config hash written into (and checked against) a stream whose channels are coded at
        ``bitrate_kbps`` each (the operating point, :meth:`channel_bitrate`); codecs with one
        checkpoint per operating point override it."""
        return self.config_hash()

    def num_parameters(self) -> int:
        """Number of trained parameters (0 for classic codecs)."""
        return 0

    def num_parameters_at(self, bitrate_kbps: float) -> int:
        """Parameters of the model that codes a channel at ``bitrate_kbps`` (learned families
        ship one model per operating point)."""
        return self.num_parameters()

    def has_trained_weights(self) -> bool:
        """Whether trained weights are loaded (always True for classic codecs)."""
        return True

    def validate_bitrate(self, kbps: float | None, num_channels: int = 1) -> float:
        """The total bitrate (kbps, all channels together) to code ``num_channels`` channels
        at: ``kbps`` itself, or every channel at the default rate when None.  Raises
        :class:`BitrateError` when the share of a channel is not a rate the codec supports."""
        per = self.channel_bitrate(kbps, num_channels)
        if kbps is not None and not self.bitrates.choices:
            return float(kbps)
        return per * max(int(num_channels), 1)

    def channel_bitrate(self, kbps: float | None, num_channels: int = 1) -> float:
        """The rate of each channel (its operating point, ``self.bitrates``) when the total over
        ``num_channels`` channels is ``kbps`` (the default per-channel rate when None)."""
        if kbps is None:
            return float(self.bitrates.default)
        return self.bitrates.validate(kbps, self.codec_id, num_channels)

    @property
    def audio_bandwidth_hz(self) -> float:
        """Highest frequency the codec reproduces (Hz): Nyquist of its rate unless it
        band-limits further (a baseline's coded band)."""
        return self.sample_rate / 2.0

    def num_chunks(self, num_channels: int, num_samples: int, bitrate_kbps: float) -> int | None:
        """How many payload chunks :meth:`compress` makes of ``(num_channels, num_samples)``
        audio at the total rate ``bitrate_kbps`` (None when it depends on the content); the api
        takes the container's per-chunk bytes out of the payload budget with it."""
        return None

    # -- coding -----------------------------------------------------------------
    @abstractmethod
    def compress(self, audio: np.ndarray, bitrate_kbps: float | None = None, *,
                 payload_budget_bytes: int | None = None, **kwargs: Any) -> EncodedAudio:
        """Entropy-code ``(channels, samples)`` float32 audio at ``self.sample_rate``.

        ``bitrate_kbps`` is the total over all channels (None: the default rate for every
        channel); ``EncodedAudio.bitrate_kbps`` repeats the total used.
        ``payload_budget_bytes`` is what the payload chunks may occupy so that the whole
        stream (container included) fits ``bitrate_kbps x duration``; ``neurocodec.api``
        computes it, codecs that control their rate per file use it, others ignore it (None
        when the codec is called directly: then the codec budgets its payload alone).
        Unknown keyword arguments are ignored."""

    @abstractmethod
    def decompress(self, chunks: Sequence[bytes] | Iterable[bytes], num_channels: int,
                   num_samples: int, bitrate_kbps: float) -> np.ndarray:
        """Decode chunks into ``(num_channels, num_samples)`` float32 audio; ``bitrate_kbps``
        is the total rate the stream was coded at (its header's)."""

    def forward(self, audio: Any, bitrate_kbps: float | None = None) -> ForwardResult:
        """Reconstruction and rate of a batch: torch ``(batch, channels, samples)`` in,
        :class:`ForwardResult` with ``audio (batch, channels, samples)`` and ``bits (batch,)`` out.

        This default runs the real compress/decompress round trip of every item (``bits`` is
        the payload measured, not differentiable); learned codecs override it with a
        differentiable version (estimated rate).  ``bitrate_kbps`` is the total rate of an
        item (all its channels)."""
        import torch

        x = torch.as_tensor(audio)
        if x.dim() != 3:
            raise AudioError(f"forward expects audio shaped (batch, channels, samples), got {tuple(x.shape)}")
        outs, bits = [], []
        for item in x.detach().cpu().to(torch.float32).numpy():
            enc = self.compress(item, bitrate_kbps)
            rec = self.decompress(enc.chunks, enc.num_channels, enc.num_samples, enc.bitrate_kbps)
            outs.append(torch.from_numpy(np.ascontiguousarray(rec, dtype=np.float32)))
            bits.append(8 * enc.num_bytes)
        return ForwardResult(audio=torch.stack(outs).to(x.device),
                             bits=torch.tensor(bits, dtype=torch.float64, device=x.device))
