"""Conversion of official EnCodec checkpoints (``encodec_24khz-*.th``, ``encodec_48khz-*.th`` and
their language models ``encodec_lm_*.th``) into this package's networks.

The official files are plain PyTorch state dicts of the reference package's modules.  The layer
order of the reference SEANet (``encoder.model.N`` / ``decoder.model.N`` in a flat sequence, weight
norm as ``weight_g``/``weight_v``, time layer norm as a ``GroupNorm``) is walked here in the same
order as :class:`~neurocodec.nn.seanet.SeanetEncoder` builds its layers, so every tensor lands in
the layer of the same role; shapes are checked and every tensor must be used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from ..errors import WeightsError
from ..nn.seanet import SConv1d, SConvTranspose1d, SeanetConfig
from .encodec_model import EncodecNet, EncodecNetConfig, encodec_24k_config, encodec_48k_config


def _conv_keys(ref: str, mine: str, conv, transposed: bool = False) -> dict[str, str]:
    inner = "convtr" if transposed else "conv"
    base = f"{ref}.{inner}.{inner}"
    if conv.norm_type == "weight_norm":
        out = {f"{base}.weight_g": f"{mine}.weight_g", f"{base}.weight_v": f"{mine}.weight_v"}
    else:
        out = {f"{base}.weight": f"{mine}.weight_raw"}
    out[f"{base}.bias"] = f"{mine}.bias"
    if conv.norm is not None:
        out[f"{ref}.{inner}.norm.weight"] = f"{mine}.norm.weight"
        out[f"{ref}.{inner}.norm.bias"] = f"{mine}.norm.bias"
    return out


def _res_keys(ref: str, mine: str, unit) -> dict[str, str]:
    out = _conv_keys(f"{ref}.block.1", f"{mine}.conv1", unit.conv1)
    out.update(_conv_keys(f"{ref}.block.3", f"{mine}.conv2", unit.conv2))
    if unit.shortcut is not None:
        out.update(_conv_keys(f"{ref}.shortcut", f"{mine}.shortcut", unit.shortcut))
    return out


def _lstm_keys(ref: str, mine: str, lstm) -> dict[str, str]:
    return {f"{ref}.lstm.{n}": f"{mine}.lstm.{n}" for n, _ in lstm.lstm.named_parameters()}


def key_map(net: EncodecNet) -> dict[str, str]:
    """Reference state-dict key -> this package's key, for every tensor of ``net``."""
    out: dict[str, str] = {}
    enc, dec = net.encoder, net.decoder
    i = 0
    out.update(_conv_keys(f"encoder.model.{i}", "encoder.input_conv", enc.input_conv))
    for s, (units, down) in enumerate(zip(enc.res_units, enc.downsample)):
        for j, unit in enumerate(units):
            i += 1
            out.update(_res_keys(f"encoder.model.{i}", f"encoder.res_units.{s}.{j}", unit))
        i += 2  # ELU, then the strided convolution
        out.update(_conv_keys(f"encoder.model.{i}", f"encoder.downsample.{s}", down))
    if enc.lstm is not None:
        i += 1
        out.update(_lstm_keys(f"encoder.model.{i}", "encoder.lstm", enc.lstm))
    i += 2
    out.update(_conv_keys(f"encoder.model.{i}", "encoder.output_conv", enc.output_conv))

    i = 0
    out.update(_conv_keys(f"decoder.model.{i}", "decoder.input_conv", dec.input_conv))
    if dec.lstm is not None:
        i += 1
        out.update(_lstm_keys(f"decoder.model.{i}", "decoder.lstm", dec.lstm))
    for s, (up, units) in enumerate(zip(dec.upsample, dec.res_units)):
        i += 2
        out.update(_conv_keys(f"decoder.model.{i}", f"decoder.upsample.{s}", up, transposed=True))
        for j, unit in enumerate(units):
            i += 1
            out.update(_res_keys(f"decoder.model.{i}", f"decoder.res_units.{s}.{j}", unit))
    i += 2
    out.update(_conv_keys(f"decoder.model.{i}", "decoder.output_conv", dec.output_conv))

    for k in range(net.cfg.n_q):
        for b in ("inited", "cluster_size", "embed", "embed_avg"):
            out[f"quantizer.vq.layers.{k}._codebook.{b}"] = f"quantizer.codebooks.{k}.{b}"
    return out


def guess_config(state: Mapping[str, torch.Tensor]) -> EncodecNetConfig:
    """The official configuration a reference state dict belongs to (24 kHz mono or 48 kHz stereo)."""
    first = state.get("encoder.model.0.conv.conv.weight_v", state.get("encoder.model.0.conv.conv.weight"))
    if first is None:
        raise WeightsError("not an EnCodec model checkpoint (no encoder.model.0 convolution)")
    if first.shape[1] == 2 or "encoder.model.0.conv.norm.weight" in state:
        cfg = encodec_48k_config()
    else:
        cfg = encodec_24k_config()
    n_q = sum(1 for k in state if k.endswith("._codebook.embed"))
    if n_q != cfg.n_q:
        raise WeightsError(f"checkpoint has {n_q} codebooks, the official {cfg.sample_rate} Hz model has {cfg.n_q}")
    return cfg


