"""Recipes: a named model configuration plus training hyper-parameters, and their registry.

A recipe is registered once with :func:`register_recipe` (the recipe/config dataclass of the model,
a builder ``build_model(config) -> nn.Module`` and default :class:`TrainConfig` values).  A
:class:`Recipe` instance is what a run trains; it is stored in every checkpoint as plain JSON
(:func:`recipe_to_dict`), so a checkpoint alone rebuilds its model (:func:`build_model`) - no
shape is guessed from tensors.

Overrides use dotted keys: ``train.lr=2e-5``, ``model.num_modules=2``; an unqualified key is
looked up in the model config first, then in the training config, and must not be ambiguous.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .config import TrainConfig, dataclass_from_dict, flatten, has_field, set_field, to_plain
from .errors import RecipeError


@dataclass
class Recipe:
    """What a run trains: the registered recipe ``name``, the model config and the training config."""

    name: str
    model: Any
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class RecipeEntry:
    """A registered recipe.  ``config_cls``/``build_model``/``build_data`` may be objects or
    lazily imported ``"package.module:attribute"`` strings."""

    name: str
    config_cls: Any
    build_model: Any
    train_defaults: tuple[tuple[str, Any], ...] = ()
    build_data: Any = None
    summary: str = ""
    config_for_bitrate: Any = None  # kbps -> model config of that operating point

    def resolve_config_cls(self) -> type:
        cls = _resolve(self.config_cls)
        if not (isinstance(cls, type) and is_dataclass(cls)):
            raise TypeError(f"recipe '{self.name}': config class {cls!r} is not a dataclass")
        return cls

    def resolve_builder(self) -> Callable[[Any], Any]:
        return _resolve(self.build_model)

    def resolve_data_builder(self) -> Callable[..., Any] | None:
        return None if self.build_data is None else _resolve(self.build_data)

    def default_recipe(self, bitrate_kbps: float | None = None) -> Recipe:
        """Default recipe; with ``bitrate_kbps``, the model config of that operating point."""
        train = TrainConfig()
        for k, v in self.train_defaults:
            train = set_field(train, k, v, prefix="train.")
        if bitrate_kbps is None and not isinstance(self.config_for_bitrate, CodecConfigForBitrate):
            model = self.resolve_config_cls()()
        elif self.config_for_bitrate is not None:
            model = _resolve(self.config_for_bitrate)(bitrate_kbps)
        else:
            model = set_field(self.resolve_config_cls()(), "bitrate_kbps", bitrate_kbps, prefix="model.")
        return Recipe(self.name, model, train)


def _resolve(target: Any) -> Any:
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def qualname(obj: Any) -> str:
    """``"module:QualName"`` of a class or function (recorded in checkpoints for reference)."""
    return f"{obj.__module__}:{obj.__qualname__}"


_RECIPES: dict[str, RecipeEntry] = {}


def register_recipe(name: str, recipe_cls: Any, build_model: Any, *,
                    train: TrainConfig | Mapping[str, Any] | None = None,
                    build_data: Any = None, summary: str = "", replace: bool = False,
                    config_for_bitrate: Any = None) -> RecipeEntry:
    """Register a recipe under ``name``.

    ``recipe_cls`` is the model's config dataclass (or ``"module:Class"``); ``build_model(config)``
    returns the ``nn.Module`` to train (see :mod:`.protocol`); ``train`` gives the recipe's default
    training hyper-parameters; ``build_data(manifest, split, recipe, sample_rate)`` returns a
    map-style dataset of ``(1, T)`` segments (default: ``neurocodec.data.SegmentDataset``);
    ``config_for_bitrate(kbps)`` gives the model config of an operating point (``--bitrate``).
    Registering a different target under a taken name raises ``ValueError`` unless ``replace``."""
    if isinstance(train, TrainConfig):
        defaults = TrainConfig()
        train = {f.name: getattr(train, f.name) for f in fields(train) if getattr(train, f.name) != getattr(defaults, f.name)}
    entry = RecipeEntry(name, recipe_cls, build_model, tuple(sorted((train or {}).items())), build_data, summary,
                        config_for_bitrate)
    old = _RECIPES.get(name)
    if old is not None and old != entry and not replace:
        raise ValueError(f"recipe '{name}' registered twice with different targets")
    for k, v in entry.train_defaults:  # fail at registration, not at the first run
        set_field(TrainConfig(), k, v, prefix="train.")
    _RECIPES[name] = entry
    return entry


@dataclass(frozen=True)
class CodecConfigForBitrate:
    """``kbps -> model config`` of an operating point of a learned codec registered in
    ``codecs/registry.py`` (its class's ``for_bitrate``); a value, so registering twice compares equal."""

    codec_id: str

    def __call__(self, kbps: float | None) -> Any:
        from ..codecs.registry import get_entry

        cls = get_entry(self.codec_id).resolve()
        return cls.for_bitrate(cls.default_bitrate if kbps is None else kbps).config


def register_codec_recipe(codec_id: str, *, train: TrainConfig | Mapping[str, Any] | None = None,
                          build_data: Any = None, summary: str = "", replace: bool = False) -> RecipeEntry:
    """Register the training recipe of the learned codec ``codec_id`` (registered with
    ``learned=True`` in ``codecs/registry.py``) under the same name: its config class
    (``config_class``), builder (the class) and operating points (``for_bitrate``) come from that
    one declaration; the recipe adds its training defaults."""
    from ..codecs.registry import get_entry

    entry = get_entry(codec_id)
    if not entry.learned:
        raise ValueError(f"codec '{codec_id}' is not registered as a learned codec (learned=True)")
    return register_recipe(codec_id, f"{entry.target}.config_class", entry.target, train=train,
                           build_data=build_data, summary=summary or entry.summary, replace=replace,
                           config_for_bitrate=CodecConfigForBitrate(codec_id))


def unregister_recipe(name: str) -> None:
    """Remove a recipe (tests)."""
    _RECIPES.pop(name, None)


def recipe_names() -> list[str]:
    """All registered recipe names, sorted."""
    return sorted(_RECIPES)


def get_recipe(name: str) -> RecipeEntry:
    """The registry entry for ``name``; :class:`RecipeError` lists the known names otherwise."""
    try:
        return _RECIPES[name]
    except KeyError:
        known = ", ".join(recipe_names()) or "none registered"
        raise RecipeError(f"unknown recipe '{name}' (known: {known})") from None


# -- building and overriding --------------------------------------------------------------------

def apply_overrides(recipe: Recipe, overrides: Mapping[str, Any] | Iterable[str]) -> Recipe:
    """Apply ``key=value`` strings or a ``{key: value}`` mapping (dotted keys) to a recipe."""
    if not isinstance(overrides, Mapping):
        pairs = {}
        for item in overrides:
            key, sep, value = str(item).partition("=")
            if not sep or not key.strip():
                raise RecipeError(f"bad setting '{item}': expected KEY=VALUE, e.g. train.lr=2e-5")
            pairs[key.strip()] = value.strip()
        overrides = pairs
    for key, value in overrides.items():
        recipe = _set(recipe, key, value)
    recipe.train.validate()
    return recipe


def _set(recipe: Recipe, key: str, value: Any) -> Recipe:
    if key.startswith("train."):
        return dataclasses.replace(recipe, train=set_field(recipe.train, key[6:], value, "train."))
    if key.startswith("model."):
        return dataclasses.replace(recipe, model=set_field(recipe.model, key[6:], value, "model."))
    in_model, in_train = has_field(recipe.model, key), has_field(recipe.train, key)
    if in_model and in_train:
        raise RecipeError(f"setting '{key}' is ambiguous: write model.{key} or train.{key}")
    if in_model:
        return dataclasses.replace(recipe, model=set_field(recipe.model, key, value, "model."))
    if in_train:
        return dataclasses.replace(recipe, train=set_field(recipe.train, key, value, "train."))
    model_keys = ", ".join(f"model.{f.name}" for f in fields(recipe.model))
    raise RecipeError(f"unknown setting '{key}' for recipe '{recipe.name}' "
                      f"(model settings: {model_keys or 'none'}; training settings: train.FIELD)")


def load_recipe_file(path: str | Path) -> tuple[str, dict[str, Any]]:
    """Read a YAML recipe file ``{recipe: NAME, model: {...}, train: {...}}`` -> name, flat overrides."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("recipe"), str):
        raise RecipeError(f"recipe file {path} must be a mapping with a 'recipe: NAME' entry")
    data = dict(data)
    name = data.pop("recipe")
    return name, flatten(data)


def make_recipe(name_or_file: str, overrides: Iterable[str] | Mapping[str, Any] = (),
                bitrate_kbps: float | None = None) -> Recipe:
    """A registered recipe (or YAML recipe file) with its defaults (the operating point of
    ``bitrate_kbps`` when given), then ``overrides`` applied."""
    file_overrides: dict[str, Any] = {}
    name = name_or_file
    if name_or_file.endswith((".yaml", ".yml")):
        name, file_overrides = load_recipe_file(name_or_file)
    recipe = get_recipe(name).default_recipe(bitrate_kbps)
    recipe = apply_overrides(recipe, file_overrides)
    return apply_overrides(recipe, overrides)


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """The recipe as plain JSON data (stored in checkpoints and exported weights)."""
    return {
        "name": recipe.name,
        "model_class": qualname(type(recipe.model)),
        "model": to_plain(recipe.model),
        "train": to_plain(recipe.train),
    }


def recipe_from_dict(data: Mapping[str, Any]) -> Recipe:
    """Inverse of :func:`recipe_to_dict`; the model config class comes from the registry entry."""
    try:
        name, model, train = data["name"], data["model"], data["train"]
    except (KeyError, TypeError):
        raise RecipeError("stored recipe is incomplete (needs name, model and train)") from None
    entry = get_recipe(name)
    cls = entry.resolve_config_cls()
    return Recipe(name, dataclass_from_dict(cls, model, "model"),
                  dataclass_from_dict(TrainConfig, train, "train"))


def build_model(recipe: Recipe) -> Any:
    """Instantiate the recipe's model from its config (the registered builder)."""
    return get_recipe(recipe.name).resolve_builder()(recipe.model)


# Built-in recipes.  A learned codec registered in codecs/registry.py gets its recipe with
# register_codec_recipe(id, train=...); any other model binds a recipe name to its config dataclass
# and builder, as lazily imported "module:attribute" strings (codec modules never import ``train``), e.g.
# register_recipe("cmrl", "neurocodec.codecs.cmrl:CmrlConfig", "neurocodec.codecs.cmrl:CmrlCodec",
#                 train={"lr": 1e-4, "batch_size": 128, "segment_samples": 512}, summary="zhen2019")

#: what the speech codecs train on: the corpus's recorded and synthetic speech, and user folders
SPEECH_SOURCES = ("speech-real", "speech-tts", "user")
#: training defaults of the cascade codecs (CMRL, CQ): 160 frames of 512 samples per batch
_CASCADE_TRAIN = {"lr": 1e-4, "batch_size": 32, "segment_samples": 2048, "val_segment_samples": 16000,
                  "val_every": 500, "ckpt_every": 250, "threads": 1, "steps": 20000, "sources": SPEECH_SOURCES}

register_codec_recipe("cmrl", train=_CASCADE_TRAIN, summary="CMRL cascaded residual autoencoders (zhen2019)")
register_codec_recipe("cq", train={**_CASCADE_TRAIN, "lr": 2e-4}, summary="CQ collaborative LPC/residual quantization (zhen2020)")
register_codec_recipe("lpc-cmrl", train=_CASCADE_TRAIN, summary="LPC-CMRL: fixed LPC + CMRL cascade (zhen2019)")

#: EnCodec (defossez2022 §4.4): Adam 3e-4, betas (0.5, 0.9), 1 s segments; the balancer's surrogate
#: loss is not a loss value, so the explosion ratio test is off
_ENCODEC_TRAIN = {"lr": 3e-4, "betas": (0.5, 0.9), "batch_size": 8, "segment_samples": 24000,
                  "val_segment_samples": 48000, "val_every": 500, "ckpt_every": 100, "explode_factor": 0.0,
                  "steps": 20000}
register_recipe("encodec-24k", "neurocodec.codecs.encodec:EncodecConfig", "neurocodec.codecs.encodec:EncodecCodec",
                config_for_bitrate="neurocodec.codecs.encodec:encodec_24k_config", train=_ENCODEC_TRAIN,
                summary="EnCodec 24 kHz streamable (defossez2022)")
register_recipe("encodec-16k", "neurocodec.codecs.encodec:Encodec16kConfig", "neurocodec.codecs.encodec:EncodecCodec",
                config_for_bitrate="neurocodec.codecs.encodec:encodec_16k_config",
                train={**_ENCODEC_TRAIN, "segment_samples": 16000, "val_segment_samples": 32000,
                       "sources": SPEECH_SOURCES},
                summary="EnCodec 16 kHz speech (defossez2022)")

#: byun2023 §4.1: batch of 128 frames of 512 samples, Adam, cosine annealing 1e-4 -> 5e-5
_PERCEPTUAL_TRAIN = {"lr": 1e-4, "lr_min": 5e-5, "schedule": "cosine", "batch_size": 128, "segment_samples": 512,
                     "val_segment_samples": 16000, "val_every": 500, "ckpt_every": 250, "threads": 1,
                     "steps": 20000, "sources": SPEECH_SOURCES}
register_recipe("perceptual-fem", "neurocodec.codecs.perceptual:PerceptualConfig",
                "neurocodec.codecs.perceptual:PerceptualFemCodec", config_for_bitrate="neurocodec.codecs.perceptual:fem_config",
                train=_PERCEPTUAL_TRAIN, summary="byun2023 perceptual coder, factorized density (FEM)")
register_recipe("perceptual-hpm", "neurocodec.codecs.perceptual:PerceptualConfig",
                "neurocodec.codecs.perceptual:PerceptualHpmCodec", config_for_bitrate="neurocodec.codecs.perceptual:hpm_config",
                train=_PERCEPTUAL_TRAIN, summary="byun2023 perceptual coder, mean-scale hyperprior (HPM)")

#: fejgin2020 §3.2 (Adam 2e-4; the module CLI's x0.3-on-plateau schedule is not the shared trainer's:
#: constant here), batches of 16 crops of 10 codec blocks, mdct conditioning computed once per run
_MDCT_GEN_TRAIN = {"lr": 2e-4, "batch_size": 16, "grad_clip": 1.0, "val_every": 100, "val_batches": 4,
                   "ckpt_every": 100, "threads": 1, "steps": 100000}
register_recipe("mdct-gen", "neurocodec.train.samplernn:MdctGenConfig", "neurocodec.train.samplernn:MdctGenTrainable",
                build_data="neurocodec.train.samplernn:build_data", train=_MDCT_GEN_TRAIN,
                summary="conditional SampleRNN decoder of mdct streams, speech (fejgin2020)")
register_recipe("mdct-gen-piano", "neurocodec.train.samplernn:MdctGenPianoConfig",
                "neurocodec.train.samplernn:MdctGenTrainable", build_data="neurocodec.train.samplernn:build_data",
                train=_MDCT_GEN_TRAIN, summary="conditional SampleRNN decoder of mdct streams, piano (fejgin2020)")
