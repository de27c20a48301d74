"""neurocodec: audio and speech compression with learned and classic codecs."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Codec", "load", "__version__"]


def __getattr__(name: str):
    # Imported lazily so that ``import neurocodec.dsp`` does not pull in the whole stack.
    if name in ("Codec", "load"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'neurocodec' has no attribute {name!r}")
