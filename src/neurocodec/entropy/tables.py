"""Integer CDF tables with an escape symbol, for range coding learned densities (entropy layer).

A :class:`TableSet` holds ``R`` rows; row ``r`` models the integers ``offset[r] .. offset[r] +
size[r] - 1`` plus one *escape* symbol (index ``size[r]``).  A value outside its row's range is
coded as the escape symbol followed by the value itself, ``v + 2**15`` as two uniform 8-bit
symbols (so values are limited to ``-2**15 .. 2**15 - 1``; callers clamp).  This is the scheme of
CompressAI's entropy models (Ballé et al. 2018's "tabulated" coding), written for this project:
CDFs are built once from a model's PMFs (:func:`build_tables`) and stored as integers, so
encoder and decoder use identical tables on any machine.

Coding is done by :mod:`.range_coder` (constriction's range coder, exact dyadic tables).  The
values of one call are coded grouped by row (all values of the lowest row first, each group in
its original order, each with one static table), which is much faster than one table per symbol;
the decoder knows the rows, so it decodes the same groups and puts the values back in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .range_coder import RangeDecoder, RangeEncoder, quantize_pmf

__all__ = ["TableSet", "build_tables", "ESCAPE_LIMIT", "PRECISION"]

#: values coded after an escape lie in ``-ESCAPE_LIMIT .. ESCAPE_LIMIT - 1``
ESCAPE_LIMIT = 1 << 15
#: CDF precision of the tables (bits)
PRECISION = 16

_BYTE_CDF = np.arange(257, dtype=np.int64) * 256  # uniform over 256 symbols, total 2**16


@dataclass
class TableSet:
    """``cdfs``: ``(R, max_size + 2)`` int CDFs (padded with the total); ``offsets``/``sizes``: ``(R,)``."""

    cdfs: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray

    @property
    def num_rows(self) -> int:
        return int(self.cdfs.shape[0])

    def encode(self, enc: RangeEncoder, values, rows) -> None:
        """Append integer ``values`` coded with table rows ``rows`` (same length)."""
        v = np.asarray(values, dtype=np.int64).ravel()
        r = np.asarray(rows, dtype=np.int64).ravel()
        if v.size != r.size:
            raise ValueError(f"{v.size} values but {r.size} rows")
        if v.size == 0:
            return
        if v.min() < -ESCAPE_LIMIT or v.max() >= ESCAPE_LIMIT:
            raise ValueError(f"values must lie in {-ESCAPE_LIMIT}..{ESCAPE_LIMIT - 1}")
        sym = v - self.offsets[r]
        esc = (sym < 0) | (sym >= self.sizes[r])
        sym = np.where(esc, self.sizes[r], sym)
        for row, pos in _by_row(r):
            enc.encode(sym[pos], self._row_cdf(row))
        if esc.any():
            raw = v[esc] + ESCAPE_LIMIT
            enc.encode(np.stack([raw >> 8, raw & 255], axis=1).ravel(), _BYTE_CDF)

    def decode(self, dec: RangeDecoder, rows) -> np.ndarray:
        """Decode one value per entry of ``rows`` (inverse of :meth:`encode`)."""
        r = np.asarray(rows, dtype=np.int64).ravel()
        if r.size == 0:
            return np.zeros(0, dtype=np.int64)
        sym = np.empty(r.size, dtype=np.int64)
        for row, pos in _by_row(r):
            sym[pos] = dec.decode(self._row_cdf(row), count=pos.size)
        esc = sym == self.sizes[r]
        out = sym + self.offsets[r]
        n = int(esc.sum())
        if n:
            raw = dec.decode(_BYTE_CDF, count=2 * n).reshape(n, 2)
            out[esc] = (raw[:, 0] << 8) + raw[:, 1] - ESCAPE_LIMIT
        return out

    def _row_cdf(self, row: int) -> np.ndarray:
        return self.cdfs[row, : self.sizes[row] + 2]

    def bits(self, values, rows) -> float:
        """Ideal code length (bits) of ``values`` under the integer tables (escapes included)."""
        v = np.asarray(values, dtype=np.int64).ravel()
        r = np.asarray(rows, dtype=np.int64).ravel()
        sym = v - self.offsets[r]
        esc = (sym < 0) | (sym >= self.sizes[r])
        sym = np.where(esc, self.sizes[r], sym)
        p = (self.cdfs[r, sym + 1] - self.cdfs[r, sym]) / float(1 << PRECISION)
        return float(-np.log2(p).sum() + 16.0 * esc.sum())

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays for storage: the rows' CDFs concatenated without padding."""
        flat = np.concatenate([self._row_cdf(i) for i in range(self.num_rows)])
        return {"cdf_flat": flat.astype(np.int32), "offsets": self.offsets.astype(np.int32),
                "sizes": self.sizes.astype(np.int32)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "TableSet":
        """Inverse of :meth:`to_arrays` (ValueError when inconsistent)."""
        try:
            flat = np.asarray(arrays["cdf_flat"], dtype=np.int64)
            offsets = np.asarray(arrays["offsets"], dtype=np.int64)
            sizes = np.asarray(arrays["sizes"], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"entropy tables lack '{e.args[0]}'") from None
        if sizes.ndim != 1 or offsets.shape != sizes.shape or flat.size != int((sizes + 2).sum()) or sizes.min() < 1:
            raise ValueError("inconsistent entropy table shapes")
        total = 1 << PRECISION
        cdfs = np.full((sizes.size, int(sizes.max()) + 2), total, dtype=np.int64)
        ends = np.cumsum(sizes + 2)
        for i, (a, b) in enumerate(zip(ends - sizes - 2, ends)):
            cdfs[i, : b - a] = flat[a:b]
        if np.any(cdfs[:, 0] != 0) or np.any(cdfs[:, -1] != total) or np.any(np.diff(cdfs, axis=1) < 0):
            raise ValueError("stored entropy tables are not valid CDFs")
        return cls(cdfs, offsets, sizes)


def _by_row(rows: np.ndarray):
    """``(row, positions)`` for each distinct row, in increasing row order (positions in order)."""
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    cuts = np.flatnonzero(np.diff(sorted_rows)) + 1
    for pos in np.split(order, cuts):
        yield int(rows[pos[0]]), pos


def build_tables(pmfs: list[np.ndarray], offsets, tail_masses) -> TableSet:
    """Tables from float PMFs: row ``r`` gets ``pmfs[r]`` (over ``offsets[r] + 0..n-1``) and an
    escape symbol of probability ``tail_masses[r]``; each row is quantized to ``2**PRECISION``
    with every symbol at least one unit (:func:`~.range_coder.quantize_pmf`)."""
    sizes = np.array([len(p) for p in pmfs], dtype=np.int64)
    width = int(sizes.max()) + 2
    total = 1 << PRECISION
    cdfs = np.full((len(pmfs), width), total, dtype=np.int64)
    for i, (p, tail) in enumerate(zip(pmfs, tail_masses)):
        p = np.clip(np.asarray(p, dtype=np.float64), 0.0, None)
        row = quantize_pmf(np.append(p, max(float(tail), 0.0)), PRECISION)
        cdfs[i, :row.size] = row
    return TableSet(cdfs, np.asarray(offsets, dtype=np.int64), sizes)
