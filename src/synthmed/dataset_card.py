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
the manifest does not. ``synthmed card FOLDER --metrics REPORT/metrics.json``
(:func:`add_evaluation`) later puts an evaluation's headline figures into the card: the
``synthmed_evaluation`` front matter key and the Evaluation section, from ``metrics.json``,
which it copies beside the card (where ``synthmed publish`` looks for it).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from synthmed import safe_yaml
from synthmed.errors import UserError
from synthmed.files import atomic_write, read_json, sha256_file, write_json

DATALIST = "datalist.json"
CARD = "README.md"
METRICS = "metrics.json"  # synthmed evaluate all's figures, beside the card they are quoted in
EVALUATION_KEY = "synthmed_evaluation"  # the front matter key of the evaluation's figures
# The name synthmed evaluate all gives its --synthetic set (synthmed.evaluation.api.MAIN_SET;
# spelt out so that generating a dataset does not import the evaluation).
MAIN_SET = "dual GAN"
# The fidelity figures a card quotes (synthmed.evaluation.fidelity.HEADLINE): (family, metric).
HEADLINE = (
    ("kl", "mean"),
    ("sharpness", "ratio"),
    ("features", "fid"),
    ("features", "kid_mean"),
    ("features", "precision"),
    ("features", "recall"),
)
# What the test split's recorded role says about figures measured on it.
ROLES = {
    "test": "the test split: no choice was made on it",
    "val": "a validation split: settings may have been chosen on it, so its figures are optimistic",
    "holdout": "held out from training; whether choices were made on it is not recorded",
}
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


def _evaluation(name: str, summary: Mapping[str, Any] | None = None) -> str:
    """The card's Evaluation section: the headline figures of ``summary``
    (:func:`evaluation_summary`), or how to add them."""
    if summary is None:
        return (
            "## Evaluation\n\n"
            "Not evaluated yet. Utility (a segmenter trained on these pairs, scored on real "
            "held-out images), fidelity and privacy figures are added here by `synthmed card "
            f"{name} --metrics REPORT/metrics.json` after `synthmed evaluate all --synthetic "
            f"{name} ... --out REPORT`.\n"
        )
    lines = [
        "## Evaluation\n",
        f'The figures of set "{_cell(summary["set"])}" in `{METRICS}` (in this folder, '
        f"SHA-256 `{summary['metrics_sha256']}`), measured by `synthmed evaluate all` on "
        f"{summary.get('date') or 'an unrecorded date'}; every number and its definition are "
        "there, and in the evaluation's report.html.\n",
    ]
    if summary.get("command"):
        lines += [_fenced(summary["command"], "bash"), ""]
    return "\n".join(lines + _utility_lines(summary) + _fidelity_lines(summary["fidelity"]))


def _utility_lines(summary: Mapping[str, Any]) -> list[str]:
    """The Evaluation section's utility paragraph and table."""
    u, t = summary["utility"], summary["test_split"]
    role = ROLES.get(t.get("role"), "its role (validation or test) is not recorded")
    where = "native size" if u.get("scored_at") == "native" else "the working resolution"
    digest = str(t.get("digest") or "not recorded")
    lines = [
        "### Utility\n",
        f"The same MONAI U-Net and recipe ({u['steps']} steps, {u['seeds']} seed(s)) trained on "
        "the real training pairs, on these synthetic pairs, and on both, each scored on held-out "
        f"real images by the DRIVE protocol at {where}: {_cell(t.get('source') or '?')} "
        f"({t.get('count')} images, digest `{digest}`), {role}.\n",
        "| trained on | F1, mean ± std over seeds | F1 − real only [interval] |",
        "|---|---|---|",
        f"| real pairs only | {_f1(u['f1_real_only'])} | |",
        f"| these synthetic pairs only | {_f1(u['f1_synthetic_only'])} | "
        f"{_gain(u.get('f1_gain_synthetic_only'))} |",
    ]
    if u.get("f1_real_plus_synthetic"):
        share = f"{u['synthetic_share']:.0%} of patches synthetic"
        lines.append(
            f"| real + synthetic ({share}) | {_f1(u['f1_real_plus_synthetic'])} | "
            f"{_gain(u.get('f1_gain_real_plus_synthetic'))} |"
        )
    lines.append(
        "\nIntervals: two-level bootstrap over the test images and the seeds (the gain's "
        "`definition` in metrics.json).\n"
    )
    return lines


