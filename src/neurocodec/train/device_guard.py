"""Catch, on a CPU-only machine, the two mistakes that only a GPU run used to reveal.

1. **A tensor made on the CPU meets one on the training device.**  On CUDA,
   ``torch.cat([cuda_tensor, torch.full((b, 6), -inf)])`` raises "Expected all tensors to be on
   the same device"; on the CPU it silently works, so such a line passes every CPU test.
   :class:`DeviceGuard` (a :class:`torch.overrides.TorchFunctionMode`) gives every tensor a
   *place* while a training step runs on the CPU:

   - ``"device"``: what was moved there (``.to(device)``, ``module.to(device)``: the model's
     parameters and buffers, the batch), what a factory call made with an explicit ``device=``,
     and everything computed from such a tensor;
   - ``"host"``: what a factory call made *without* ``device=`` (``torch.zeros(n)``,
     ``torch.tensor(values)``, ``torch.from_numpy(a)``, ``torch.hann_window(n)`` ...; the guard
     wraps ``torch.from_numpy``/``frombuffer``, which function modes do not see), what
     ``.cpu()`` or ``.to("cpu")`` returned, and what is computed from host tensors alone;
   - none: tensors made before the guard or by autograd (gradients); they take the place of the
     other operands.

   An operation whose operands include a device tensor and a host tensor with at least one
   dimension raises :class:`WrongDeviceError`, naming the line that created the host tensor; so
   does ``.numpy()`` of a device tensor (CUDA tensors need ``.cpu()`` first).
   Zero-dimensional host tensors are allowed (CUDA accepts CPU scalars in operations), and so are
   the calls that legitimately take operands from another device (``Tensor.to``, ``copy_``,
   indexing with CPU indices, ``new_tensor``).

2. **A dtype that cuFFT rejects.**  Under ``torch.autocast(dtype=torch.bfloat16)`` a convolution's
   output is bfloat16, and CUDA's FFT (``torch.fft.*``, ``torch.stft``/``istft``) raises
   "cuFFT doesn't support tensor of type: BFloat16"; CPU autocast differs in which ops it
   casts.  The guard raises :class:`WrongDtypeError` when a tensor of a dtype other than
   float32/float64/complex64/complex128 reaches one of those functions (``fft_dtypes``).

Used by ``scripts/gpu_train.py --check`` (the smoke step of every plan job) and its tests.  The
guard sees the calls made from Python (torch functions and tensor methods), not those inside
PyTorch's own C++ kernels, which is where such mistakes are made.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from ..errors import UserError

_ATTR = "_neurocodec_place"
_ORIGIN = "_neurocodec_origin"
#: calls whose operands may live on different devices (CUDA moves or accepts them)
_MIXING_ALLOWED = {torch.Tensor.to, torch.Tensor.copy_, torch.Tensor.__getitem__, torch.Tensor.new_tensor,
                   torch.Tensor.type_as, torch.Tensor.cuda, torch.Tensor.cpu, torch.Tensor.__setitem__}
#: factories that make a tensor on the device of their first argument
_LIKE = {torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like, torch.rand_like, torch.randn_like,
         torch.randint_like}
_TORCH_DIR = os.path.dirname(torch.__file__)
_HERE = os.path.abspath(__file__)
FFT_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)


class WrongDeviceError(UserError):
    """A tensor created on the CPU meets one on the training device (a CUDA run would fail)."""


class WrongDtypeError(UserError):
    """A tensor of a dtype that cuFFT does not take reaches an FFT (a CUDA run would fail)."""


def place_of(t: torch.Tensor) -> str | None:
    """``"device"``, ``"host"`` or ``None`` (see the module docstring)."""
    return getattr(t, _ATTR, None)


def mark(t: torch.Tensor, place: str | None, origin: str | None = None) -> None:
    """Give ``t`` a place (``"device"``/``"host"``; ``origin`` says where a host tensor was made)."""
    try:
        setattr(t, _ATTR, place)
        if origin is not None:
            setattr(t, _ORIGIN, origin)
    except (AttributeError, RuntimeError):  # tensors without a __dict__ (rare C++ types)
        pass


def mark_module(module: torch.nn.Module) -> None:
    """Mark a module's parameters and buffers as on the device (as ``module.to(device)`` does
    under the guard)."""
    for t in list(module.parameters()) + list(module.buffers()):
        mark(t, "device")


def _caller() -> str:
    """``file:line`` of the innermost frame outside torch and this module."""
    f = sys._getframe(2)
    while f is not None:
        name = os.path.abspath(f.f_code.co_filename)
        if not name.startswith(_TORCH_DIR) and name != _HERE and "/contextlib.py" not in name:
            return f"{os.path.relpath(name) if name.startswith(os.getcwd()) else name}:{f.f_lineno}"
        f = f.f_back
    return "?"


def _name(func: Any) -> str:
    """``torch.cat``, ``Tensor.__mul__``, ``torch.fft.rfft`` ..."""
    mod = getattr(func, "__module__", None) or ""
    name = getattr(func, "__name__", None) or repr(func)
    qual = getattr(func, "__qualname__", None) or name
    if qual.startswith(("TensorBase.", "Tensor.")):
        return "Tensor." + name
    if mod.startswith("torch._C") or mod == "torch" or qual.startswith("_VariableFunctions"):
        for sub in ("fft", "linalg"):
            if sub in mod:
                return f"torch.{sub}.{name.removeprefix(sub + '_')}"
        return "torch." + name
    return f"{mod}.{name}"


def _is_fft(func: Any) -> bool:
    mod = getattr(func, "__module__", "") or ""
    name = getattr(func, "__name__", "") or ""
    return mod.startswith("torch.fft") or mod == "torch._C._fft" or name in ("stft", "istft")


def _device_arg(value: Any) -> str | None:
    """The place a ``.to(...)`` argument moves to: ``"host"`` for ``"cpu"`` written as a string,
    ``"device"`` for a ``torch.device``, a tensor or any other device string; None otherwise."""
    if isinstance(value, str):
        return "host" if value.split(":")[0] == "cpu" else "device"
    if isinstance(value, (torch.device, torch.Tensor)):
        return "device"
    return None


def _host_factory(fn):
    def made_on_the_host(*args, **kwargs):
        t = fn(*args, **kwargs)
        mark(t, "host", _caller())
        return t

    made_on_the_host.__wrapped__ = fn
    return made_on_the_host


class DeviceGuard(TorchFunctionMode):
    """See the module docstring.  ``check_devices``/``check_fft_dtypes`` switch the two checks."""

    def __init__(self, check_devices: bool = True, check_fft_dtypes: bool = True):
        super().__init__()
        self.check_devices, self.check_fft_dtypes = check_devices, check_fft_dtypes
        self.calls = 0

    #: factories that torch function modes do not see: wrapped while the guard is active
    UNSEEN_FACTORIES = ("from_numpy", "frombuffer")

    def __enter__(self):
        self._saved = {name: getattr(torch, name) for name in self.UNSEEN_FACTORIES}
        for name, fn in self._saved.items():
            setattr(torch, name, _host_factory(fn))
        return super().__enter__()

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            for name, fn in self._saved.items():
                setattr(torch, name, fn)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.calls += 1
        flat, _ = tree_flatten((args, kwargs))
        tensors = [t for t in flat if isinstance(t, torch.Tensor)]
        if self.check_fft_dtypes and _is_fft(func) and tensors:
            x = tensors[0]
            if x.dtype not in FFT_DTYPES:
                raise WrongDtypeError(f"{_name(func)} gets a {str(x.dtype).replace('torch.', '')} tensor at "
                                      f"{_caller()}: CUDA's FFT (cuFFT) takes float32/float64 only (compute it "
                                      f"in float32: x.float() inside torch.autocast(..., enabled=False))")
        place = self._place(func, args, kwargs, tensors)
        out = func(*args, **kwargs)
        if place is not None:
            origin = _caller() if place == "host" else None
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    mark(t, place, origin)
        return out

    def _place(self, func, args, kwargs, tensors) -> str | None:
        """The place of ``func``'s result; raises when its operands mix places."""
        if not tensors:  # a factory: where device= says, else the CPU
            return "device" if kwargs.get("device") is not None else "host"
        if func is torch.Tensor.cpu:
            return "host"
        if func in (torch.Tensor.numpy, torch.Tensor.__array__) and place_of(args[0]) == "device" \
                and self.check_devices:
            raise WrongDeviceError(f"{_name(func)} at {_caller()} converts a tensor on the training device to "
                                   f"numpy: on a GPU this raises 'can't convert cuda:0 device type tensor to "
                                   f"numpy' (.cpu() first)")
        if func is torch.Tensor.to or func is torch.Tensor.cuda:
            moved = [_device_arg(a) for a in list(args[1:]) + [kwargs.get("device"), kwargs.get("other")]]
            moved = [m for m in moved if m is not None]
            if func is torch.Tensor.cuda or moved:
                return moved[0] if moved else "device"
            return place_of(args[0])
        if func is torch.Tensor.type_as:
            return place_of(args[1]) if len(args) > 1 else place_of(args[0])
        if func in _LIKE and tensors:
            return "device" if kwargs.get("device") is not None else place_of(tensors[0])
        checked = tensors
        places = [place_of(t) for t in checked]
        on_device = "device" in places
        if on_device and self.check_devices and func not in _MIXING_ALLOWED:
            for t, p in zip(checked, places):
                if p == "host" and t.dim() > 0:
                    where = getattr(t, _ORIGIN, "?")
                    raise WrongDeviceError(
                        f"{_name(func)} at {_caller()} mixes a tensor on the training device with a "
                        f"{tuple(t.shape)} tensor created on the CPU at {where} (pass device=x.device, or "
                        f".to(x.device)): on a GPU this raises 'Expected all tensors to be on the same device'")
        if on_device:
            return "device"
        return "host" if "host" in places else None
