"""Change settings of shipped weights that do not touch their tensors: rewrite the ``config`` JSON in
the metadata of ``model.safetensors`` (and ``config.json`` beside it, when present); every tensor
stays byte for byte as it was.

    python scripts/weights_config.py src/neurocodec/assets/weights/encodec-24k block_frames=0

Values are parsed as JSON (``0``, ``true``, ``"text"``); a key the config does not have is an error
(exit status 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="folder holding model.safetensors")
    ap.add_argument("settings", nargs="+", help="key=value (value as JSON)")
    a = ap.parse_args(argv)
    from safetensors import safe_open
    from safetensors.numpy import save

    from neurocodec.audio import atomic_write_bytes

    path = a.folder / "model.safetensors"
    if not path.is_file():
        print(f"error: {path} not found", file=sys.stderr)
        return 2
    with safe_open(str(path), "np") as f:
        meta = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if "config" not in meta:
        print(f"error: {path} has no config in its metadata", file=sys.stderr)
        return 2
    config = json.loads(meta["config"])
    for item in a.settings:
        key, sep, value = item.partition("=")
        if not sep or key not in config:
            print(f"error: {item!r}: expected key=value with a key of the config ({', '.join(sorted(config))})",
                  file=sys.stderr)
            return 2
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            print(f"error: {item!r}: the value is not JSON", file=sys.stderr)
            return 2
    meta["config"] = json.dumps(config, sort_keys=True)
    atomic_write_bytes(path, save(tensors, metadata=meta))
    side = a.folder / "config.json"
    if side.is_file():
        own = json.loads(side.read_text())
        own.update({k: config[k] for k in config if k in own})
        side.write_text(json.dumps(own, indent=2) + "\n")
    print(f"{path}: {', '.join(a.settings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
