"""The two files that let other tools pick up a generated dataset folder.

* ``datalist.json``: the Medical Segmentation Decathlon shape that
  ``monai.data.load_decathlon_datalist(path, data_list_key="training")`` reads, one
  ``{"image", "label", "fov"}`` entry per pair with paths relative to the folder (MONAI makes
  them absolute against the datalist's folder, so the dataset can move).
* ``README.md``: a dataset card in the Hugging Face style, YAML front matter (license, task,
  tags, the generators' training data as ``source_datasets``, and a ``synthmed`` mapping with
  the models' weights hashes and key settings) then a short text: what the data is, how it was
  made, its layout, how to load it, and its evaluation.

Both are derived from the manifest that :mod:`synthmed.generation` writes, so they say nothing
the manifest does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from synthmed import safe_yaml
from synthmed.files import write_json

DATALIST = "datalist.json"
CARD = "README.md"
# The config entries a card shows per model; the manifest keeps the whole config.
KEY_FACTS = (
    "resolution",
    "channels",
    "in_channels",
    "out_channels",
    "z_dim",
    "ngf",
    "style_dim",
    "coarse",
    "coarse_kind",
    "coarse_clip",
    "canonical_side",
)
# Hugging Face's size_categories buckets (upper bound, label).
SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))
GENERATORS = {
    "dual": "dual GAN: Stage I DCGAN vessel masks, Stage II pix2pix images",
    "single": "single GAN: one DCGAN draws image and mask together (the paper's baseline)",
    "translate": "Stage II only: pix2pix images for given masks",
}
NO_LICENSE = "other"


def write_dataset_files(
    folder: Path, name: str, names: Sequence[str], manifest: Mapping[str, Any], license: str | None
) -> None:
    """Write ``datalist.json`` and ``README.md`` into a dataset folder being built.

    ``name`` is the folder's final name (``folder`` may be a temporary one), ``names`` the
    file stems of the pairs in order, ``license`` an SPDX-like id or None (then the card
    says ``other`` and that the user must set it).
    """
    write_json(folder / DATALIST, datalist(name, names, manifest))
    (folder / CARD).write_text(card_text(name, manifest, license), encoding="utf-8")


def datalist(name: str, names: Sequence[str], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The Decathlon-style datalist of a dataset folder (paths relative to the folder)."""
    layout = manifest.get("layout", {"images": "images/", "masks": "masks/", "fov": "fov/"})
    entries = [
        {
            "image": f"{layout['images']}{stem}.png",
            "label": f"{layout['masks']}{stem}.png",
            "fov": f"{layout['fov']}{stem}.png",
        }
        for stem in names
    ]
    return {
        "name": name,
        "description": describe(manifest),
        "reference": "synthmed generate (see README.md and manifest.json in this folder)",
        "numTraining": len(entries),
        "training": entries,
    }


def generator_kind(manifest: Mapping[str, Any]) -> str:
    """The generator's kind from the manifest: "dual", "single" or "translate" (Stage II
    on given masks)."""
    models = manifest.get("models", {})
    if "single" in models:
        return "single"
    if "masks_from" in manifest or "geometry" not in models:
        return "translate"
    return "dual"


def describe(manifest: Mapping[str, Any]) -> str:
    """One sentence: how many synthetic pairs of what size, from which generator."""
    res, n = manifest.get("resolution", "?"), manifest.get("count", "?")
    colour = {3: "RGB ", 1: "grayscale "}.get(manifest.get("channels"), "")
    return (
        f"{n} synthetic {colour}images with binary vessel masks and fields of view at "
        f"{res} x {res} px, made by synthmed {manifest.get('version', '?')} "
        f"({GENERATORS[generator_kind(manifest)]})."
    )