def convert_state_dict(state: Mapping[str, torch.Tensor], cfg: EncodecNetConfig | None = None) -> EncodecNet:
    """An :class:`EncodecNet` holding the tensors of a reference state dict (checked one to one)."""
    cfg = cfg or guess_config(state)
    net = EncodecNet(cfg)
    mapping = key_map(net)
    mine = net.state_dict()
    unused = sorted(set(state) - set(mapping))
    missing = sorted(set(mapping) - set(state))
    if unused or missing:
        raise WeightsError(f"checkpoint does not match the EnCodec architecture (unexpected: {unused[:3]}, "
                           f"missing: {missing[:3]})")
    new = {}
    for ref_key, my_key in mapping.items():
        t = state[ref_key]
        if tuple(t.shape) != tuple(mine[my_key].shape):
            raise WeightsError(f"{ref_key}: shape {tuple(t.shape)}, expected {tuple(mine[my_key].shape)}")
        new[my_key] = t.detach().to(torch.float32)
    net.load_state_dict(new)
    net.eval()
    return net


def load_reference_checkpoint(path: str | Path) -> Mapping[str, torch.Tensor]:
    """Read an official ``.th`` file (a state dict; tensors only, no code is run)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input error
        raise WeightsError(f"{path} is not a PyTorch checkpoint: {str(e).splitlines()[0]}") from None
    if isinstance(state, Mapping) and "best_state" in state:  # training checkpoints of the reference
        state = state["best_state"]
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path} does not hold a state dict")
    return state


__all__ = ["key_map", "guess_config", "convert_state_dict", "load_reference_checkpoint",
           "SConv1d", "SConvTranspose1d", "SeanetConfig"]


def user_weights_dir() -> Path:
    """Where imported weights go: ``$NEUROCODEC_WEIGHTS_HOME`` or ``~/.cache/neurocodec/weights``."""
    import os

    env = os.environ.get("NEUROCODEC_WEIGHTS_HOME")
    return Path(env) if env else Path.home() / ".cache" / "neurocodec" / "weights"


def _read_lm(lm_path, n_q: int):
    from .encodec_lm import convert_reference_lm

    lm_state = load_reference_checkpoint(lm_path)
    if "linears.0.weight" not in lm_state:
        raise WeightsError(f"{lm_path} is not an EnCodec LM checkpoint")
    lm = convert_reference_lm(lm_state)
    if lm.n_q != n_q:
        raise WeightsError(f"{lm_path} models {lm.n_q} codebooks, the model has {n_q}: not this model's LM")
    return lm


def import_checkpoint(model_path: str | Path, lm_path: str | Path | None = None,
                      out_dir: str | Path | None = None) -> Path:
    """Convert an official EnCodec checkpoint (and optionally its LM) into the codec
    ``encodec-24k-official`` (24 kHz) or ``encodec-48k-official`` (48 kHz); returns the written
    ``model.safetensors``."""
    state = load_reference_checkpoint(model_path)
    cfg = guess_config(state)
    net = convert_state_dict(state, cfg)
    lm = _read_lm(lm_path, cfg.n_q) if lm_path is not None else None
    lm_kw = {} if lm is None else dict(lm_n_q=lm.n_q, lm_dim=lm.dim, lm_layers=len(lm.layers), lm_heads=lm.heads,
                                       lm_ff=lm.layers[0].linear1.out_features)
    if cfg.sample_rate == 48000:
        from .encodec48 import Encodec48Codec, Encodec48Config

        codec = Encodec48Codec(Encodec48Config(**lm_kw), codec_id="encodec-48k-official")
    else:
        from .encodec import EncodecCodec, EncodecConfig

        codec = EncodecCodec(EncodecConfig(**lm_kw), codec_id="encodec-24k-official")
    codec.net.load_state_dict(net.state_dict())
    if lm is not None:
        codec.lm.load_state_dict(lm.state_dict())
    out = Path(out_dir) if out_dir is not None else user_weights_dir() / codec.codec_id
    out.mkdir(parents=True, exist_ok=True)
    path = out / "model.safetensors"
    codec.save_pretrained(path)
    _LAST_IMPORT["codec_id"] = codec.codec_id
    return path


_LAST_IMPORT: dict[str, str] = {}


def add_import_parser(sub) -> None:
    """``neurocodec import encodec FILE.th [--lm LM.th] [--out DIR]``."""
    p = sub.add_parser("import", help="convert official checkpoints of other toolkits (EnCodec)")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=sub._parser_class)
    e = kinds.add_parser("encodec", help="official EnCodec checkpoint (encodec_24khz-*.th or encodec_48khz-*.th) -> "
                                         "codec 'encodec-24k-official' or 'encodec-48k-official'")
    e.add_argument("checkpoint", help="encodec_24khz-d7cc33bc.th or encodec_48khz-7e698e3e.th (a PyTorch state dict)")
    e.add_argument("--lm", default=None, help="its language model, encodec_lm_24khz-1608e3c0.th or "
                                              "encodec_lm_48khz-7add9fc3.th (LM entropy coding)")
    e.add_argument("--out", default=None, help="output folder (default: $NEUROCODEC_WEIGHTS_HOME or "
                                                "~/.cache/neurocodec/weights, /<codec id>)")
    e.set_defaults(func=_cmd_import_encodec)


def _cmd_import_encodec(args) -> int:
    import sys

    path = import_checkpoint(args.checkpoint, args.lm, args.out)
    codec_id = _LAST_IMPORT.get("codec_id", "encodec-24k-official")
    print(f"wrote {path}; use it with --codec {codec_id}", file=sys.stderr)
    return 0
