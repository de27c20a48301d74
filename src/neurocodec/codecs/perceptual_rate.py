"""File-level rate control of the byun2023 coder (codecs layer; not in the paper).

A trained operating point codes ``round(g * z)`` with one quantizer scale ``g`` (``code_scale``,
set by the export-time trim so that the *total* of some validation files lands on the nominal
rate).  Single files land where their content puts them: on the test split of the shipped
HPM models, 5-19 % under the nominal rate (the hyper-latent, hence the side information and the
predicted scales, follows the signal).  With ``file_rate_control`` the encoder therefore codes
every chunk with a scale of a fixed grid,

    ``g_k = code_scale * 2 ** (k / 16)``,  ``k`` in :data:`GRID` (-48 .. 48: 1/8 to 8 times),

and chooses the ``k`` of each chunk from the real range-coded sizes so that the payload fits the
budget ``bitrate x duration`` (what ``neurocodec.api`` leaves of it after the container's
header and per-chunk framing).  The search is :func:`~neurocodec.codecs.cascade_rate.plan_rate_steps`
(the CMRL/CQ planner): the finest ``k`` that fits the budget in every chunk (a secant search on
log bytes over the integers, keeping a bracket), then chunks one index finer while the budget
allows, then one more chunk if that lands closer to the budget.  One index moves a chunk's
latent rate by 1/16 bit per value at high rate (0.53 kbps with 8,533 latent values per second),
so a file lands within a fraction of that of its budget unless the grid's end is reached (a
file whose side information alone exceeds the budget, digital silence).

**Stream (codec version 2).**  A chunk is one byte ``k + GRID_OFFSET`` followed by the
range-coded message of version 1 (whole 32-bit words), so its length is ``1 (mod 4)``; a
version-1 chunk (whole words, ``0 (mod 4)``) decodes at ``k = 0``.  Any other length, or a first
byte outside the grid, is a :class:`~neurocodec.errors.CorruptStreamError`.  The index only
changes ``g``: the HPM codes ``round(g z - g mu)`` with the tabulated Gaussian of ``g sigma``
(same tables, another scale index); the FEM's integer tables depend on ``g`` and are built once
per grid index used (float64, :meth:`~neurocodec.entropy.factorized.FactorizedDensity.tables`;
``k = 0`` uses the tables stored with the weights).  ``g_k`` is computed from exact constants
(:data:`_FRACTIONS`, the correctly rounded ``2 ** (j / 16)``) and ``math.ldexp``, so both ends
get the same double on any machine.
"""

from __future__ import annotations

import math
from typing import Callable

from ..errors import CorruptStreamError
from .cascade_rate import plan_rate_steps

__all__ = ["GRID", "GRID_OFFSET", "STEPS_PER_OCTAVE", "grid_multiplier", "grid_scale", "index_byte",
           "split_chunk", "plan_grid_indexes"]

#: grid indexes per doubling of ``g``
STEPS_PER_OCTAVE = 16
#: grid indexes ``k`` a chunk may use (``g = code_scale * 2 ** (k / 16)``: 1/8 to 8 times)
GRID = range(-48, 49)
#: the chunk's first byte is ``k + GRID_OFFSET`` (0 .. 96)
GRID_OFFSET = 48

#: ``2 ** (j / 16)`` for ``j = 0 .. 15``, correctly rounded (checked in the tests against decimal
#: arithmetic): literal constants, so that ``g`` does not depend on the platform's ``pow``
_FRACTIONS = tuple(float.fromhex(h) for h in (
    "0x1.0000000000000p+0", "0x1.0b5586cf9890fp+0", "0x1.172b83c7d517bp+0", "0x1.2387a6e756238p+0",
    "0x1.306fe0a31b715p+0", "0x1.3dea64c123422p+0", "0x1.4bfdad5362a27p+0", "0x1.5ab07dd485429p+0",
    "0x1.6a09e667f3bcdp+0", "0x1.7a11473eb0187p+0", "0x1.8ace5422aa0dbp+0", "0x1.9c49182a3f090p+0",
    "0x1.ae89f995ad3adp+0", "0x1.c199bdd85529cp+0", "0x1.d5818dcfba487p+0", "0x1.ea4afa2a490dap+0"))


def _check(k: int) -> int:
    if int(k) != k or int(k) not in GRID:
        raise ValueError(f"rate grid index {k} is outside {GRID.start}..{GRID.stop - 1}")
    return int(k)


def grid_multiplier(k: int) -> float:
    """``2 ** (k / 16)`` (exact constants, see the module doc)."""
    e, j = divmod(_check(k), STEPS_PER_OCTAVE)
    return math.ldexp(_FRACTIONS[j], e)


def grid_scale(code_scale: float, k: int) -> float:
    """The quantizer scale ``g`` of grid index ``k``: ``code_scale * 2 ** (k / 16)``."""
    return float(code_scale) * grid_multiplier(k)


def index_byte(k: int) -> bytes:
    """The first byte of a version-2 chunk coded at grid index ``k``."""
    return bytes([_check(k) + GRID_OFFSET])


def split_chunk(data: bytes) -> tuple[int, bytes]:
    """``(k, range-coded message)`` of a chunk: version 2 (a grid byte, then whole 32-bit words)
    or version 1 (whole words, ``k = 0``); :class:`CorruptStreamError` otherwise."""
    data = bytes(data)
    rest = len(data) % 4
    if rest == 0:
        return 0, data
    if rest != 1:
        raise CorruptStreamError(f"perceptual chunk of {len(data)} bytes is neither whole 32-bit words nor a "
                                 "rate index and whole words")
    k = data[0] - GRID_OFFSET
    if k not in GRID:
        raise CorruptStreamError(f"perceptual chunk has rate index {data[0]} (valid: 0..{len(GRID) - 1})")
    return k, data[1:]


def plan_grid_indexes(size: Callable[[int, int], int], num_chunks: int, budget: int) -> list[int]:
    """Grid index of every chunk so that ``sum(size(chunk, k))`` (bytes; growing with ``k``)
    lands as close to ``budget`` as one index of one chunk allows, not over it unless that is
    closer (:func:`~neurocodec.codecs.cascade_rate.plan_rate_steps` on the coarseness ``-k``)."""
    steps = range(-(GRID.stop - 1), -GRID.start + 1)
    plan = plan_rate_steps(lambda c, s: size(c, -s), num_chunks, int(budget), steps=steps,
                           multiplier=lambda s: 1.0 / grid_multiplier(-s))
    return [-s for s in plan]
