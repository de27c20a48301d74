"""The PEAQ basic-version neural network: 11 MOVs -> distortion index -> ODG.

ITU-R BS.1387-1, section 6.2 (neural network of the basic version): each MOV is
scaled to ``(x - a_min) / (a_max - a_min)`` with the Recommendation's scaling table for the
basic version, passed through one hidden layer of 3 sigmoid nodes,

    DI  = wy[3] + sum_j wy[j] sig(wx[3][j] + sum_i wx[i][j] x_i)
    ODG = b_min + (b_max - b_min) sig(DI),   sig(x) = 1 / (1 + e^-x),

with ``b_min = -3.98`` and ``b_max = 0.22``.  The constants below are the published values
of the Recommendation's tables (scaling factors ``a_min``/``a_max``, input weights ``wx``,
output weights ``wy``, basic version).  MOVs are not clipped to ``[a_min, a_max]``: the
Recommendation does not prescribe it (Kabal 2003 discusses it as an option).
"""

from __future__ import annotations

import numpy as np

from .averaging import MOV_NAMES

#: input scaling minima a_min, in MOV_NAMES order
A_MIN = np.array([393.916656, 361.965332, -24.045116, 1.110661, -0.206623, 0.074318,
                  1.113683, 0.950345, 0.029985, 0.000101, 0.0])
#: input scaling maxima a_max, in MOV_NAMES order
A_MAX = np.array([921.0, 881.131226, 16.212030, 107.137772, 2.886017, 13.933351,
                  63.257874, 1145.018555, 14.819740, 1.0, 1.0])
#: input-to-hidden weights wx[i][j] (11 MOVs x 3 hidden nodes)
W_INPUT = np.array([
    [-0.502657, 0.436333, 1.219602],
    [4.307481, 3.246017, 1.123743],
    [4.984241, -2.211189, -0.192096],
    [0.051056, -1.762424, 4.331315],
    [2.321580, 1.789971, -0.754560],
    [-5.303901, -3.452257, -10.814982],
    [2.730991, -6.111805, 1.519223],
    [0.624950, -1.331523, -5.955151],
    [3.102889, 0.871260, -5.922878],
    [-1.051468, -0.939882, -0.142913],
    [-1.804679, -0.503610, -0.620456],
])
#: hidden-node biases wx[11][j]
B_HIDDEN = np.array([-2.518254, 0.654841, -2.207228])
#: hidden-to-output weights wy[j] and output bias wy[3]
W_OUTPUT = np.array([-3.817048, 4.107138, 4.629582])
B_OUTPUT = -0.307594
#: ODG range of the output sigmoid
ODG_MIN = -3.98
ODG_MAX = 0.22


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def scale_movs(movs: dict[str, float] | np.ndarray) -> np.ndarray:
    """MOVs (dict keyed by :data:`MOV_NAMES` or an array in that order) scaled to ``[0, 1]``
    at the Recommendation's ``a_min``/``a_max``."""
    x = np.array([movs[k] for k in MOV_NAMES], dtype=np.float64) if isinstance(movs, dict) \
        else np.asarray(movs, dtype=np.float64)
    if x.shape[-1] != len(MOV_NAMES):
        raise ValueError(f"expected {len(MOV_NAMES)} MOVs, got {x.shape[-1]}")
    return (x - A_MIN) / (A_MAX - A_MIN)


def distortion_index(movs: dict[str, float] | np.ndarray) -> float:
    """Distortion index DI of the basic-version network for the 11 MOVs."""
    hidden = _sigmoid(B_HIDDEN + scale_movs(movs) @ W_INPUT)
    return float(B_OUTPUT + hidden @ W_OUTPUT)


def odg_from_di(di: float) -> float:
    """Objective difference grade ``b_min + (b_max - b_min) sig(DI)``, in (-3.98, 0.22)."""
    return float(ODG_MIN + (ODG_MAX - ODG_MIN) * _sigmoid(np.float64(di)))
