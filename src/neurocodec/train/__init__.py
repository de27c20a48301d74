"""train layer: the training stack shared by every learned codec.

* :mod:`.recipe` - recipes (model config + :class:`~.config.TrainConfig`) and their registry;
* :mod:`.protocol` - what a trainable model provides (``training_step`` -> :class:`LossOutput`,
  optional ``phases``);
* :mod:`.trainer` - the loop (phases, DDP, AMP, validation, checkpoints, exact resume);
* :mod:`.checkpoint`, :mod:`.export`, :mod:`.model_card` - persistence and shipped weights;
* :mod:`.cli` - ``neurocodec train`` / ``neurocodec export``.

Names are imported lazily so that building the CLI parser does not import torch.
"""

from __future__ import annotations

_EXPORTS = {
    "TrainConfig": ".config",
    "Recipe": ".recipe", "register_recipe": ".recipe", "get_recipe": ".recipe", "recipe_names": ".recipe",
    "make_recipe": ".recipe", "apply_overrides": ".recipe", "build_model": ".recipe",
    "recipe_to_dict": ".recipe", "recipe_from_dict": ".recipe",
    "LossOutput": ".protocol", "Phase": ".protocol", "TrainableCodec": ".protocol", "split_steps": ".protocol",
    "Trainer": ".trainer", "TrainResult": ".trainer", "train": ".trainer",
    "load_checkpoint": ".checkpoint", "load_model": ".checkpoint", "latest_checkpoint": ".checkpoint",
    "export_run": ".export", "load_exported": ".export", "ExportedWeights": ".export",
    "RecipeError": ".errors", "TrainingDiverged": ".errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'neurocodec.train' has no attribute {name!r}")
