"""``synthmed.train``: one call trains one stage, with the preset, resume rules and checks.

The CLI (``synthmed train STAGE``) only turns its flags into keyword arguments and calls
:func:`train`; a notebook gets the same behaviour::

    import synthmed
    synthmed.train("geometry", "work/mine/train", "runs/geo", steps=2000)
    synthmed.train("texture", "work/mine/train", "runs/tex", preset="drive512", crop=256)

Each keyword names an option once: a field of :class:`~synthmed.training.options.TrainOptions`
(the loop: ``steps``, ``batch_size``, ``lr``, ``augment``, ``ema``, ...), of the stage's network
config (:class:`~synthmed.models.dcgan.GeometryConfig` or
:class:`~synthmed.models.pix2pix.TextureConfig`: ``ngf``, ``resolution``, ``style_dim``, ...), or
a loss weight of the stage (:data:`STAGE_OPTIONS`). ``None`` means "the preset's value".
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from synthmed.data.prepared import PreparedDataset
from synthmed.errors import UserError
from synthmed.models.dcgan import GeometryConfig
from synthmed.models.pix2pix import TextureConfig
from synthmed.training.options import GeometryStageOptions, TextureStageOptions, TrainOptions
from synthmed.training.run import check_run_folder, resumed_options

STAGES = ("geometry", "single", "refiner", "texture")
# Loss weights and schedules of each stage (fields of GeometryStageOptions /
# TextureStageOptions that apply to it), recorded in options.json under "stage".
STAGE_OPTIONS = {
    "geometry": ("instance_noise", "blur", "mode_seeking", "noise_fade_steps"),
    "single": ("instance_noise", "blur", "mode_seeking", "noise_fade_steps"),
    "refiner": (
        "l1_weight",
        "fm_weight",
        "coarse_noise",
        "topology_weight",
        "coarse_gaps",
        "coarse_specks",
        "adapt_geometry",
        "adapt_weight",
    ),
    "texture": ("l1_weight", "fm_weight", "judge_weight", "judge_steps", "kl_weight"),
}
# What --resume may change: how long to go and where to run; the rest is the run's own.
RESETTABLE = ("steps", "device", "precision")


def _model_fields(stage: str) -> set[str]:
    cls = TextureConfig if stage in ("texture", "refiner") else GeometryConfig
    return {f.name for f in dataclasses.fields(cls)}


def split_overrides(stage: str, overrides: dict[str, Any]) -> tuple[dict, dict, dict]:
    """Route keyword overrides to (loop, model, stage) options; unknown names are refused.
    ``None`` values are dropped (the preset's value stands)."""
    if stage not in STAGES:
        raise UserError(f"unknown stage {stage!r}: use one of {', '.join(STAGES)}")
    loop_fields = {f.name for f in dataclasses.fields(TrainOptions)}
    model_fields, stage_fields = _model_fields(stage), set(STAGE_OPTIONS[stage])
    loop, model, extra = {}, {}, {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key in loop_fields:
            loop[key] = value
        elif key in model_fields:
            model[key] = value
        elif key in stage_fields:
            extra[key] = value
        else:
            raise UserError(f"train {stage}: unknown option {key!r}")
    return loop, model, extra


def resolve_options(
    stage: str, out: Path, preset: str, resume: bool, overrides: dict[str, Any]
) -> tuple[dict, dict, dict]:
    """The (loop, model, stage) options a run trains with: a resumed run's own (bar
    :data:`RESETTABLE`), else the preset's with ``overrides`` on top."""
    loop, model, extra = split_overrides(stage, overrides)
    if resume:
        saved = resumed_options(out)
        if saved.get("kind") != stage:
            raise UserError(f"{out}/options.json: a {saved.get('kind')} run, not {stage}")
        train = dict(saved["train"]) | {k: loop[k] for k in RESETTABLE if k in loop}
        return train, saved["model"], saved.get("stage", {})
    from synthmed.presets import preset as preset_settings

    base = preset_settings(preset, stage)
    train = {"batch_size": base["batch_size"], "precision": base["precision"]}
    train |= base.get("train", {}) | loop
    model |= {k: v for k, v in base["model"].items() if k not in model}
    if "coarse_clip" in model:
        # A clip means something only for distance maps; the dataclass default rides along
        # in every options.json, so only another value with soft masks is refused.
        soft = model.get("coarse_kind", "soft") == "soft"
        default = GeometryConfig.coarse_clip
        if model["coarse_clip"] <= 0 or (soft and model["coarse_clip"] != default):
            raise UserError("--coarse-clip: a positive distance, with --coarse-kind distance")
    stage_options = base.get("stage", {}) | extra
    if stage_options.get("adapt_weight") and not stage_options.get("adapt_geometry"):
        if "adapt_weight" not in extra:  # the preset's, not the user's
            raise UserError(
                f"--preset {preset} adapts the refiner to a trained geometry run's masks: give "
                "--adapt-geometry RUN (or --adapt-weight 0 to train without)"
            )
    return train, model, stage_options


# Keys of a run's options.json that describe the run, not options to train with.
RECORD_KEYS = (
    "kind",
    "version",
    "data",
    "resolution",
    "trained_on",
    "mirrored_to_the_right",
    "mask_kind",
)


def read_config(path: str | Path, stage: str) -> tuple[str | None, dict[str, Any]]:
    """A ``--config`` file: (its preset or None, its options as flat keyword arguments).

    Accepts a run's ``options.json`` (so a run can be repeated or varied from its record),
    ``{"preset": ..., "train": {...}, "model": {...}, "stage": {...}}``, or flat option names.
    Every name is checked against the stage's options; one bad name or value type is a
    UserError naming the file.
    """
    from synthmed.files import read_json

    raw = read_json(path)
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a config must be a JSON object")
    if raw.get("kind") not in (None, stage):
        raise UserError(f"{path}: options of a {raw['kind']} run, not {stage}")
    preset = raw.get("preset")
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in RECORD_KEYS or key == "preset":
            continue
        if key in ("train", "model", "stage"):
            if not isinstance(value, dict):
                raise UserError(f"{path}: {key!r} must be an object of options")
            flat |= value
        else:
            flat[key] = value
    try:
        split_overrides(stage, flat)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return preset, flat


def _geometry_config(stage: str, model: dict[str, Any], data: PreparedDataset) -> GeometryConfig:
    """The DCGAN's config for ``data``, with its side and options checked."""
    channels = data.channels + 1 if stage == "single" else 1
    model = {"resolution": data.resolution} | model
    side = model["resolution"]
    if side > data.resolution or side < 8 or side & (side - 1):
        raise UserError(
            f"--resolution {side}: need a power of two from 8 to the data's {data.resolution}"
        )
    patch = model.get("patch_side") or 0
    if patch and (patch & (patch - 1) or not 8 <= patch <= side // 2):
        raise UserError(
            f"patch_side {patch}: need a power of two from 8 to half the DCGAN's side "
            f"({side // 2}), or 0"
        )
    if model.get("coarse_kind", "soft") != "soft" and (channels > 1 or side == data.resolution):
        raise UserError("--coarse-kind distance: only for a mask DCGAN below the data's size")
    return GeometryConfig(**{**model, "channels": channels})


def _texture_config(
    stage: str, model: dict[str, Any], data: PreparedDataset, crop: int
) -> TextureConfig:
    """The pix2pix U-Net's config for ``data`` (Stage II or the refiner), checked."""
    from synthmed.training.texture import texture_model

    refine = stage == "refiner"
    model = texture_model(model, data, refine, crop)
    if refine and not 8 <= model["coarse"] < data.resolution:
        raise UserError(f"--coarse {model['coarse']}: must be below {data.resolution}")
    cfg = TextureConfig(**model)
    if data.resolution % 2 ** cfg.levels():
        raise UserError(f"resolution {data.resolution} too small for the U-Net")
    return cfg


def _augment_policy(policy: str, data: PreparedDataset, preset: str, stage: str) -> str:
    """The augmentation a new run records: "auto" chosen from the masks' kind (dataset.json's
    ``mask_kind``, else measured): the microscopy policy for compact objects, the preset's own
    for vessels; a named policy spelt out; any other policy as given."""
    from synthmed.training.augment import resolve_policy

    if policy != "auto":
        return resolve_policy(policy, "vessel")
    from synthmed.data.profile import mask_kind_of
    from synthmed.presets import preset as preset_settings

    kind = mask_kind_of(data)["kind"]
    preset_policy = preset_settings(preset, stage).get("train", {}).get("augment", "")
    return resolve_policy(policy, kind, preset_policy)


def train(
    stage: str,
    data: str | Path | PreparedDataset,
    out: str | Path,
    preset: str = "default",
    resume: bool = False,
    **overrides: Any,
) -> Path:
    """Train one stage into the run folder ``out``; returns its ``generator/`` folder.

    Args:
        stage: "geometry" (Stage I), "refiner" (Stage I's coarse-to-fine U-Net), "texture"
            (Stage II) or "single" (the one-GAN baseline).
        data: a prepared dataset or its folder (``synthmed prepare``).
        out: the run folder; a new one, or the run to continue with ``resume``.
        preset: "default", "paper" or "drive512" (synthmed.presets).
        resume: continue ``out`` from its last checkpoint with its own options; only
            ``steps`` (the total), ``device`` and ``precision`` may change.
        overrides: options by name (see the module docstring); None keeps the preset's.
            ``augment="auto"`` picks the augmentations from the masks' kind (compact objects:
            "microscopy", 90-degree rotations and flips, brightness and contrast; vessels:
            the preset's); options.json records the operations chosen.
    """
    if not isinstance(data, PreparedDataset):
        data = PreparedDataset.load(data)
    out = Path(out)
    check_run_folder(out, resume)
    loop, model, stage_options = resolve_options(stage, out, preset, resume, overrides)
    if not resume:  # a resumed run's options.json holds the operations already
        loop["augment"] = _augment_policy(loop.get("augment", ""), data, preset, stage)
    opts = TrainOptions(**loop)
    if opts.steps < 1 or opts.batch_size < 1:
        raise UserError("--steps and --batch-size must be positive")
    if stage in ("geometry", "single"):
        from synthmed.training.geometry import train_geometry

        cfg = _geometry_config(stage, model, data)
        return train_geometry(data, out, cfg, opts, resume, GeometryStageOptions(**stage_options))
    from synthmed.training.texture import train_texture

    cfg = _texture_config(stage, model, data, opts.crop)
    target = "mask" if stage == "refiner" else "image"
    options = TextureStageOptions(**stage_options)
    return train_texture(data, out, cfg, opts, resume, options, target)