def _fidelity_lines(f: Mapping[str, Any]) -> list[str]:
    """The Evaluation section's fidelity paragraph and table."""
    z = f.get("sizes") or {}
    lines = [
        "### Fidelity\n",
        f"Median [5–95 %] over {z.get('splits')} splits of the real training set: each split "
        f"sets {z.get('a')} real images against {z.get('compared')} of these pairs and against "
        f"{z.get('compared')} other real images, so every figure stands beside its real-vs-real "
        f"reference at the same sizes. Features: {_cell(f.get('extractor') or '?')}.\n",
        "| figure | these pairs vs real | real vs real | |",
        "|---|---|---|---|",
    ]
    for key, v in f["figures"].items():
        syn, ref = v["synthetic"], v["real_vs_real"]
        lines.append(
            f"| {key.replace('_', ' ')} | {_spread(syn)} | {_spread(ref)} | {v['verdict']} |"
        )
    critic = f.get("mask_critic")
    if critic:
        lo, hi = critic["interval"]
        lines.append(
            f"\nA CNN told these masks from real ones with AUC {critic['auc']:.3f} "
            f"({lo:.3f} … {hi:.3f}; chance 0.5), cross-validated."
        )
    nearest = f.get("mask_nearest_neighbour_dice") or {}
    if "generated_to_train" in nearest:
        ours, held = nearest["generated_to_train"], nearest.get("held_out_to_train")
        line = (
            f"\nMemorisation: each mask's nearest real training mask has Dice median "
            f"{ours['median']:.3f}, max {ours['max']:.3f} (1: a copy)"
        )
        if held:
            line += f"; held-out real masks: median {held['median']:.3f}, max {held['max']:.3f}"
        lines.append(line + ".")
    return [*lines, ""]


def _f1(value: Mapping[str, float]) -> str:
    return f"{value['mean']:.4f} ± {value['std']:.4f}"


def _gain(value: Mapping[str, Any] | None) -> str:
    if not value:
        return ""
    lo, hi = value["interval"]
    return f"{value['gain']:+.4f} [{lo:+.4f}, {hi:+.4f}] ({value['level']:.0%})"


def _spread(value: Mapping[str, float]) -> str:
    return f"{value['median']:.4g} [{value['p5']:.4g} – {value['p95']:.4g}]"


def _cell(text: Any) -> str:
    """Text for a Markdown line or table cell: no line breaks, no column separators."""
    return " ".join(str(text).split()).replace("|", "\\|")


def evaluation_summary(
    metrics: Mapping[str, Any], name: str = MAIN_SET, digest: str | None = None
) -> dict[str, Any]:
    """The headline figures of set ``name`` in ``synthmed evaluate all``'s ``metrics``: what
    the card carries (front matter and Evaluation section).

    Utility: the F1 of the segmenters trained on real pairs only, on the synthetic pairs
    only and on both, with each gain over real-only and its interval, and the test split
    they were measured on (source, count, digest, role). Fidelity: the :data:`HEADLINE`
    figures, each synthetic median [5-95 %] beside its real-vs-real reference, and the mask
    critic's AUC when it ran. ``digest``: the SHA-256 of the metrics file, recorded with them.
    """
    utility, fidelity = metrics.get("utility"), metrics.get("fidelity")
    if not isinstance(utility, dict) or not isinstance(fidelity, dict):
        raise UserError("not the metrics.json of synthmed evaluate all (no utility and fidelity)")
    arms, sets = utility.get("arms") or {}, fidelity.get("sets") or {}
    if name not in arms or name not in sets or "real" not in arms:
        names = [a for a in arms if a in sets]
        raise UserError(
            f"set {name!r}: not among the evaluated sets ({', '.join(names) or 'none'}); "
            "name it with --set"
        )
    gains = utility.get("f1_gain_over_real") or {}
    context, provenance = metrics.get("context") or {}, metrics.get("provenance") or {}
    test = (provenance.get("splits") or {}).get("test") or {}
    both = arms.get(f"real+{name}")
    return {
        "set": name,
        "metrics_sha256": digest,
        "command": context.get("command"),
        "date": (context.get("machine") or {}).get("date"),
        "resolution": context.get("resolution"),
        "test_split": {
            "source": test.get("source"),
            "count": test.get("count"),
            "digest": test.get("digest"),
            "role": provenance.get("test_role"),
        },
        "utility": {
            "scored_at": arms[name].get("scored_at"),
            "steps": (utility.get("recipe") or {}).get("steps"),
            "seeds": len(utility.get("seeds") or []),
            "synthetic_share": utility.get("synthetic_share"),
            "f1_real_only": _f1_of(arms["real"]),
            "f1_synthetic_only": _f1_of(arms[name]),
            "f1_real_plus_synthetic": _f1_of(both) if both else None,
            "f1_gain_synthetic_only": _gain_of(gains.get(name)),
            "f1_gain_real_plus_synthetic": _gain_of(gains.get(f"real+{name}")),
        },
        "fidelity": _fidelity_of(fidelity, sets[name]),
    }


def _f1_of(arm: Mapping[str, Any]) -> dict[str, float]:
    return {"mean": arm["mean"]["f1"], "std": arm["std"]["f1"]}


