"""``synthmed.evaluate``: the whole evaluation of synthetic data in one call.

Utility (segmenters trained on the real pairs, on each synthetic set and on both, scored on
held-out real images), fidelity (each figure beside its real-vs-real spread), the mask
critic, the provenance check and, with ``out``, the report folder (``metrics.json``,
``figures/``, ``report.html``). ``synthmed evaluate all`` turns its flags into these
arguments and calls :func:`evaluate`, so a notebook gets the same numbers::

    import synthmed
    metrics = synthmed.evaluate(
        "synth/", "work/mine/train", "work/mine/val",
        utility=synthmed.UtilitySettings("smoke", seeds=(0, 1)), out="report/",
    )
    metrics["utility"]["f1_gain_over_real"]["dual GAN"]["interval"]

The loading and checking helpers here (:func:`load_data`, :func:`provenance_of`,
:func:`extractor_for`) also serve ``evaluate utility`` and ``evaluate fidelity``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthmed.data.prepared import PreparedDataset
from synthmed.errors import UserError
from synthmed.evaluation.features import FeatureExtractor
from synthmed.evaluation.utility import UtilitySettings
from synthmed.files import read_json

Data = str | Path | PreparedDataset  # a prepared dataset, or a folder of any supported layout
MAIN_SET = "dual GAN"  # the name a single synthetic set gets (evaluate all's --synthetic)


@dataclass(frozen=True)
class FidelitySettings:
    """How the fidelity half runs: the feature network behind FID / KID / precision-recall,
    the mask critic, and the sets compared on fidelity alone."""

    inception_weights: str | Path | None = None  # local InceptionV3 weights (else an encoder)
    # Real pairs of the same modality, disjoint from every compared set, for the feature
    # encoder (None: procedural phantoms); a folder's path also names it in the results.
    extractor_data: Data | None = None
    extractor_steps: int = 300  # training steps of the domain encoder
    critic_steps: int = 300  # steps of each fold's real-vs-synthetic mask critic (0: none)
    device: str = "auto"
    # More synthetic sets by name, side by side with the others on fidelity and samples only
    # (no segmenters: cheap), e.g. an older pipeline's.
    compare: Mapping[str, Data] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportOptions:
    """What the report shows besides the evaluation's own figures."""

    runs: Mapping[str, str | Path] = field(default_factory=dict)  # runs whose losses to draw
    command: str | None = None  # the command line recorded (None: this Python call)


def folder_resolution(folder: str | Path) -> int | None:
    """The working resolution a folder records: a generated folder's ``manifest.json`` or a
    prepared folder's ``dataset.json``; None when it records none."""
    for name in ("manifest.json", "dataset.json"):
        described = Path(folder) / name
        if described.is_file() and "resolution" in (meta := read_json(described)):
            return int(meta["resolution"])
    return None


def load_data(data: Data, res: int, resize: bool = False) -> PreparedDataset:
    """A dataset at ``res``. Generated sets may be resized to it (``resize``: e.g. a 128 px
    baseline judged beside 512 px data); real sets never are, their scores are taken at
    native size through the transforms recorded when they were prepared."""
    from synthmed.data.sources import load_any

    loaded = data if isinstance(data, PreparedDataset) else load_any(data, res)
    return loaded.resized(res) if resize else loaded


def load_extractor_data(
    data: Data, res: int, compared: dict[str, PreparedDataset] | None = None
) -> PreparedDataset:
    """The pairs the feature encoder trains on (``--extractor-data``), at ``res``.

    They must be disjoint from every compared set (the real training set, the synthetic
    sets, the test set): an encoder that saw the compared images scores them too well.
    ``compared``: those sets by how an error should name them; a shared image is a
    UserError (exit 2) naming it.
    """
    from synthmed.data import provenance

    loaded = load_data(data, res)
    hashes = {what: provenance.image_hashes(d) for what, d in (compared or {}).items()}
    label = "the given data" if isinstance(data, PreparedDataset) else str(data)
    provenance.check_disjoint(loaded, hashes, f"--extractor-data {label}")
    return loaded


