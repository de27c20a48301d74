"""Registry mapping stable codec ids to factories.

A codec module registers itself with :func:`register`; ``neurocodec.load(id)`` and the CLI
look codecs up here.  Factories are imported lazily so listing codecs stays cheap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from ..errors import UnknownCodecError
from .base import CodecModel


@dataclass(frozen=True)
class CodecEntry:
    codec_id: str
    target: str  # "module:attribute" of a zero-argument factory or CodecModel subclass
    summary: str = ""

    def create(self, **kwargs) -> CodecModel:
        module, _, attr = self.target.partition(":")
        factory: Callable[..., CodecModel] = getattr(importlib.import_module(module), attr)
        return factory(**kwargs)


_REGISTRY: dict[str, CodecEntry] = {}


def register(codec_id: str, target: str, summary: str = "") -> None:
    """Register ``target`` ("package.module:Factory") under the stable id ``codec_id``."""
    if codec_id in _REGISTRY and _REGISTRY[codec_id].target != target:
        raise ValueError(f"codec id '{codec_id}' registered twice")
    _REGISTRY[codec_id] = CodecEntry(codec_id, target, summary)


def codec_ids() -> list[str]:
    """All registered codec ids, sorted."""
    return sorted(_REGISTRY)


def get_entry(codec_id: str) -> CodecEntry:
    try:
        return _REGISTRY[codec_id]
    except KeyError:
        known = ", ".join(codec_ids())
        raise UnknownCodecError(f"unknown codec '{codec_id}' (known: {known})") from None


def create(codec_id: str, **kwargs) -> CodecModel:
    """Instantiate the codec registered under ``codec_id``."""
    return get_entry(codec_id).create(**kwargs)


# Built-in codecs.  Each line is the single place a codec id is bound to its implementation.
register("mdct", "neurocodec.codecs.mdct:MdctCodec", "MDCT waveform coder (fejgin2020 §3.1)")
register("pcm", "neurocodec.codecs.pcm:PcmCodec", "16-bit PCM reference anchor")
register("cq", "neurocodec.codecs.pretrained:cq_family", "CQ: trainable LPC + residual autoencoder (zhen2020)")
register("cmrl", "neurocodec.codecs.pretrained:cmrl_family", "CMRL: cascaded residual autoencoders (zhen2019)")
register("perceptual-fem", "neurocodec.codecs.perceptual:fem_family", "byun2023 perceptual coder, factorized density (FEM)")
register("perceptual-hpm", "neurocodec.codecs.perceptual:hpm_family", "byun2023 perceptual coder, mean-scale hyperprior (HPM)")
# Classic baselines (system libraries / tools; see docs/baselines.md).
register("opus", "neurocodec.baselines.opus:OpusCodec", "Opus (libopus), 6-510 kbps, 16 kHz, baseline")
register("amrwb", "neurocodec.baselines.amrwb:AmrWbCodec", "AMR-WB (G.722.2), 9 modes 6.6-23.85 kbps, baseline")
register("codec2", "neurocodec.baselines.codec2:Codec2Codec", "Codec 2, 0.7-3.2 kbps, 8 kHz, baseline")
register("speex", "neurocodec.baselines.speex:SpeexCodec", "Speex wideband, 3.95-42.2 kbps, baseline")
register("mp3", "neurocodec.baselines.mp3:Mp3Codec", "MP3 CBR (LAME via ffmpeg), 8-160 kbps, baseline")
register("lc3", "neurocodec.baselines.lc3:Lc3Codec", "LC3 (liblc3), 16-320 kbps, baseline")
register("aac", "neurocodec.baselines.aac:AacCodec", "AAC-LC (ffmpeg native, ADTS), 12-64 kbps, baseline")