def _gain_of(gain: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not gain:
        return None
    return {"gain": gain["gain"], "interval": list(gain["interval"]), "level": gain["level"]}


def _fidelity_of(fidelity: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """A set's headline fidelity figures beside their real-vs-real references."""
    matched, figures = entry.get("matched") or {}, {}
    for family, metric in HEADLINE:
        v = (matched.get(family) or {}).get(metric)
        if v:
            keep = ("median", "p5", "p95")
            figures[f"{family}_{metric}" if family != "features" else metric] = {
                "synthetic": {k: v["synthetic"][k] for k in keep},
                "real_vs_real": {k: v["real_vs_real"][k] for k in keep},
                "verdict": v["verdict"],
            }
    sizes = entry.get("sizes") or {}
    out: dict[str, Any] = {
        "extractor": fidelity.get("extractor"),
        "sizes": {k: sizes.get(k) for k in ("splits", "a", "compared")},
        "figures": figures,
    }
    critic = entry.get("mask_critic") or {}
    if "auc" in critic:
        out["mask_critic"] = {"auc": critic["auc"], "interval": list(critic["interval"])}
    nearest = entry.get("mask_nearest_neighbours") or {}
    memorisation = {
        side: {k: nearest[side][k] for k in ("median", "max") if k in nearest[side]}
        for side in ("generated_to_train", "held_out_to_train")
        if isinstance(nearest.get(side), dict)
    }
    if memorisation:
        out["mask_nearest_neighbour_dice"] = memorisation
    return out


def add_evaluation(
    folder: str | Path, metrics: str | Path | None = None, name: str = MAIN_SET
) -> Path:
    """Put the figures of set ``name`` of an evaluation into the card of the generated
    dataset ``folder``; returns the card's path.

    ``metrics``: ``synthmed evaluate all``'s metrics.json (default: the one in ``folder``); it
    is copied into ``folder`` (so ``synthmed publish`` uploads the same figures), then the
    card's ``synthmed_evaluation`` front matter and Evaluation section are replaced, the rest
    kept as it is (an edited license stays). Both files are written atomically. A folder
    without a card gets one from its manifest.
    """
    folder = Path(folder)
    source = Path(metrics) if metrics is not None else folder / METRICS
    values = read_json(source)
    if not isinstance(values, dict):
        raise UserError(f"{source}: not the metrics.json of synthmed evaluate all")
    summary = evaluation_summary(values, name, sha256_file(source))
    if not (folder / "manifest.json").is_file():
        raise UserError(f"{folder}: no manifest.json (not a folder synthmed generate wrote)")
    manifest = read_json(folder / "manifest.json")
    count = values["fidelity"]["sets"][name].get("count")
    if count is not None and manifest.get("count") not in (None, count):
        raise UserError(
            f"{source}: set {name!r} has {count} pairs but {folder} has {manifest['count']}; "
            "was another set evaluated? (name it with --set)"
        )
    card = folder / CARD
    text = card.read_text(encoding="utf-8") if card.is_file() else None
    text = with_evaluation(text or card_text(folder.name, manifest, None), folder.name, summary)
    target = folder / METRICS
    if not target.exists() or source.resolve() != target.resolve():
        atomic_write(target, lambda p: shutil.copyfile(source, p))
    atomic_write(card, lambda p: p.write_text(text, encoding="utf-8"))
    return card


def with_evaluation(text: str, name: str, summary: Mapping[str, Any]) -> str:
    """A card's text with ``summary`` as its ``synthmed_evaluation`` front matter and its
    Evaluation section (both replaced when present; the rest of the card unchanged)."""
    head, body = "", text
    if text.startswith("---\n") and (end := text.find("\n---\n", 3)) >= 0:
        head, body = text[4:end], text[end + 5 :]
    lines = _without_key(head.split("\n") if head else [], EVALUATION_KEY)
    lines += safe_yaml.dump({EVALUATION_KEY: dict(summary)}).splitlines()
    body = _with_section(body, "## Evaluation", _evaluation(name, summary))
    return "---\n" + "\n".join(lines) + "\n---\n" + body


def _without_key(lines: list[str], key: str) -> list[str]:
    """Front matter lines without the top-level ``key`` and everything indented under it."""
    out, skipping = [], False
    for line in lines:
        if line.startswith(f"{key}:"):
            skipping = True
            continue
        if skipping and (not line or line[0] in " \t-"):
            continue
        skipping = False
        out.append(line)
    return out


def _with_section(body: str, heading: str, section: str) -> str:
    """``body`` with the section under ``heading`` (up to the next heading of level 1 or 2,
    outside fenced code) replaced by ``section``; added before the License section, or at
    the end, when missing."""
    lines = body.split("\n")
    starts, fence = [], None
    for i, line in enumerate(lines):
        if fence is None and line.startswith("```"):
            fence = line[: len(line) - len(line.lstrip("`"))]
        elif fence is not None and line.rstrip() == fence:
            fence = None
        elif fence is None and line.startswith(("# ", "## ")):
            starts.append(i)
    new = section.rstrip("\n").split("\n") + [""]
    own = [i for i in starts if lines[i].rstrip() == heading]
    if own:
        begin = own[0]
        end = next((i for i in starts if i > begin), len(lines))
        tail = lines[end:] if end < len(lines) else []
        return "\n".join(lines[:begin] + new + tail)
    licence = [i for i in starts if lines[i].rstrip() == "## License"]
    if licence:
        return "\n".join(lines[: licence[0]] + new + lines[licence[0] :])
    return body.rstrip("\n") + "\n\n" + "\n".join(new)


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
