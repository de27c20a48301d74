"""Codecs: one module per system, each registered under a stable string id."""

from .base import BitrateSpec, CodecModel, EncodedAudio, ForwardResult
from .registry import codec_ids, create, register

__all__ = ["BitrateSpec", "CodecModel", "EncodedAudio", "ForwardResult", "codec_ids", "create", "register"]