def training_data(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The generators' training sets, one entry per distinct digest, with the models that
    learnt from it (models trained before records were kept have none)."""
    by_digest: dict[str, dict[str, Any]] = {}
    for model, entry in manifest.get("models", {}).items():
        record = entry.get("trained_on")
        if not record:
            continue
        key = record.get("digest", "?")
        seen = by_digest.setdefault(
            key,
            {
                "source": record.get("source", "?"),
                "count": record.get("count"),
                "digest": key,
                "models": [],
            },
        )
        seen["models"].append(model)
    return list(by_digest.values())


def source_datasets(manifest: Mapping[str, Any]) -> list[str]:
    """``source_datasets`` for the front matter: one line per training set (and the given
    masks of a Stage II-only set), naming its source, size and content digest."""
    lines = [
        f"{t['source']} ({t['count']} images, sha256 digest {t['digest']})"
        for t in training_data(manifest)
    ]
    if "masks_from" in manifest:
        lines.append(f"{manifest['masks_from']} (the masks rendered here)")
    return lines


def models_summary(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per model: its weights' SHA-256 (when loaded from disk) and its config's key facts."""
    out = {}
    for model, entry in manifest.get("models", {}).items():
        config = entry.get("config", {})
        facts = {k: config[k] for k in KEY_FACTS if k in config}
        out[model] = {"sha256": entry.get("sha256"), "config": facts}
    return out


def front_matter(name: str, manifest: Mapping[str, Any], license: str | None) -> dict[str, Any]:
    """The card's YAML front matter as a mapping (Hugging Face keys, then ``synthmed``)."""
    n = int(manifest.get("count", 0))
    size = next((label for top, label in SIZES if n < top), "n>1M")
    matter: dict[str, Any] = {
        "license": license or NO_LICENSE,
        "pretty_name": f"{name}: synthetic vessel masks and images (synthmed)",
        "size_categories": [size],
        "task_categories": ["image-segmentation"],
        "tags": ["synthetic", "medical-imaging", "synthmed"],
    }
    if sources := source_datasets(manifest):
        matter["source_datasets"] = sources
    matter["synthmed"] = {
        "generator": generator_kind(manifest),
        "models": models_summary(manifest),
        "training_data": training_data(manifest),
        "seed": manifest.get("seed"),
        "count": n,
        "resolution": manifest.get("resolution"),
        "channels": manifest.get("channels"),
        "version": manifest.get("version"),
        "created": manifest.get("created"),
        "command": manifest.get("command"),
    }
    return matter


def card_text(name: str, manifest: Mapping[str, Any], license: str | None) -> str:
    """The whole ``README.md``: front matter between ``---`` lines, then the text."""
    sections = [
        f"# {name}\n\n{describe(manifest)}\n",
        _made(manifest),
        _layout(),
        _loading(name, manifest.get("resolution", 512)),
        _evaluation(name),
        _license(license),
    ]
    head = safe_yaml.dump(front_matter(name, manifest, license))
    return f"---\n{head}---\n\n" + "\n".join(sections)


def _made(manifest: Mapping[str, Any]) -> str:
    """How it was made: generator, seed, models with hashes, training data, command."""
    seed = manifest.get("seed")
    lines = [
        "## How it was made\n",
        f"Seed {seed}; the same models and seed give the same pairs.\n",
    ]
    for model, facts in models_summary(manifest).items():
        lines.append(f"* `{model}`: weights SHA-256 `{facts['sha256'] or 'not recorded'}`")
    data = training_data(manifest)
    lines.append("")
    for t in data:
        what = f"{t['count']} images; digest `{t['digest']}`; {', '.join(t['models'])}"
        lines.append(f"Trained on {t['source']} ({what}).")
    if not data:
        lines.append("The models' training data was not recorded (trained before records).")
    if "masks_from" in manifest:
        lines.append(f"Masks from {manifest['masks_from']}.")
    command = manifest.get("command")
    lines.append("")
    if command:
        lines += ["Command:\n", _fenced(command, "bash")]
    else:
        lines.append("Made through the Python API (no command line recorded).")
    lines.append("\nEverything else (whole configs, precision, tiling) is in `manifest.json`.\n")
    return "\n".join(lines)


def _layout() -> str:
    return (
        "## Layout\n\n"
        "```\n"
        "images/NNNN.png   the synthetic images\n"
        "masks/NNNN.png    vessel masks, 0 = background, 255 = vessel\n"
        "fov/NNNN.png      fields of view, 0 = outside, 255 = inside\n"
        "datalist.json     MONAI Decathlon-style datalist (image, label, fov per pair)\n"
        "manifest.json     generator, models' configs and weights hashes, seed, count\n"
        "README.md         this card\n"
        "```\n"
    )


def _loading(name: str, res: int) -> str:
    snippet = (
        "from monai.data import load_decathlon_datalist\n"
        "from monai.transforms import LoadImaged\n\n"
        f'items = load_decathlon_datalist("{name}/datalist.json", data_list_key="training")\n'
        'pair = LoadImaged(keys=["image", "label", "fov"])(items[0])'
    )
    return (
        "## Loading\n\n"
        "With MONAI (paths in the datalist are relative to this folder):\n\n"
        f"{_fenced(snippet, 'python')}\n\n"
        f"With synthmed: `synthmed prepare folder {name} --res {res} --out PREPARED` (or pass "
        "the folder to `synthmed evaluate`).\n"
    )


def _evaluation(name: str) -> str:
    return (
        "## Evaluation\n\n"
        "Not evaluated yet. Utility (a segmenter trained on these pairs, scored on real "
        "held-out images), fidelity and privacy figures are added here when `synthmed "
        f"evaluate` results are given (`synthmed evaluate all --synthetic {name} ...`).\n"
    )


def _license(license: str | None) -> str:
    if license:
        return f"## License\n\n`{license}`.\n"
    return (
        "## License\n\n"
        f"Not set: `license: {NO_LICENSE}` above is a placeholder. Set it (e.g. with `synthmed "
        "generate --license ID`, or by editing the front matter) to terms that the training "
        "data's license allows: synthetic data made by models trained on a dataset may be "
        "bound by that dataset's terms.\n"
    )


def _fenced(text: str, lang: str) -> str:
    """A fenced code block whose fence is longer than any run of backticks in ``text``."""
    fence = "`" * max(3, _longest_backticks(text) + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


def _longest_backticks(text: str) -> int:
    """The longest run of consecutive backticks in ``text``."""
    run = best = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        best = max(best, run)
    return best
