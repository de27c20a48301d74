"""Training data: corpus builder (``build_corpus``), folder indexer (``index_folder``),
manifests (``Manifest``) and training crops (``SegmentDataset``).  See docs/corpus.md.

Names are imported lazily so that ``import neurocodec.data`` stays cheap (no torch,
music21 or pyroomacoustics until they are used).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Manifest": "manifest",
    "SegmentRecord": "manifest",
    "build_corpus": "build",
    "index_folder": "index",
    "SegmentDataset": "dataset",
    "add_data_parser": "commands",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
