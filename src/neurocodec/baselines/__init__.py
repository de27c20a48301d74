"""Classic-codec baselines: Opus, AMR-WB, Codec 2, Speex, MP3, LC3 and AAC as ``CodecModel``\\ s.

Each wraps a Debian-packaged codec library (ctypes) or ffmpeg, so its payload is the codec's
real bitstream in that codec's own minimal framing and the measured bitrate
``8 * payload_bytes / duration`` is honest (docs/baselines.md lists the framing overhead of
each).  Channels are coded independently as mono, each at ``bitrate / channels`` (the
bitrate is the total over all channels, as for every codec).  Output is
time-aligned with the input: each codec's constant delay is removed.

Nothing here is imported or loaded until a codec is instantiated; :func:`available` reports
which baselines work on this machine.
"""

from __future__ import annotations

import importlib

from ..errors import UserError

def _baselines() -> dict[str, str]:
    from ..codecs import registry

    return {e.codec_id: e.target for e in registry.entries() if e.is_baseline}


#: codec id -> "module:class" of every baseline, read from ``codecs/registry.py`` (where each
#: codec is declared once)
BASELINES: dict[str, str] = _baselines()


def create(codec_id: str, **kwargs):
    """Instantiate the baseline ``codec_id`` (raises ``MissingToolError`` when not installed)."""
    module, _, attr = BASELINES[codec_id].partition(":")
    return getattr(importlib.import_module(module), attr)(**kwargs)


def available() -> dict[str, bool | str]:
    """Which baselines work here: ``True``, or the one-line reason (naming the Debian package)."""
    status: dict[str, bool | str] = {}
    for codec_id in BASELINES:
        try:
            create(codec_id)
            status[codec_id] = True
        except UserError as exc:
            status[codec_id] = str(exc)
    return status


__all__ = ["BASELINES", "available", "create"]
