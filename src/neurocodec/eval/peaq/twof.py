"""The 2f-model: a MUSHRA-scale quality estimate from two PEAQ basic MOVs.

T. Kastner and J. Herre, "An efficient model for estimating subjective quality of separated
audio source signals", IEEE WASPAA 2019 (reference implementation published by
AudioLabs Erlangen, resources/2019-WASPAA-SEBASS), evaluated for codecs and other
applications in M. Torcoli, T. Kastner and J. Herre, "Objective measures of perceptual
audio quality reviewed", IEEE/ACM TASLP 29, 2021 (reference [27] of byun2023):

    MMS = 56.1345 / (1 + (-0.0282 AvgModDiff1 - 0.8628)^2) - 27.1451 ADB + 86.3515

with ``AvgModDiff1`` = AvgModDiff1_B and ``ADB`` = ADB_B of PEAQ basic.  The regression can
leave the MUSHRA range, so the score is clipped to [0, 100] (as Torcoli et al. report it).
"""

from __future__ import annotations

import numpy as np


def twof_from_movs(avg_mod_diff1: float, adb: float, clip: bool = True) -> float:
    """2f-model score (estimated mean MUSHRA score) from ``AvgModDiff1_B`` and ``ADB_B``."""
    score = 56.1345 / (1.0 + (-0.0282 * avg_mod_diff1 - 0.8628) ** 2) - 27.1451 * adb + 86.3515
    return float(np.clip(score, 0.0, 100.0)) if clip else float(score)
