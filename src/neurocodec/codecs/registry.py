"""The one registry of codecs: a stable id, its implementation and, for learned codecs, its
shipped weights and training recipe, all declared by one :func:`register` line.

``neurocodec.load(id)``, the CLI, the baselines list (:data:`neurocodec.baselines.BASELINES`)
and the training recipes of learned codecs (:func:`neurocodec.train.recipe.register_codec_recipe`)
read their ids from here.  Targets are imported lazily, so listing codecs stays cheap.

A codec registered with ``learned=True`` names a :class:`~neurocodec.codecs.base.CodecModel`
class that is *one operating point* of a learned codec (``for_bitrate``, ``from_pretrained``,
``config_class``, and the class attributes ``operating_points`` and ``default_bitrate``);
``create`` wraps it in a :class:`~neurocodec.codecs.pretrained.PretrainedFamily` that loads the
shipped weights ``assets/weights/<id>-<kbps>k/`` of each operating point.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import UnknownCodecError
from .base import CodecModel

#: module prefix of the classic baselines (their availability depends on system libraries)
BASELINE_PACKAGE = "neurocodec.baselines."


@dataclass(frozen=True)
class CodecEntry:
    """A registered codec: ``target`` is ``"module:attribute"`` of a factory or
    :class:`CodecModel` subclass; ``learned``: the target is one operating point of a learned
    codec, served as a family of shipped checkpoints."""

    codec_id: str
    target: str
    summary: str = ""
    learned: bool = False

    @property
    def is_baseline(self) -> bool:
        """Whether this is a classic baseline wrapping a system library or tool."""
        return self.target.startswith(BASELINE_PACKAGE)

    def resolve(self) -> Any:
        """The target object (imports its module)."""
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def create(self, **kwargs) -> CodecModel:
        target = self.resolve()
        if self.learned:
            from .pretrained import PretrainedFamily

            return PretrainedFamily.of(target, **kwargs)
        factory: Callable[..., CodecModel] = target
        return factory(**kwargs)


_REGISTRY: dict[str, CodecEntry] = {}


def register(codec_id: str, target: str, summary: str = "", *, learned: bool = False) -> None:
    """Register ``target`` ("package.module:Factory") under the stable id ``codec_id``
    (``learned``: see :class:`CodecEntry`)."""
    entry = CodecEntry(codec_id, target, summary, learned)
    if codec_id in _REGISTRY and _REGISTRY[codec_id] != entry:
        raise ValueError(f"codec id '{codec_id}' registered twice")
    _REGISTRY[codec_id] = entry


def codec_ids() -> list[str]:
    """All registered codec ids, sorted."""
    return sorted(_REGISTRY)


def entries() -> list[CodecEntry]:
    """All registered codecs, sorted by id."""
    return [_REGISTRY[c] for c in codec_ids()]


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
register("mdct-gen", "neurocodec.codecs.mdct_gen:MdctGenCodec", "mdct stream, SampleRNN generative decoder, speech (fejgin2020 §3)")
register("mdct-gen-piano", "neurocodec.codecs.mdct_gen:MdctGenPianoCodec", "mdct stream, SampleRNN generative decoder, piano (fejgin2020 §3)")
register("pcm", "neurocodec.codecs.pcm:PcmCodec", "16-bit PCM reference anchor")
register("cq", "neurocodec.codecs.cq:CqCodec", "CQ: trainable LPC + residual autoencoder (zhen2020)", learned=True)
register("cmrl", "neurocodec.codecs.cmrl:CmrlCodec", "CMRL: cascaded residual autoencoders (zhen2019)", learned=True)
register("lpc-cmrl", "neurocodec.codecs.cmrl:LpcCmrlCodec", "LPC-CMRL: fixed LPC + CMRL on the residual (zhen2019)",
         learned=True)
register("encodec-24k", "neurocodec.codecs.encodec:encodec_24k", "EnCodec 24 kHz streamable, reduced shipped model, 1.5-24 kbps (defossez2022)")
register("encodec-24k-official", "neurocodec.codecs.encodec:encodec_24k_official",
         "EnCodec 24 kHz, official weights from 'neurocodec import encodec' (defossez2022)")
register("encodec-48k-official", "neurocodec.codecs.encodec48:encodec_48k_official",
         "EnCodec 48 kHz stereo non-streamable, official weights from 'neurocodec import encodec' (defossez2022)")
register("encodec-16k", "neurocodec.codecs.encodec:encodec_16k", "EnCodec 16 kHz speech, 1-8 kbps (defossez2022)")
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
