"""File-level rate control of the CMRL / CQ codecs (codecs layer; not in the papers).

The trained quantizers and the export-time trim (:mod:`neurocodec.train.rate_trim`) put the
*average* file on the nominal bitrate; a single file still lands where its content and its
length put it: a new speaker codes a few percent dearer or cheaper, and the container's fixed
bytes (header, end marker, 8 bytes per chunk) weigh 0.5 kbps in a 1.7 s file.  With
``file_rate_control`` the encoder therefore picks, per chunk, a step of a ladder that
multiplies the rate module's quantizer step by ``2 ** (k / 32)`` (3/32 octave per step beyond 16
steps; :func:`~neurocodec.codecs.cascade_tables.rate_step_multiplier`; ``k`` travels in the
chunk's first byte) so that the whole file, framing included, fits the budget ``nominal x duration``.

:func:`plan_rate_steps` chooses the steps: the finest step ``k*`` that, used in every chunk,
fits the budget (a secant search of log bytes against the log step, over the integers,
keeping a bracket); then, chunk by chunk, one step finer while the budget allows; then one
more chunk one step finer if that lands closer to the budget (just over it) than stopping
does.  So a file lands within half a step of one chunk of its budget: 1-2% of a chunk's
bytes near the trained step for most shipped models.  (With 16 steps per octave single-chunk
files of CMRL 8.85 came out up to 5.3% under the budget; with one octave either side a 0.7 s
test file of CQ 20 stayed 6% over it.)  One step for the whole file is what a
rate-distortion optimum asks of a uniform scalar quantizer at high rate (equal slopes); the
chunk-wise refinement only spends what is left.

The knob is one module's step (``rate_module``: module 1 unless the export chose the module
that carries the bits, :meth:`~neurocodec.codecs.cascade.CascadeCodec.set_rate_module`), and
it needs the total rate to fall as that step grows.
It does not for CMRL 15.85, whose second module codes a residual of 0.04 bit/symbol with
tables that make every other symbol dear: a coarser module 1 hands module 2 a larger
residual, and the file grows (a 2.2 s validation file: 4,775 bytes at the trained step,
5,891 four steps coarser).  Files of that model that are dearer than nominal stay so (up to
+19% on the test split); the plan then keeps the smallest stream it tried.
"""

from __future__ import annotations

import math
from typing import Callable

from .cascade_tables import RATE_STEPS, rate_step_multiplier

__all__ = ["plan_rate_steps"]

#: first guess of d ln(bytes) / d ln(step multiplier): with fixed tables it was 1.4 for CMRL
#: 8.85 (one module carries the rate) and 0.45 for CQ 24 (module 2 takes up part of module 1's
#: coarser residual) on test files
_SLOPE_GUESS = -0.8


def plan_rate_steps(size: Callable[[int, int], int], num_chunks: int, budget: int,
                    steps: range = RATE_STEPS, multiplier: Callable[[int], float] = rate_step_multiplier,
                    start: int = 0) -> list[int]:
    """Ladder step of every chunk so that ``sum(size(chunk, step))`` lands as close to ``budget``
    bytes as one step of one chunk allows (see the module docstring).  ``size(chunk, step)`` is the
    payload size of a chunk coded at a step (larger steps are coarser: the size falls as the
    step grows, up to the noise of fixed entropy tables); ``multiplier(step)`` is the step's
    factor on the quantizer step, on whose logarithm the secant search interpolates.  When
    even the coarsest step is over the budget, every chunk gets the step of the smallest stream
    tried (the coarsest when the size falls monotonically); when even the finest fits, the
    finest.  ``start`` is the first step tried (the trained one)."""
    if num_chunks <= 0:
        return []
    lo, hi = steps.start, steps.stop - 1
    log_m = {k: math.log(multiplier(k)) for k in steps}
    totals: dict[int, int] = {}

    def total(k: int) -> int:
        if k not in totals:
            totals[k] = sum(size(c, k) for c in range(num_chunks))
        return totals[k]

    def nearest(x: float, up: bool) -> int:
        """The step just above (``up``) or below ``x`` on the log-multiplier axis."""
        if up:
            return next((k for k in steps if log_m[k] >= x), hi)
        return next((k for k in reversed(steps) if log_m[k] <= x), lo)

    fits, over = hi + 1, lo - 1  # smallest step known to fit, largest known to be over
    k = min(max(start, lo), hi)
    tried: list[int] = []
    while True:
        tried.append(k)
        if total(k) <= budget:
            fits = k
        else:
            over = k
        if over + 1 >= fits:
            break
        slope = _SLOPE_GUESS
        if len(tried) >= 2:
            a, b = tried[-2], tried[-1]
            s = (math.log(max(total(b), 1)) - math.log(max(total(a), 1))) / (log_m[b] - log_m[a])
            if s < 0:
                slope = s
        x = log_m[k] + (math.log(max(budget, 1)) - math.log(max(total(k), 1))) / slope
        # round towards the side still open, so that a good guess closes the bracket next
        k = nearest(x, up=total(k) > budget)
        k = min(max(k, over + 1), fits - 1)
    if fits > hi:  # nothing fits: the smallest stream tried (the coarsest, unless the rate rose again)
        return [min(totals, key=lambda k: (totals[k], -k))] * num_chunks
    plan = [fits] * num_chunks
    finer = fits - 1
    if finer in totals:  # the bracket evaluated every chunk one step finer
        used = total(fits)
        unfilled: list[tuple[int, int]] = []  # (extra bytes, chunk) of the chunks that did not fit
        for c in range(num_chunks):
            extra = size(c, finer) - size(c, fits)
            if used + extra <= budget:
                used += extra
                plan[c] = finer
            else:
                unfilled.append((extra, c))
        if unfilled:  # one more chunk finer, when that lands closer to the budget (just over it)
            extra, c = min(unfilled)
            if used + extra - budget < budget - used:
                plan[c] = finer
    return plan