def extractor_for(
    settings: FidelitySettings, res: int, compared: dict[str, PreparedDataset] | None = None
) -> FeatureExtractor:
    """The feature network of ``settings`` (Inception weights, else an encoder trained on
    its extractor data, else on phantoms); ``compared`` names the sets the extractor data
    must not share an image with."""
    from synthmed.evaluation.suite import pick_extractor

    data, label = settings.extractor_data, None
    if data is not None:
        label = None if isinstance(data, PreparedDataset) else str(data)
        data = load_extractor_data(data, res, compared)
    return pick_extractor(
        res,
        settings.inception_weights,
        extractor_data=data,
        extractor_data_label=label,
        steps=settings.extractor_steps,
        device=settings.device,
    )


def _manifest(folder: str | Path | None) -> dict[str, Any]:
    """A generated folder's manifest.json ({} for other folders, or no folder)."""
    path = Path(folder) / "manifest.json" if folder is not None else None
    meta = read_json(path) if path is not None and path.is_file() else {}
    return meta if isinstance(meta, dict) else {}


def provenance_of(
    real_train: PreparedDataset,
    real_test: PreparedDataset,
    synthetic: dict[str, tuple[str | Path | None, PreparedDataset]],
) -> dict[str, Any]:
    """Check that no test image trained anything evaluated here, and describe every split.

    ``synthetic``: name -> (folder or None, loaded set). The segmenters train on
    ``real_train`` and on each synthetic set's own pairs; the generators behind a set trained
    on the images its folder's manifest records. Raises a UserError (exit 2) naming the first
    shared image; returns each split's source, count and digest for the report.
    """
    from synthmed.data import provenance

    training = {"the real training set": provenance.image_hashes(real_train)}
    splits = {"real training": provenance.record(real_train)}
    for name, (folder, data) in synthetic.items():
        training[f"the pairs of {name}"] = provenance.image_hashes(data)
        for stage, hashes in provenance.manifest_training_sets(_manifest(folder)).items():
            training[f"the training data of {name}'s {stage} model"] = hashes
            splits[f"{name}: {stage} training data"] = {
                "count": len(hashes),
                "digest": provenance.digest(hashes),
            }
    provenance.check_disjoint(real_test, training, f"test set {real_test.meta.get('source', '')}")
    splits["test"] = provenance.record(real_test)
    for entry in splits.values():
        entry.pop("images", None)  # the digest names the split; the hashes are in dataset.json
    return {"splits": splits, "test_role": real_test.meta.get("split")}


def _folder(data: Data) -> str | Path | None:
    """Where a set was read from (None for a set given in memory)."""
    return None if isinstance(data, PreparedDataset) else data


def _resolution(synthetic: dict[str, Data], res: int | None) -> int:
    """``res``, else the first synthetic set's own resolution."""
    if res:
        return res
    first = next(iter(synthetic.values()))
    found = first.resolution if isinstance(first, PreparedDataset) else folder_resolution(first)
    if found is None:
        raise UserError(
            f"{first}: no manifest.json or dataset.json to take the resolution from; pass res="
        )
    return found


