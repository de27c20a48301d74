"""Huffman tables of the ``mdct`` codec: the shipped table asset (``mdct_tables.json``) and the
model tables it falls back to (discrete Laplace counts), :class:`MdctTables`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..entropy.huffman import HuffmanCode
from ..errors import WeightsError
from .mdct_config import MdctConfig

__all__ = ["MdctTables", "TABLES_ASSET", "model_tables", "load_tables", "tables_path"]

TABLES_ASSET = "mdct_tables.json"


# ---------------------------------------------------------------------------------------
# Huffman tables
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MdctTables:
    """The codec's Huffman codes: envelope differences, the rate parameter
    ``r = max i_env - i_offset``, and one code per quantizer ``m_1..m_M``."""

    envelope: HuffmanCode
    offset: HuffmanCode
    quantizers: tuple[HuffmanCode, ...]

    def check(self, config: MdctConfig) -> None:
        """Raise :class:`WeightsError` if the alphabets do not fit ``config``."""
        e = config.env_levels
        want = [2 * e - 1, e + config.num_quantizers, *config.alphabet_sizes()]
        have = [self.envelope.num_symbols, self.offset.num_symbols, *(q.num_symbols for q in self.quantizers)]
        if want != have:
            raise WeightsError("MDCT Huffman tables do not match the codec configuration "
                               "(run scripts/design_mdct_tables.py)")
        for code in (self.envelope, self.offset, *self.quantizers):
            if not code.code_lengths().all():
                raise WeightsError("MDCT Huffman tables must give every symbol a codeword")

    def to_dict(self) -> dict:
        return {
            "envelope": list(self.envelope.lengths),
            "offset": list(self.offset.lengths),
            "quantizers": [list(q.lengths) for q in self.quantizers],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "MdctTables":
        try:
            return cls(HuffmanCode.from_lengths(d["envelope"]), HuffmanCode.from_lengths(d["offset"]),
                       tuple(HuffmanCode.from_lengths(q) for q in d["quantizers"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise WeightsError(f"invalid MDCT Huffman tables: {exc}") from None

    def digest(self) -> bytes:
        """SHA-256 of the code lengths (identifies the tables in the config hash)."""
        blob = json.dumps(self.to_dict(), separators=(",", ":")).encode()
        return hashlib.sha256(blob).digest()


def _discrete_laplace_counts(size: int, center: int, scale: float, total: float = 1e6) -> np.ndarray:
    x = np.arange(size) - center
    p = np.exp(-np.abs(x) / scale)
    return np.maximum(np.round(total * p / p.sum()), 0.0)


def _magnitudes_to_symbols(mag: np.ndarray, d: int, big: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Huffman symbols (one per d-tuple) and escape values (-1 = none) of magnitudes ``mag``
    whose last axis is a multiple of ``d``."""
    h = mag >> s if s else mag
    e = np.minimum(h, big)
    esc = np.where(h >= big, h - big, -1)
    if d == 1:
        return e, esc
    g = e.reshape(e.shape[:-1] + (-1, d))
    sym = np.zeros(g.shape[:-1], dtype=np.int64)
    for i in range(d):
        sym = sym * (big + 1) + g[..., i]
    return sym, esc


def model_tables(config: MdctConfig, num_samples: int = 200_000) -> MdctTables:
    """Starting tables from a source model: flattened lines are unit-variance Laplacian,
    envelope differences and ``r`` discrete Laplacian.  ``scripts/design_mdct_tables.py``
    refines them on real audio; the codec falls back to them for configurations without
    shipped tables."""
    e = config.env_levels
    envelope = HuffmanCode.from_frequencies(_discrete_laplace_counts(2 * e - 1, e - 1, 3.0),
                                            max_length=15, ensure_all=True)
    r_counts = _discrete_laplace_counts(e + config.num_quantizers, config.num_quantizers // 2,
                                        float(config.num_quantizers) / 2)
    offset = HuffmanCode.from_frequencies(r_counts, max_length=15, ensure_all=True)
    rng = np.random.default_rng(12345)
    y = rng.laplace(scale=1 / np.sqrt(2), size=num_samples - num_samples % 4)
    codes = []
    for step, (d, big, s) in zip(config.steps(), config.quantizer_layout):
        mag = np.floor(np.abs(y) / step + config.rounding).astype(np.int64)
        sym, _ = _magnitudes_to_symbols(mag, d, big, s)
        counts = np.bincount(sym.ravel(), minlength=(big + 1) ** d)
        codes.append(HuffmanCode.from_frequencies(counts, max_length=15, ensure_all=True))
    return MdctTables(envelope, offset, tuple(codes))


def tables_path() -> Path:
    """Where the shipped tables live (``neurocodec/assets/mdct_tables.json``)."""
    return Path(__file__).resolve().parent.parent / "assets" / TABLES_ASSET


def load_tables(config: MdctConfig) -> MdctTables:
    """The shipped tables (``assets/mdct_tables.json``) if they were designed for ``config``;
    for any other configuration :func:`model_tables`.  Raises :class:`WeightsError` if the
    default configuration has no valid shipped tables (a broken installation)."""
    path = tables_path()
    data = None
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WeightsError(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != "neurocodec-mdct-tables" or data.get("version") != 1:
            raise WeightsError(f"{path} is not a version-1 MDCT table file")
    if data is not None and data.get("config") == config.table_key():
        tables = MdctTables.from_dict(data["tables"])
        tables.check(config)
        return tables
    if config.table_key() == MdctConfig().table_key():
        raise WeightsError(f"the MDCT Huffman tables for the default configuration are missing from {path} "
                           "(reinstall neurocodec or run scripts/design_mdct_tables.py)")
    return model_tables(config)
