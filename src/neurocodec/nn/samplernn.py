"""Four-tier conditional SampleRNN of fejgin2020 §3.2 (after Mehri et al. [6] and Klejsa et al. [2]).

The model factorises ``p(x | y) = prod_t p(x_t | x_<t, y)`` (eq. 4).  ``y`` is what the MDCT
decoder (``codecs/mdct.py``, ``decode_detailed``) gives: the decoded waveform ``xhat`` and the
quantized band envelope ``i_env``.

Tiers (frame sizes ``TS(1..4)``: speech 2, 2, 16, 160; piano 8, 8, 64, 320):

* tier k = 4, 3, 2 is a GRU that steps once per frame of ``TS(k)`` samples.  Frame ``f`` covers
  samples ``[f TS(k), (f+1) TS(k))``; its input is the *previous* frame of samples
  ``x[(f-1) TS(k) : f TS(k)]`` (linear), plus the output of the tier above for this frame, plus
  the conditioning (below).  Its output is upsampled by a linear layer into
  ``TS(k) / TS(k-1)`` vectors, one per frame of the tier below (tier 2: one per sample).
* tier 1 is the sample-level MLP (3 layers, ReLU): for sample ``t`` it sees the ``TS(1)``
  previous samples ``x[t - TS(1) : t]``, tier 2's vector for ``t``, the conditioning, and the
  coded waveform through a 319-tap convolution centred on ``t`` (§3.2).  It outputs a
  discretized mixture of ``L`` logistics over 16-bit PCM (:mod:`.logistic_mixture`) whose means
  are offsets from the coded sample ``xhat[t]`` (our choice: the untrained model starts as
  "coded waveform plus noise", the log-scales start at -5, about the coding error at 16 kbps,
  which makes the short CPU training budget go much further).

Conditioning (§3.2, "provided to each tier through convolutional layers"): per codec block
``b`` (samples ``[320 b, 320 (b+1))``) the features are the 320 decoded samples of the block
and the envelopes of the two MDCT frames that overlap it (``i_env`` of frames ``b`` and
``b+1``, frame ``j`` covering ``[320 (j-1), 320 (j+1))``).  A 3x1 convolution over blocks
``b, b+1, b+2`` (two codec frames of look-ahead) and a 1x1 convolution give a vector per
block, which every tier adds (through its own linear map) to its input; each GRU tier also
sees the decoded samples of its own frame and the next one through a strided convolution.
So a prediction in block ``b`` sees decoded samples up to the end of block ``b+2`` and MDCT
frames up to ``b+3`` -- exactly what the ``mdct`` decoder needs to output block ``b+2``
(tested).
The conditioning is never autoregressive, so it is computed for the whole signal at once
(:meth:`SampleRnn.precompute`), and generation only runs the recurrent part
(:mod:`.samplernn_kernel`).

Array layout used throughout (``NB`` blocks, ``T = 320 NB`` samples to predict, ``P = TS(4)``):

* ``x``: ``(B, P + T)`` -- ``P`` samples of history (zeros at the start of a signal), then the
  samples to predict (16-bit grid values ``v / 32768``);
* ``xhat``: ``(B, 320 + T + 640)`` -- decoded samples from one block before to two blocks after;
* ``env``: ``(B, NB + 3, N)`` -- ``i_env`` of MDCT frames ``b0 .. b0 + NB + 2``.

Widths are not given in the paper; :class:`SampleRnnConfig` chooses them (bench/bench_samplernn.py
measures the speed of several).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from . import logistic_mixture as dmol

__all__ = ["SampleRnnConfig", "SampleRnn", "Precomputed", "pad_conditioning", "tier_input_frames"]


@dataclass(frozen=True)
class SampleRnnConfig:
    """Hyper-parameters.  ``frame_sizes``: ``TS(1..4)`` (fejgin2020 §4.1); ``num_logistics``:
    ``L``; ``rnn_width``: hidden size of the three GRU tiers; ``mlp_width``: sample-level MLP;
    ``cond_width``: per-block conditioning vector; ``hop``: codec block (320 at 16 kHz);
    ``num_bands``: envelope bands; ``coded_taps``: the MLP's convolution over the coded
    waveform (319, centred); ``input_gain``: waveforms are multiplied by it before the
    linear input layers; ``env_scale``: ``i_env`` is multiplied by it; ``env_floor``: ``i_env``
    used where the signal has no frame (padding)."""

    frame_sizes: tuple[int, int, int, int] = (2, 2, 16, 160)
    num_logistics: int = 10
    rnn_width: int = 64
    mlp_width: int = 64
    cond_width: int = 64
    hop: int = 320
    num_bands: int = 16
    coded_taps: int = 319
    input_gain: float = 4.0
    env_scale: float = 0.1
    env_floor: int = -36

    def __post_init__(self) -> None:
        ts = tuple(int(v) for v in self.frame_sizes)
        object.__setattr__(self, "frame_sizes", ts)
        if len(ts) != 4 or min(ts) < 1:
            raise ValueError("frame_sizes needs four positive sizes TS(1..4)")
        if self.hop % ts[3] or ts[3] % ts[2] or ts[2] % ts[1]:
            raise ValueError("hop must be a multiple of TS(4), TS(4) of TS(3), TS(3) of TS(2)")
        if ts[0] > ts[3]:
            raise ValueError("TS(1) must not exceed TS(4) (the history length)")
        if self.coded_taps % 2 != 1 or self.coded_taps > 2 * self.hop - 1:
            raise ValueError("coded_taps must be odd and below 2 hop")

    @classmethod
    def speech(cls, **kw) -> "SampleRnnConfig":
        """fejgin2020 §4.1 speech: TS = 2, 2, 16, 160, L = 10."""
        return cls(frame_sizes=(2, 2, 16, 160), num_logistics=10, **kw)

    @classmethod
    def piano(cls, **kw) -> "SampleRnnConfig":
        """fejgin2020 §4.1 piano: TS = 8, 8, 64, 320, L = 1."""
        return cls(frame_sizes=(8, 8, 64, 320), num_logistics=1, **kw)

    @property
    def history(self) -> int:
        """Samples of history before the first predicted sample (``TS(4)``)."""
        return self.frame_sizes[3]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["frame_sizes"] = list(self.frame_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SampleRnnConfig":
        d = dict(d)
        d["frame_sizes"] = tuple(d["frame_sizes"])
        return cls(**d)


def pad_conditioning(xhat: np.ndarray, env: np.ndarray, cfg: SampleRnnConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """Lay out one channel's decoded waveform ``(T,)`` and envelope ``(F, N)`` for the whole
    signal: returns ``(xhat (320 + 320 NB + 640,), env (NB + 3, N), NB)`` with
    ``NB = ceil(T / 320)`` (zeros / ``env_floor`` where the signal has none)."""
    hop = cfg.hop
    xhat = np.asarray(xhat, dtype=np.float32)
    nb = max(1, math.ceil(xhat.shape[-1] / hop))
    xp = np.zeros(hop + nb * hop + 2 * hop, dtype=np.float32)
    xp[hop:hop + xhat.shape[-1]] = xhat
    ep = np.full((nb + 3, cfg.num_bands), cfg.env_floor, dtype=np.float32)
    n = min(env.shape[0], nb + 3)
    ep[:n] = env[:n]
    return xp, ep, nb


def tier_input_frames(x: torch.Tensor, size: int, history: int, num_frames: int) -> torch.Tensor:
    """Inputs of a tier with frame size ``size``: frame ``f`` gets the previous frame
    ``x[t0 + (f-1) size : t0 + f size]`` (``t0 = history``, the first predicted sample);
    ``(B, num_frames, size)``."""
    start = history - size
    return x[:, start:start + num_frames * size].reshape(x.shape[0], num_frames, size)


@dataclass
class Precomputed:
    """Everything about a signal that does not depend on the generated samples: the additive
    input of each GRU tier per frame (``tier_inputs[i]``: ``(B, frames, H)`` for tiers 4, 3, 2)
    and of the MLP's first layer per sample (``mlp_input``: ``(B, T, Hm)``), and the coded
    samples the logistic means are offsets from (``coded``: ``(B, T)``)."""

    tier_inputs: list[torch.Tensor]
    mlp_input: torch.Tensor
    coded: torch.Tensor
    num_samples: int = 0
    extras: dict = field(default_factory=dict)


class _Tier(nn.Module):
    def __init__(self, cfg: SampleRnnConfig, size: int, out_count: int, out_width: int):
        super().__init__()
        h = cfg.rnn_width
        self.size = size
        self.in_x = nn.Linear(size, h)
        self.cond = nn.Linear(cfg.cond_width, h, bias=False)
        self.coded = nn.Conv1d(1, h, 2 * size, stride=size, bias=False)
        self.gru = nn.GRU(h, h, batch_first=True)
        self.up = nn.Linear(h, out_count * out_width)
        self.out_count, self.out_width = out_count, out_width


class SampleRnn(nn.Module):
    """Conditional four-tier SampleRNN (module docstring).  ``forward`` is the teacher-forced
    pass used for training and for checking generation; :meth:`precompute` gives the
    conditioning part that generation needs."""

    def __init__(self, config: SampleRnnConfig | None = None):
        super().__init__()
        cfg = self.config = config or SampleRnnConfig()
        ts = cfg.frame_sizes
        hc, h, hm = cfg.cond_width, cfg.rnn_width, cfg.mlp_width
        d = cfg.hop + 2 * cfg.num_bands
        self.cond_conv = nn.Conv1d(d, hc, 3)        # blocks b, b+1, b+2: two frames of look-ahead
        self.cond_mix = nn.Conv1d(hc, hc, 1)
        # tiers 4, 3, 2 (index 0, 1, 2); tier k's output feeds tier k-1 (tier 2's: one per sample)
        self.tiers = nn.ModuleList([
            _Tier(cfg, ts[3], ts[3] // ts[2], h),
            _Tier(cfg, ts[2], ts[2] // ts[1], h),
            _Tier(cfg, ts[1], ts[1], hm),
        ])
        self.mlp_x = nn.Linear(ts[0], hm, bias=False)
        self.mlp_cond = nn.Linear(hc, hm)
        self.mlp_coded = nn.Conv1d(1, hm, cfg.coded_taps, bias=False)
        self.mlp_2 = nn.Linear(hm, hm)
        self.mlp_3 = nn.Linear(hm, hm)
        self.mlp_out = nn.Linear(hm, dmol.num_params(cfg.num_logistics))
        with torch.no_grad():
            L = cfg.num_logistics
            self.mlp_out.weight[L:].mul_(0.1)
            self.mlp_out.bias[L:2 * L].zero_()
            self.mlp_out.bias[2 * L:].fill_(-5.0)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- conditioning -----------------------------------------------------------------------
    def block_conditioning(self, xhat: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
        """Per-block conditioning vectors ``(B, NB, Hc)`` (3x1 conv over blocks b..b+2)."""
        cfg = self.config
        hop = cfg.hop
        nb = env.shape[1] - 3
        blocks = xhat[:, hop:hop + (nb + 2) * hop].reshape(xhat.shape[0], nb + 2, hop) * cfg.input_gain
        e = env * cfg.env_scale
        feats = torch.cat([blocks, e[:, :nb + 2], e[:, 1:nb + 3]], dim=-1).transpose(1, 2)
        c = F.relu(self.cond_conv(feats))
        return F.relu(self.cond_mix(c)).transpose(1, 2)

    def precompute(self, xhat: torch.Tensor, env: torch.Tensor) -> Precomputed:
        """The non-autoregressive part for ``NB = env.shape[1] - 3`` blocks (module docstring
        layout): per-frame GRU inputs and per-sample MLP inputs, biases included."""
        cfg = self.config
        hop = cfg.hop
        nb = env.shape[1] - 3
        T = nb * hop
        c = self.block_conditioning(xhat, env)                       # (B, NB, Hc)
        xg = xhat.unsqueeze(1) * cfg.input_gain
        tier_inputs = []
        for tier in self.tiers:
            per_block = hop // tier.size
            cond = tier.cond(c).repeat_interleave(per_block, dim=1)  # (B, frames, H)
            coded = tier.coded(xg[:, :, hop:hop + T + tier.size]).transpose(1, 2)
            tier_inputs.append(cond + coded + tier.in_x.bias)
        half = cfg.coded_taps // 2
        coded = self.mlp_coded(xg[:, :, hop - half:hop + T + half]).transpose(1, 2)
        mlp_in = coded + self.mlp_cond(c).repeat_interleave(hop, dim=1)
        return Precomputed(tier_inputs, mlp_in, xhat[:, hop:hop + T], T)

    # -- teacher-forced pass ------------------------------------------------------------------
    def forward(self, x: torch.Tensor, xhat: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
        """Mixture parameters ``(B, T, 3L)`` predicting ``x[:, P + t]`` from ``x[:, :P + t]`` and
        the conditioning (layout in the module docstring)."""
        cfg = self.config
        pre = self.precompute(xhat, env)
        T, P, g = pre.num_samples, cfg.history, cfg.input_gain
        above = None
        for tier, base in zip(self.tiers, pre.tier_inputs):
            n = T // tier.size
            u = base + F.linear(tier_input_frames(x, tier.size, P, n) * g, tier.in_x.weight)
            if above is not None:
                u = u + above
            h, _ = tier.gru(u)
            above = tier.up(h).reshape(x.shape[0], n * tier.out_count, tier.out_width)
        prev = x[:, P - cfg.frame_sizes[0]:P + T - 1].unfold(1, cfg.frame_sizes[0], 1) * g  # (B, T, TS1)
        h = F.relu(pre.mlp_input + above + self.mlp_x(prev))
        h = F.relu(self.mlp_2(h))
        h = F.relu(self.mlp_3(h))
        # the output layer and the mixture stay float32 under autocast: a bf16 logistic mean would
        # be off by about one 16-bit step, a bf16 log-scale by 1-2 %
        with torch.autocast(x.device.type, enabled=False):
            out = self.mlp_out(h.float())
        L = cfg.num_logistics
        return torch.cat([out[..., :L], out[..., L:2 * L] + pre.coded.unsqueeze(-1), out[..., 2 * L:]], dim=-1)

    def nll(self, x: torch.Tensor, xhat: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per sample in nats (fejgin2020 §3.2 training loss)."""
        params = self.forward(x, xhat, env)
        target = x[:, self.config.history:]
        return -dmol.log_prob(target, params).mean()

    # -- export for the generation kernel -----------------------------------------------------
    def kernel_weights(self) -> dict[str, np.ndarray]:
        """Float32 numpy copies of the weights the generation loop needs."""
        out = {}
        with torch.no_grad():
            for i, tier in enumerate(self.tiers):
                out[f"t{i}_wx"] = tier.in_x.weight
                out[f"t{i}_wih"] = tier.gru.weight_ih_l0
                out[f"t{i}_bih"] = tier.gru.bias_ih_l0
                out[f"t{i}_whh"] = tier.gru.weight_hh_l0
                out[f"t{i}_bhh"] = tier.gru.bias_hh_l0
                out[f"t{i}_wup"] = tier.up.weight
                out[f"t{i}_bup"] = tier.up.bias
            out["m_wx"] = self.mlp_x.weight
            out["m_w2"], out["m_b2"] = self.mlp_2.weight, self.mlp_2.bias
            out["m_w3"], out["m_b3"] = self.mlp_3.weight, self.mlp_3.bias
            out["m_wo"], out["m_bo"] = self.mlp_out.weight, self.mlp_out.bias
            return {k: np.ascontiguousarray(v.detach().float().cpu().numpy()) for k, v in out.items()}

    # -- generation ------------------------------------------------------------------------------
    def generate(self, xhat: np.ndarray, env: np.ndarray, uniforms: np.ndarray, keep_params: bool = False,
                 state=None):
        """Sample ``R`` realizations of ``NB = env.shape[0] - 3`` blocks laid out by
        :func:`pad_conditioning` (``xhat``: ``(320 + T + 640,)``, ``env``: ``(NB + 3, N)``);
        ``uniforms``: ``(R, 2, T)`` in (0, 1); ``state``: a
        :class:`~neurocodec.nn.samplernn_kernel.GenState` to continue from (a later segment of the
        same signal).  Returns ``(samples (R, T) float32 on the 16-bit grid, mixture parameters
        or None, state)`` (see :mod:`.samplernn_kernel`)."""
        from .samplernn_kernel import generate as run_kernel

        cfg = self.config
        with torch.no_grad():
            pre = self.precompute(torch.as_tensor(xhat, dtype=torch.float32)[None],
                                  torch.as_tensor(env, dtype=torch.float32)[None])
            tiers = [t[0].numpy() for t in pre.tier_inputs]
            mlp_in, coded = pre.mlp_input[0].numpy(), pre.coded[0].numpy()
        if getattr(self, "_kernel_weights", None) is None or self.training:
            self._kernel_weights = self.kernel_weights()
        return run_kernel(self._kernel_weights, cfg.frame_sizes, cfg.input_gain, tiers, mlp_in, coded, uniforms,
                          keep_params, state)