def evaluate(
    synthetic: Data | Mapping[str, Data],
    real_train: Data,
    real_test: Data,
    *,
    utility: UtilitySettings | None = None,
    fidelity: FidelitySettings | None = None,
    res: int | None = None,
    out: str | Path | None = None,
    report: ReportOptions | None = None,
) -> dict[str, Any]:
    """Evaluate synthetic sets against real data: utility, fidelity, provenance, the report.

    Args:
        synthetic: a generated folder (or prepared set), named "dual GAN" as ``synthmed
            evaluate all`` names its ``--synthetic``; or several by name (e.g. a baseline
            beside it), each getting its own synthetic and real + synthetic arms.
        real_train: the real pairs the segmenters' real arm (and the fidelity figures'
            reference) learn from.
        real_test: held-out real pairs every segmenter is scored on; it may share no image
            with anything that trained a segmenter or a generator (UserError otherwise).
        utility: how the segmenters are trained (:class:`UtilitySettings`; None: its
            defaults, the "cpu" budget and three seeds). Its ``mask_kind`` (vessel, compact,
            or auto: the real training set's) decides the mask statistics of both halves.
        fidelity: the feature network, the mask critic, fidelity-only sets
            (:class:`FidelitySettings`; None: its defaults).
        res: the working resolution (None: the first synthetic set's own). Synthetic sets
            are resized to it; real ones are read at it and scored at native size.
        out: a folder for ``metrics.json``, ``figures/`` and ``report.html`` (None: none).
        report: what else the report shows (:class:`ReportOptions`).

    Returns the metrics dict that ``metrics.json`` holds: ``utility``, ``fidelity``,
    ``context`` (command, machine, resolution) and ``provenance`` (each split's digest).
    """
    from synthmed.evaluation.critic import CriticConfig
    from synthmed.evaluation.suite import add_mask_critic, evaluate_all, machine

    utility, fidelity = utility or UtilitySettings(), fidelity or FidelitySettings()
    report = report or ReportOptions()
    named = dict(synthetic) if isinstance(synthetic, Mapping) else {MAIN_SET: synthetic}
    if not named:
        raise UserError("evaluate: no synthetic set given")
    res = _resolution(named, res)
    sets = {name: load_data(data, res, resize=True) for name, data in named.items()}
    train, test = load_data(real_train, res), load_data(real_test, res)
    compare = {name: load_data(data, res, resize=True) for name, data in fidelity.compare.items()}
    # Sets compared on fidelity only train no segmenter, but their generators' data must
    # still not be the test data: the report puts them side by side with the others.
    folders = {name: _folder(data) for name, data in (named | dict(fidelity.compare)).items()}
    checked = provenance_of(
        train, test, {name: (folders[name], data) for name, data in (sets | compare).items()}
    )
    compared = {"the real training set": train, "the test set": test}
    compared |= {f"the pairs of {name}": data for name, data in (sets | compare).items()}
    extractor = extractor_for(fidelity, res, compared)
    metrics = evaluate_all(train, test, sets, utility, extractor, fidelity_only=compare)
    if fidelity.critic_steps > 0:
        config = CriticConfig(steps=fidelity.critic_steps)
        add_mask_critic(metrics["fidelity"], train, sets | compare, config, fidelity.device)
    command = report.command or "synthmed.evaluate(...) from Python"
    metrics["context"] = {"command": command, "machine": machine(), "resolution": res}
    metrics["provenance"] = checked
    if out is not None:
        _write(out, metrics, {"real": train, **sets, **compare}, report)
    return metrics


def _write(
    out: str | Path,
    metrics: dict[str, Any],
    sets: dict[str, PreparedDataset],
    report: ReportOptions,
) -> Path:
    """The report folder: ``metrics.json``, ``figures/*.png``, ``report.html`` (its path)."""
    from synthmed.evaluation import plots
    from synthmed.evaluation.report import write_report

    vessels = metrics["fidelity"]["mask_kind"]["kind"] == "vessel"
    figures = {
        "samples": plots.samples_figure(sets),
        "training_losses": plots.loss_curves_figure({k: Path(v) for k, v in report.runs.items()}),
        "intensity_histograms": plots.histograms_figure(sets),
        # The mask statistics' figure: vessel widths, or the compact objects' areas.
        "vessel_widths" if vessels else "object_areas": (
            plots.widths_figure(sets) if vessels else plots.object_sizes_figure(sets)
        ),
        "fidelity_references": plots.references_figure(metrics["fidelity"]),
    }
    return write_report(out, metrics, figures)
