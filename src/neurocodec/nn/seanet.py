"""SEANet encoder/decoder of EnCodec (defossez2022 §3.1), whole-file and streaming.

The encoder is a convolution of ``C`` channels and kernel 7, then ``B`` blocks (a residual unit and
a strided down-sampling convolution of kernel ``2 * stride``, doubling the channels), a two-layer
LSTM with a skip connection and a final convolution of kernel 7 to ``D`` channels; ELU activations
throughout.  The decoder mirrors it with transposed convolutions and the strides in reverse order.

Two variants (§3.1):

* **streamable** (``causal=True``, ``norm="weight_norm"``): all padding before the first time step;
  a transposed convolution of stride ``s`` outputs its first ``s`` steps per input frame and keeps
  the remaining ``K - s`` as state;
* **non-streamable** (``causal=False``, ``norm="time_group_norm"``): the padding ``K - S`` is split
  around the signal (one more before when odd) and each convolution is followed by a layer norm
  whose statistics include the time axis (``GroupNorm(1, C)``).

Every convolution also pads the end of the signal so that the last window is full, as the
reference implementation does (so that a decoder can rebuild every sample); the padding mode is
``"reflect"`` (the reference models) or ``"constant"`` (zeros: a streaming encoder can then emit
its first frame as soon as its samples arrive).

Streaming: every layer has ``stream(x, state, final)`` that takes the next part of its input and
returns the part of its output that is determined by the input so far; ``state`` is the layer's own
dict (created empty by :func:`new_state`), and ``final=True`` ends the signal (the end padding is
applied and the rest is flushed).  Concatenating the streamed outputs gives exactly the whole-file
output (up to float rounding), which the tests check layer by layer and end to end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

NORMS = ("weight_norm", "time_group_norm", "none")
#: convolutions with at most this many output frames run as a matmul (streaming blocks)
SMALL_CONV = 8
#: stride-1 convolutions with at most this many output channels run as one GEMM (inference)
SMALL_OUT = 4
PAD_MODES = ("reflect", "constant")
#: strides whose convolutions run polyphase in whole-signal inference: stride 2 was 1.4-2.5x
#: faster than oneDNN's strided kernel on this CPU, the others within noise
#: (``python bench/bench_seanet_convs.py``)
POLYPHASE_STRIDES = (2,)


def new_state() -> dict[str, Any]:
    """An empty streaming state for one layer (layers fill in what they need)."""
    return {}


def _pad(x: torch.Tensor, left: int, right: int, mode: str) -> torch.Tensor:
    """Pad the last axis; reflect padding of a signal shorter than the padding first appends zeros
    (the reference's rule, so that very short inputs still code)."""
    if left == 0 and right == 0:
        return x
    if mode == "reflect":
        n = x.shape[-1]
        extra = max(left, right) - n + 1 if n <= max(left, right) else 0
        if extra:
            x = F.pad(x, (0, extra))
        y = _reflect(x, left, right)
        return y[..., :y.shape[-1] - extra]
    return F.pad(x, (left, right))


def _reflect(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """``F.pad(x, (left, right), mode="reflect")`` (needs ``left, right < length``) as one
    concatenation of flipped slices: the same values, several times faster on CPU."""
    parts = []
    if left:
        parts.append(x[..., 1:left + 1].flip(-1))
    parts.append(x)
    if right:
        parts.append(x[..., -right - 1:-1].flip(-1))
    return torch.cat(parts, -1)


def _elu_fresh(x: torch.Tensor) -> torch.Tensor:
    """ELU of a tensor nothing else holds (a layer's fresh output): in place in inference (no
    autograd), which saves allocating (and faulting in) a buffer of the signal's size."""
    return F.elu_(x) if not torch.is_grad_enabled() else F.elu(x)


def _inference() -> bool:
    """No autograd: the GEMM fast paths of whole-signal inference apply (with the module in eval mode)."""
    return not torch.is_grad_enabled()


def _pointwise(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None,
               acc: torch.Tensor | None = None) -> torch.Tensor:
    """A kernel-1 convolution ``(B, Cin, T) -> (B, Cout, T)`` as one batched GEMM (inference):
    ``bias + W x``, or ``acc += W x`` in place (the residual sum without a separate pass)."""
    wb = w[:, :, 0].expand(x.shape[0], -1, -1)
    if acc is not None:
        return acc.baddbmm_(wb, x)
    return torch.baddbmm(bias.view(1, -1, 1), wb, x)


def _few_outputs_conv(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor, dilation: int) -> torch.Tensor:
    """A stride-1 convolution with few output channels (the decoder's last layer: 32 -> 1) as one
    GEMM of every tap, ``Y = W' x`` with ``W'`` of shape ``(K * Cout, Cin)``, and the sum of the
    ``K`` shifted rows: oneDNN's kernels are slow for a single output channel."""
    cout, cin, k = w.shape
    y = torch.matmul(w.permute(2, 0, 1).reshape(k * cout, cin), x)  # (B, K * Cout, L)
    n = x.shape[-1] - (k - 1) * dilation
    out = y[:, :cout, :n] + bias.view(1, -1, 1)
    for j in range(1, k):
        out += y[:, j * cout:(j + 1) * cout, j * dilation:j * dilation + n]
    return out


def extra_padding(length: int, kernel: int, stride: int, padding_total: int) -> int:
    """Zeros/reflection appended so that the last window of a strided convolution is full."""
    n_frames = (length - kernel + padding_total) / stride + 1
    ideal = (math.ceil(n_frames) - 1) * stride + (kernel - padding_total)
    return ideal - length


class _WeightNormed(nn.Module):
    """Weight normalisation (Salimans & Kingma 2016): ``w = g * v / ||v||``, the norm taken over
    every axis but the first.  In inference (no grad, eval mode) the product is cached."""

    def _init_weight_norm(self, weight: torch.Tensor) -> None:
        self.weight_v = nn.Parameter(weight.detach().clone())
        dims = tuple(range(1, weight.dim()))
        self.weight_g = nn.Parameter(weight.detach().norm(dim=dims, keepdim=True).clone())
        self._cache: tuple | None = None

    def weight(self) -> torch.Tensor:
        v, g = self.weight_v, self.weight_g
        infer = not self.training and not torch.is_grad_enabled()
        if infer and self._cache is not None:
            key, w = self._cache
            if key == (v._version, g._version, v.data_ptr(), g.data_ptr()):
                return w
        dims = tuple(range(1, v.dim()))
        w = g * (v / v.norm(dim=dims, keepdim=True))
        if infer:
            self._cache = ((v._version, g._version, v.data_ptr(), g.data_ptr()), w)
        return w


class SConv1d(_WeightNormed):
    """1-D convolution with causal or centred padding, end padding, and its normalisation."""

    #: set on a decoder's layers (:class:`SeanetDecoder`): they stream with the whole-signal fast
    #: paths too; an encoder's layers keep one set of kernels, so that its bitstreams do not move
    decoding = False

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, dilation: int = 1,
                 causal: bool = True, norm: str = "weight_norm", pad_mode: str = "reflect"):
        super().__init__()
        if norm not in NORMS or pad_mode not in PAD_MODES:
            raise ValueError(f"bad norm {norm!r} or pad_mode {pad_mode!r}")
        self.kernel, self.stride, self.dilation = kernel, stride, dilation
        self.causal, self.norm_type, self.pad_mode = causal, norm, pad_mode
        conv = nn.Conv1d(in_ch, out_ch, kernel, stride, dilation=dilation)
        self.bias = nn.Parameter(conv.bias.detach().clone())
        if norm == "weight_norm":
            self._init_weight_norm(conv.weight)
        else:
            self.weight_raw = nn.Parameter(conv.weight.detach().clone())
        self.norm = nn.GroupNorm(1, out_ch) if norm == "time_group_norm" else None

    @property
    def effective_kernel(self) -> int:
        return (self.kernel - 1) * self.dilation + 1

    @property
    def padding_total(self) -> int:
        return (self.kernel - 1) * self.dilation - (self.stride - 1)

    def weight(self) -> torch.Tensor:  # type: ignore[override]
        return super().weight() if self.norm_type == "weight_norm" else self.weight_raw

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        keff = self.effective_kernel
        n_out = (x.shape[-1] - keff) // self.stride + 1 if x.shape[-1] >= keff else 0
        if 0 < n_out <= SMALL_CONV and self.norm is None:
            # a few output frames (streaming): im2col + one matmul instead of a conv1d call,
            # whose set-up costs far more than the arithmetic at this size
            cols = x.unfold(-1, keff, self.stride)[..., ::self.dilation]  # (B, Cin, n, K)
            w = self.weight()
            y = torch.matmul(cols.permute(0, 2, 1, 3).reshape(x.shape[0], n_out, -1), w.reshape(w.shape[0], -1).t())
            return (y + self.bias).transpose(1, 2)
        if self.decoding and n_out > 0 and self.stride == 1 and self.norm is None \
                and self.bias.shape[0] <= SMALL_OUT and not self.training and _inference():
            return _few_outputs_conv(x, self.weight(), self.bias, self.dilation)  # a decoder's last layer
        y = F.conv1d(x, self.weight(), self.bias, self.stride, 0, self.dilation)
        return self.norm(y) if self.norm is not None else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        infer = not self.training and _inference()
        if self.kernel == 1 and self.stride == 1 and infer:
            # whole-signal inference: one GEMM beats the generic 1x1 convolution on CPU (the
            # streaming path keeps conv1d, so streamed bitstreams do not change)
            y = _pointwise(x, self.weight(), self.bias)
            return self.norm(y) if self.norm is not None else y
        p = self.padding_total
        extra = extra_padding(x.shape[-1], self.kernel, self.stride, p)
        if self.causal:
            x = _pad(x, p, extra, self.pad_mode)
        else:
            right = p // 2
            x = _pad(x, p - right, right + extra, self.pad_mode)
        if infer and self.stride == 1 and self.norm is None and self.bias.shape[0] <= SMALL_OUT \
                and x.shape[-1] >= self.effective_kernel:
            return _few_outputs_conv(x, self.weight(), self.bias, self.dilation)
        if infer and self.stride in POLYPHASE_STRIDES and self.kernel % self.stride == 0 and self.dilation == 1 \
                and self.norm is None and x.shape[-1] >= self.kernel:
            return self._polyphase(x)
        return self._conv(x)

    def _polyphase(self, x: torch.Tensor) -> torch.Tensor:
        """A strided convolution of kernel ``m * stride`` in whole-signal inference as a stride-1
        convolution of kernel ``m`` over the ``stride`` phases of the input stacked as channels
        (``x'[c * s + r, t] = x[c, t * s + r]``, one reshaping copy): oneDNN's stride-2 kernel is
        several times slower than its stride-1 kernel on the same arithmetic."""
        s, m = self.stride, self.kernel // self.stride
        w = self.weight()  # (Cout, Cin, K)
        cache = getattr(self, "_poly_cache", None)
        if cache is None or cache[0] is not w or cache[1] != w._version:  # holds w: no address reuse
            cout, cin, _ = w.shape
            cache = (w, w._version, w.view(cout, cin, m, s).transpose(2, 3).reshape(cout, cin * s, m).contiguous())
            self._poly_cache = cache
        b, cin, length = x.shape
        n = (length - self.kernel) // s + 1
        xp = x[..., :(n + m - 1) * s].reshape(b, cin, n + m - 1, s).transpose(2, 3).reshape(b, cin * s, n + m - 1)
        return F.conv1d(xp, cache[2], self.bias)

    def stream(self, x: torch.Tensor, st: dict, final: bool = False) -> torch.Tensor:
        """Streaming version of :meth:`forward` (causal convolutions only)."""
        if not self.causal or self.norm is not None:
            raise ValueError("only causal convolutions without time statistics can stream")
        if self.decoding and self.kernel == 1 and self.stride == 1 and not self.training and _inference():
            return _pointwise(x, self.weight(), self.bias)  # no state
        p = self.padding_total
        if not st.get("started"):
            raw = x if st.get("raw") is None else torch.cat([st["raw"], x], -1)
            st["raw"] = raw
            need = p + 1 if self.pad_mode == "reflect" else 0
            if raw.shape[-1] < need or raw.shape[-1] == 0:
                if final:  # a signal shorter than the padding: exactly the whole-file path
                    st.clear()
                    return self.forward(raw) if raw.shape[-1] else raw.new_zeros(raw.shape[0], self.bias.shape[0], 0)
                return raw.new_zeros(raw.shape[0], self.bias.shape[0], 0)
            st["started"] = True
            st["total"] = raw.shape[-1]
            st["buf"] = _pad(raw, p, 0, self.pad_mode)
            del st["raw"]
        else:
            st["total"] += x.shape[-1]
            st["buf"] = torch.cat([st["buf"], x], -1)
        buf = st["buf"]
        if final:
            extra = extra_padding(st["total"], self.kernel, self.stride, p)
            buf = _pad(buf, 0, extra, self.pad_mode)
        keff, s = self.effective_kernel, self.stride
        n = (buf.shape[-1] - keff) // s + 1 if buf.shape[-1] >= keff else 0
        if n <= 0:
            st["buf"] = buf
            return buf.new_zeros(buf.shape[0], self.bias.shape[0], 0)
        y = self._conv(buf[..., :(n - 1) * s + keff])
        st["buf"] = buf[..., n * s:]
        if final:
            st.clear()
        return y


class SConvTranspose1d(_WeightNormed):
    """Transposed 1-D convolution; causal: the last ``K - S`` samples are trimmed (kept as state
    when streaming), non-causal: the trimming is split around the signal."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, causal: bool = True,
                 norm: str = "weight_norm"):
        super().__init__()
        self.kernel, self.stride, self.causal, self.norm_type = kernel, stride, causal, norm
        conv = nn.ConvTranspose1d(in_ch, out_ch, kernel, stride)
        self.bias = nn.Parameter(conv.bias.detach().clone())
        if norm == "weight_norm":
            self._init_weight_norm(conv.weight)
        else:
            self.weight_raw = nn.Parameter(conv.weight.detach().clone())
        self.norm = nn.GroupNorm(1, out_ch) if norm == "time_group_norm" else None

    def weight(self) -> torch.Tensor:  # type: ignore[override]
        return super().weight() if self.norm_type == "weight_norm" else self.weight_raw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.causal and self.norm is None and self.kernel % self.stride == 0 and not self.training \
                and _inference():
            return self._polyphase(x)
        y = F.conv_transpose1d(x, self.weight(), self.bias, self.stride)
        if self.norm is not None:
            y = self.norm(y)
        p = self.kernel - self.stride
        if self.causal:
            left, right = 0, p
        else:
            right = p // 2
            left = p - right
        return y[..., left:y.shape[-1] - right]

    def _polyphase(self, x: torch.Tensor) -> torch.Tensor:
        """The causal output (the first ``stride * T`` samples) in whole-signal inference as a
        convolution of kernel ``m = K / stride`` with ``stride * Cout`` outputs (phase ``r`` of
        output ``t * stride + r`` sums input frames ``t - j`` with taps ``j * stride + r``, j < m)
        and one interleaving copy: oneDNN's transposed convolution, and the copy of its result,
        cost more on CPU."""
        wp, bp = self._polyphase_weights()
        m = self.kernel // self.stride
        t = x.shape[-1]
        y = F.conv1d(x, wp, bp, padding=m - 1)[..., :t] if m > 1 else F.conv1d(x, wp, bp)
        return self._interleave(y)

    def _polyphase_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights ``(stride * Cout, Cin, m)`` and bias of the polyphase form (cached)."""
        w = self.weight()  # (Cin, Cout, K)
        cin, cout, k = w.shape
        s, m = self.stride, self.kernel // self.stride
        key = (w.data_ptr(), w._version, self.bias.data_ptr(), self.bias._version)
        cache = getattr(self, "_poly_cache", None)
        if cache is None or cache[0] != key:
            wp = w.view(cin, cout, m, s).permute(1, 3, 0, 2).flip(-1).reshape(cout * s, cin, m).contiguous()
            cache = (key, wp, self.bias.repeat_interleave(s))
            self._poly_cache = cache
        return cache[1], cache[2]

    def _interleave(self, y: torch.Tensor) -> torch.Tensor:
        """Phases ``(B, Cout * stride, T)`` -> signal ``(B, Cout, T * stride)``."""
        b, _, t = y.shape
        s = self.stride
        return y.reshape(b, -1, s, t).transpose(2, 3).reshape(b, -1, t * s)

    def _stream_polyphase(self, x: torch.Tensor, st: dict) -> torch.Tensor:
        """Streaming inference in the polyphase form: the last ``m - 1`` input frames are the
        state (zeros at the start, as the whole-signal path's padding); an output frame is complete
        as soon as its input frame has arrived."""
        wp, bp = self._polyphase_weights()
        m = self.kernel // self.stride
        if m > 1:
            hist = st.get("hist")
            if hist is None:
                hist = x.new_zeros(x.shape[0], x.shape[1], m - 1)
            x = torch.cat([hist, x], -1)
            st["hist"] = x[..., x.shape[-1] - (m - 1):]
        if x.shape[-1] == m:  # one output frame: a matmul (see SConv1d._conv)
            y = torch.matmul(x.reshape(x.shape[0], 1, -1), wp.reshape(wp.shape[0], -1).t()) + bp
            return self._interleave(y.transpose(1, 2))
        return self._interleave(F.conv1d(x, wp, bp))

    def stream(self, x: torch.Tensor, st: dict, final: bool = False) -> torch.Tensor:
        if not self.causal or self.norm is not None:
            raise ValueError("only causal transposed convolutions without time statistics can stream")
        n = x.shape[-1]
        out = x.new_zeros(x.shape[0], self.bias.shape[0], 0)
        if self.kernel % self.stride == 0 and not self.training and _inference():
            # inference (transposed convolutions are only in decoders, whose output need not be
            # bit-identical to anything): the polyphase form, several times faster than oneDNN's
            if n:
                out = self._stream_polyphase(x, st)
            if final:
                st.clear()
            return out
        if n:
            w = self.weight()
            if n == 1:  # one frame: a matmul (see SConv1d._conv)
                y = (x[:, :, 0] @ w.reshape(w.shape[0], -1)).view(x.shape[0], w.shape[1], w.shape[2])
            else:
                y = F.conv_transpose1d(x, w, None, self.stride)
            pend = st.get("pending")
            if pend is not None:
                y[..., :pend.shape[-1]] += pend
            out = y[..., :n * self.stride] + self.bias[:, None]
            st["pending"] = y[..., n * self.stride:]
        if final:
            st.clear()
        return out


class SLSTM(nn.Module):
    """Multi-layer LSTM over ``(B, C, T)`` with a skip connection (the output adds the input)."""

    def __init__(self, dim: int, num_layers: int = 2):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(2, 0, 1)
        y, _ = self.lstm(x)
        return (y + x).permute(1, 2, 0)

    decoding = False  # see SConv1d.decoding

    def stream(self, x: torch.Tensor, st: dict, final: bool = False) -> torch.Tensor:
        """Step by step with explicit gates (a one-step ``nn.LSTM`` call costs milliseconds of
        set-up on CPU); the state ``(h, c)`` of every layer carries over.  A decoder runs blocks
        of several frames through ``nn.LSTM`` from that state instead (faster, other kernels)."""
        if x.shape[-1] == 0:
            return x
        xt = x.permute(2, 0, 1)  # (T, B, C)
        if self.decoding and xt.shape[0] > 1 and not self.training and _inference():
            hcs = st.get("hc")
            if hcs is not None:
                h0 = torch.stack([h for h, _ in hcs])
                c0 = torch.stack([c for _, c in hcs])
                y, (hn, cn) = self.lstm(xt, (h0, c0))
            else:
                y, (hn, cn) = self.lstm(xt)
            st["hc"] = [(hn[i], cn[i]) for i in range(hn.shape[0])]
            if final:
                st.clear()
            return (y + xt).permute(1, 2, 0)
        inp = xt
        hcs = st.get("hc") or [None] * self.lstm.num_layers
        for layer in range(self.lstm.num_layers):
            w_ih = getattr(self.lstm, f"weight_ih_l{layer}")
            w_hh = getattr(self.lstm, f"weight_hh_l{layer}")
            b = getattr(self.lstm, f"bias_ih_l{layer}") + getattr(self.lstm, f"bias_hh_l{layer}")
            pre = torch.addmm(b, inp.reshape(-1, inp.shape[-1]), w_ih.t()).view(inp.shape[0], inp.shape[1], -1)
            if hcs[layer] is None:
                h = inp.new_zeros(inp.shape[1], w_hh.shape[1])
                c = inp.new_zeros(inp.shape[1], w_hh.shape[1])
            else:
                h, c = hcs[layer]
            outs = []
            for t in range(inp.shape[0]):
                g = pre[t] + h @ w_hh.t()
                i, f, gg, o = g.chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
                h = torch.sigmoid(o) * torch.tanh(c)
                outs.append(h)
            hcs[layer] = (h, c)
            inp = torch.stack(outs)
        st["hc"] = hcs
        if final:
            st.clear()
        return (inp + xt).permute(1, 2, 0)


class ResidualUnit(nn.Module):
    """ELU, conv (kernel 3, dilation d, to ``dim // compress``), ELU, conv (kernel 1), plus a skip
    (identity, or a 1x1 convolution as in the reference models)."""

    def __init__(self, dim: int, kernel: int = 3, dilation: int = 1, compress: int = 2, true_skip: bool = False,
                 causal: bool = True, norm: str = "weight_norm", pad_mode: str = "reflect"):
        super().__init__()
        hidden = dim // compress
        self.conv1 = SConv1d(dim, hidden, kernel, dilation=dilation, causal=causal, norm=norm, pad_mode=pad_mode)
        self.conv2 = SConv1d(hidden, dim, 1, causal=causal, norm=norm, pad_mode=pad_mode)
        self.shortcut = None if true_skip else SConv1d(dim, dim, 1, causal=causal, norm=norm, pad_mode=pad_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = _elu_fresh(self.conv1(F.elu(x)))
        if self.shortcut is not None and self.conv2.norm is None and self.shortcut.norm is None \
                and not self.training and _inference():
            # inference: shortcut(x) + conv2(h) as two GEMMs into one buffer (both are 1x1)
            out = _pointwise(x, self.shortcut.weight(), self.shortcut.bias + self.conv2.bias)
            return _pointwise(h, self.conv2.weight(), None, acc=out)
        y = self.conv2(h)
        return (x if self.shortcut is None else self.shortcut(x)) + y

    def stream(self, x: torch.Tensor, st: dict, final: bool = False) -> torch.Tensor:
        s = x if self.shortcut is None else self.shortcut.stream(x, st.setdefault("sc", {}), final)
        y = self.conv1.stream(F.elu(x), st.setdefault("c1", {}), final)
        y = self.conv2.stream(_elu_fresh(y), st.setdefault("c2", {}), final)
        skip = s if st.get("skip") is None else torch.cat([st["skip"], s], -1)
        n = y.shape[-1]
        st["skip"] = skip[..., n:]
        out = skip[..., :n] + y
        if final:
            st.clear()
        return out


@dataclass(frozen=True)
class SeanetConfig:
    """Shape of a SEANet encoder/decoder pair (defaults: EnCodec 24 kHz, §3.1)."""

    channels: int = 1
    dimension: int = 128
    n_filters: int = 32
    n_residual_layers: int = 1
    ratios: tuple[int, ...] = (8, 5, 4, 2)  # decoder order; the encoder uses them reversed
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    causal: bool = True
    norm: str = "weight_norm"
    pad_mode: str = "reflect"
    true_skip: bool = False
    compress: int = 2
    lstm_layers: int = 2

    @property
    def hop_length(self) -> int:
        return int(math.prod(self.ratios))


def _stream_seq(layers, x: torch.Tensor, st: dict, final: bool) -> torch.Tensor:
    for i, layer in enumerate(layers):
        if layer is None:  # an ELU follows a layer, whose streamed output is fresh
            x = _elu_fresh(x)
        else:
            x = layer.stream(x, st.setdefault(i, {}), final)
    return x


class SeanetEncoder(nn.Module):
    """Waveform ``(B, channels, T)`` -> latent ``(B, D, ceil(T / hop))``."""

    def __init__(self, cfg: SeanetConfig):
        super().__init__()
        self.cfg = cfg
        kw = dict(causal=cfg.causal, norm=cfg.norm, pad_mode=cfg.pad_mode)
        c = cfg.n_filters
        self.input_conv = SConv1d(cfg.channels, c, cfg.kernel_size, **kw)
        self.res_units = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for ratio in reversed(cfg.ratios):
            self.res_units.append(nn.ModuleList([
                ResidualUnit(c, cfg.residual_kernel_size, cfg.dilation_base ** j, cfg.compress, cfg.true_skip, **kw)
                for j in range(cfg.n_residual_layers)]))
            self.downsample.append(SConv1d(c, 2 * c, 2 * ratio, ratio, **kw))
            c *= 2
        self.lstm = SLSTM(c, cfg.lstm_layers) if cfg.lstm_layers else None
        self.output_conv = SConv1d(c, cfg.dimension, cfg.last_kernel_size, **kw)

    def _layers(self) -> list:
        out: list = [self.input_conv]
        for units, down in zip(self.res_units, self.downsample):
            out += list(units) + [None, down]
        if self.lstm is not None:
            out.append(self.lstm)
        return out + [None, self.output_conv]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self._layers():  # an ELU always follows a layer (its output is fresh)
            x = _elu_fresh(x) if layer is None else layer(x)
        return x

    def stream(self, x: torch.Tensor, st: dict, final: bool = False) -> torch.Tensor:
        return _stream_seq(self._layers(), x, st, final)


class SeanetDecoder(nn.Module):
    """Latent ``(B, D, F)`` -> waveform ``(B, channels, F * hop)``."""

    def __init__(self, cfg: SeanetConfig):
        super().__init__()
        self.cfg = cfg
        kw = dict(causal=cfg.causal, norm=cfg.norm, pad_mode=cfg.pad_mode)
        c = cfg.n_filters * 2 ** len(cfg.ratios)
        self.input_conv = SConv1d(cfg.dimension, c, cfg.kernel_size, **kw)
        self.lstm = SLSTM(c, cfg.lstm_layers) if cfg.lstm_layers else None
        self.upsample = nn.ModuleList()
        self.res_units = nn.ModuleList()
        for ratio in cfg.ratios:
            self.upsample.append(SConvTranspose1d(c, c // 2, 2 * ratio, ratio, causal=cfg.causal, norm=cfg.norm))
            c //= 2
            self.res_units.append(nn.ModuleList([
                ResidualUnit(c, cfg.residual_kernel_size, cfg.dilation_base ** j, cfg.compress, cfg.true_skip, **kw)
                for j in range(cfg.n_residual_layers)]))
        self.output_conv = SConv1d(c, cfg.channels, cfg.last_kernel_size, **kw)
        for m in self.modules():
            if isinstance(m, (SConv1d, SLSTM)):
                m.decoding = True

    def _layers(self) -> list:
        out: list = [self.input_conv]
        if self.lstm is not None:
            out.append(self.lstm)
        for up, units in zip(self.upsample, self.res_units):
            out += [None, up] + list(units)
        return out + [None, self.output_conv]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self._layers():  # an ELU always follows a layer (its output is fresh)
            z = _elu_fresh(z) if layer is None else layer(z)
        return z

    def stream(self, z: torch.Tensor, st: dict, final: bool = False) -> torch.Tensor:
        return _stream_seq(self._layers(), z, st, final)
