"""Markdown model cards for exported weights: what was trained, on what, how, and how well."""

from __future__ import annotations

import json
from typing import Any, Mapping


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def render_card(name: str, recipe: Mapping[str, Any], training: Mapping[str, Any],
                files: Mapping[str, str]) -> str:
    """The card's Markdown text.

    ``recipe`` is the stored recipe (``recipe_to_dict``), ``training`` the export's training record
    (step, total_steps, meta, metrics, dtype, num_parameters, ...), ``files`` maps file names to
    SHA-256 digests."""
    meta = training.get("meta", {})
    metrics = training.get("metrics", {})
    step, total = training.get("step"), training.get("total_steps")
    status = "complete" if step == total else f"incomplete ({step} of {total} steps)"
    lines = [
        f"# {name}",
        "",
        f"Weights of the `{recipe['name']}` recipe (model class `{recipe.get('model_class', '?')}`), "
        "exported by `neurocodec export` from a training checkpoint.",
        "",
        "| | |",
        "|---|---|",
        f"| recipe | `{recipe['name']}` |",
        f"| parameters | {training.get('num_parameters', 0):,} |",
        f"| stored as | {training.get('dtype', 'float32')}"
        + (f" (max abs rounding error {training['max_abs_error']:.3g})" if training.get("max_abs_error") else "")
        + " |",
        f"| training steps | {step} ({status}) |",
        f"| wall time | {_duration(float(meta.get('wall_time_s', 0.0)))} |",
        f"| hardware | {meta.get('hardware', 'unknown')} |",
        f"| torch | {meta.get('torch_version', 'unknown')} |",
        f"| data manifest | `{meta.get('manifest')}` |",
        f"| manifest sha256 | `{meta.get('manifest_sha256')}` |",
        f"| segments | {meta.get('train_segments')} train, {meta.get('val_segments')} validation |",
        f"| checkpoint | `{training.get('checkpoint')}` |",
        *([f"| export settings | `{' '.join(training['export_overrides'])}` |"] if training.get("export_overrides") else []),
        *([f"| initialised from | `{meta['init']['source']}` (sha256 `{meta['init']['sha256'][:16]}...`, "
           f"{meta['init']['loaded']} tensors) |"] if meta.get("init") else []),
        "",
        "## Command",
        "",
        "```",
        *(meta.get("commands") or ["(not recorded)"]),
        "```",
        "",
    ]
    phases = meta.get("phases") or []
    if len(phases) > 1:
        lines += ["## Phases", "", "| phase | steps | lr |", "|---|---|---|"]
        lines += [f"| {p['name']} | {p['steps']} | {_fmt(p['lr']) if p.get('lr') is not None else 'recipe'} |"
                  for p in phases]
        lines.append("")
    fit, rate = training.get("entropy_coder"), training.get("file_bitrate")
    if fit:
        lines += ["## Entropy coder", "", f"Fitted at export on {fit['seconds']:.0f} s of training audio.", "",
                  "| quantizer | entropy (bits/symbol) | pair entropy (bits/symbol) |", "|---|---|---|"]
        lines += [f"| {q} | {fit['entropy_bits'][q]:.3f} | {fit['pair_entropy_bits'][q]:.3f} |"
                  for q in sorted(fit["entropy_bits"])]
        lines.append("")
    trim = training.get("rate_trim")
    if trim:
        of = f" of module {trim['rate_module']}" if trim.get("rate_module") else ""
        split = trim.get("calibration_split", "train")
        where = "held-out training audio" if split == "train" else f"'{split}' audio"
        lines += [f"Rate trim: quantizer step `code_scale`{of} = {trim['code_scale']:.4f}, chosen so that real files of "
                  f"{trim['calibration_seconds']:.0f} s of {where} come out at "
                  f"{trim['kbps']:.2f} kbps for {trim['target_kbps']:g} kbps nominal, "
                  f"{'mean of the per-file rates' if trim.get('statistic') == 'files' else 'total bytes over total seconds'} "
                  f"({len(trim['trials'])} trials).", ""]
    if rate:
        lines += [f"Real `.ncdc` files of the {rate['split']} split ({rate['files']} files, {rate['seconds']:.0f} s): "
                  f"{rate['kbps']:.2f} kbps total bytes over total seconds, {rate['mean_file_kbps']:.2f} kbps "
                  f"mean of the per-file rates, for {rate['nominal_kbps']:g} kbps nominal.", ""]
    for title, key in (("Final validation metrics", "val"), ("Final training terms", "train")):
        vals = metrics.get(key) or {}
        if vals:
            lines += [f"## {title}", "", "| metric | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(vals.items())]
            lines.append("")
    lines += ["## Recipe", "", "```json", json.dumps({k: recipe[k] for k in ("name", "model", "train") if k in recipe},
                                                      indent=2), "```", ""]
    lines += ["## Files", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| {f} | `{h}` |" for f, h in sorted(files.items())]
    lines.append("")
    return "\n".join(lines)
