"""Generated dataset folders carry a MONAI datalist and a Hugging Face-style dataset card:
tiny models (2 steps at 32 px on phantoms) through the CLI, then MONAI and PyYAML read them;
`synthmed card` puts a tiny evaluation's figures into the card."""

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from synthmed import dataset_card, safe_yaml
from synthmed.cli import main
from synthmed.data import provenance
from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import phantom_dataset
from synthmed.files import sha256_file
from synthmed.models.loading import component_folder

TINY = ["--steps", "2", "--batch-size", "2", "--ngf", "8", "--ndf", "8", "--device", "cpu"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """8 phantoms at 32 px, a geometry and a texture run on them, and 4 generated pairs."""
    root = tmp_path_factory.mktemp("card")
    phantom_dataset(8, 32).save(root / "real")
    for stage in ("geometry", "texture"):
        argv = ["train", stage, "--data", str(root / "real"), "--out", str(root / stage), *TINY]
        assert main(argv) == 0
    models = ["--geometry", str(root / "geometry"), "--texture", str(root / "texture")]
    argv = ["generate", *models, "--n", "4", "--device", "cpu", "--out", str(root / "synth")]
    assert main(argv) == 0
    return root


def front_matter(folder: Path) -> tuple[dict, str]:
    """The card's YAML front matter (parsed) and the text below it."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    first, head, body = text.split("---\n", 2)
    assert first == ""  # the card starts with its front matter
    return yaml.safe_load(head), body


@pytest.mark.slow
def test_datalist_loads_with_monai(work: Path) -> None:
    from monai.data import load_decathlon_datalist
    from monai.transforms import LoadImaged

    folder = work / "synth"
    items = load_decathlon_datalist(str(folder / "datalist.json"), data_list_key="training")
    assert len(items) == 4
    for item in items:
        for key in ("image", "label", "fov"):
            assert Path(item[key]).is_absolute() and Path(item[key]).is_file()
    assert Path(items[0]["image"]) == folder / "images" / "0000.png"
    pair = LoadImaged(keys=["image", "label"], image_only=True)(items[0])
    assert tuple(pair["image"].shape[:2]) == (32, 32)
    assert set(pair["label"].unique().tolist()) <= {0.0, 255.0}


@pytest.mark.slow
def test_card_front_matter_names_models_and_training_data(work: Path) -> None:
    folder = work / "synth"
    matter, body = front_matter(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert matter["task_categories"] == ["image-segmentation"]
    assert matter["tags"] == ["synthetic", "medical-imaging", "synthmed"]
    assert matter["size_categories"] == ["n<1K"]
    assert matter["license"] == "other" and "Not set" in body  # no --license given
    digest = provenance.record(PreparedDataset.load(work / "real"))["digest"]
    assert any(digest in line for line in matter["source_datasets"])
    [data] = matter["synthmed"]["training_data"]  # both stages learnt from the same set
    assert data["digest"] == digest and data["count"] == 8
    assert sorted(data["models"]) == ["geometry", "texture"]
    for stage in ("geometry", "texture"):
        weights = component_folder(work / stage) / "model.safetensors"
        assert matter["synthmed"]["models"][stage]["sha256"] == sha256_file(weights)
        assert matter["synthmed"]["models"][stage]["config"]["ngf"] == 8
    facts = matter["synthmed"]
    assert (facts["seed"], facts["count"], facts["resolution"]) == (0, 4, 32)
    assert facts["generator"] == "dual" and facts["version"] == manifest["version"]
    assert manifest["command"].startswith("synthmed generate --geometry ")
    assert facts["command"] == manifest["command"] and manifest["command"] in body
    for section in ("## How it was made", "## Layout", "## Loading", "## Evaluation"):
        assert section in body
    assert "Not evaluated yet" in body and "load_decathlon_datalist" in body


@pytest.mark.slow
def test_translate_writes_datalist_and_card(work: Path) -> None:
    out = work / "translated"
    argv = ["generate", "--texture", str(work / "texture"), "--masks", str(work / "real")]
    assert main([*argv, "--license", "cc-by-4.0", "--device", "cpu", "--out", str(out)]) == 0
    datalist = json.loads((out / "datalist.json").read_text())
    names = PreparedDataset.load(work / "real").names
    assert [e["label"] for e in datalist["training"]] == [f"masks/{n}.png" for n in names]
    assert all((out / e["image"]).is_file() for e in datalist["training"])
    matter, body = front_matter(out)
    assert matter["license"] == "cc-by-4.0" and "Not set" not in body
    assert matter["synthmed"]["generator"] == "translate"
    assert list(matter["synthmed"]["models"]) == ["texture"]
    assert any("the masks rendered here" in line for line in matter["source_datasets"])


@pytest.mark.slow
def test_card_carries_the_evaluation_figures(work: Path, tmp_path: Path) -> None:
    """After synthmed.evaluate at tiny size, `synthmed card SET --metrics` puts its utility
    and fidelity headline figures into the card's front matter and Evaluation section, keeps
    the rest of the card (hand edits too), and copies metrics.json beside it."""
    import synthmed
    from synthmed.evaluation.api import MAIN_SET
    from synthmed.evaluation.fidelity import HEADLINE

    assert dataset_card.MAIN_SET == MAIN_SET and dataset_card.HEADLINE == HEADLINE
    folder = tmp_path / "synth"
    shutil.copytree(work / "synth", folder)  # the other tests read the card as generated
    card = folder / "README.md"
    edited = card.read_text().replace("license: other", "license: cc0-1.0")
    card.write_text(edited + "\n## Notes\n\nAdded by hand.\n")
    before, _ = front_matter(folder)
    phantom_dataset(4, 32, seed=1).save(tmp_path / "test")
    utility = synthmed.UtilitySettings(3, seeds=(0,), device="cpu", progress=False)
    fidelity = synthmed.FidelitySettings(extractor_steps=2, critic_steps=0, device="cpu")
    report = tmp_path / "report"
    metrics = synthmed.evaluate(
        folder, work / "real", tmp_path / "test", utility=utility, fidelity=fidelity, out=report
    )
    assert main(["card", str(folder), "--metrics", str(report / "metrics.json")]) == 0
    matter, body = front_matter(folder)
    figures = matter.pop("synthmed_evaluation")
    assert matter == before  # license as edited, everything generate wrote
    assert "Added by hand." in body and "Not evaluated yet" not in body
    arms, u = metrics["utility"]["arms"], figures["utility"]
    for key, arm in (("f1_real_only", "real"), ("f1_synthetic_only", "dual GAN")):
        assert u[key] == {"mean": arms[arm]["mean"]["f1"], "std": arms[arm]["std"]["f1"]}
        assert f"{arms[arm]['mean']['f1']:.4f} ± {arms[arm]['std']['f1']:.4f}" in body
    gain = metrics["utility"]["f1_gain_over_real"]["dual GAN"]
    assert u["f1_gain_synthetic_only"]["interval"] == gain["interval"]
    assert u["f1_gain_real_plus_synthetic"]["gain"] < 1 and u["steps"] == 3
    test = metrics["provenance"]["splits"]["test"]
    assert figures["test_split"] == {
        "source": test["source"],
        "count": 4,
        "digest": test["digest"],
        "role": None,
    }
    kl = metrics["fidelity"]["sets"]["dual GAN"]["matched"]["kl"]["mean"]
    kl_card = figures["fidelity"]["figures"]["kl_mean"]
    assert kl_card["synthetic"]["median"] == kl["synthetic"]["median"]
    assert kl_card["real_vs_real"] == {k: kl["real_vs_real"][k] for k in ("median", "p5", "p95")}
    assert set(figures["fidelity"]["figures"]) >= {"kl_mean", "fid", "precision", "recall"}
    assert "| kl mean |" in body and "real vs real" in body
    copied = folder / "metrics.json"
    assert copied.read_bytes() == (report / "metrics.json").read_bytes()
    assert figures["metrics_sha256"] == sha256_file(copied)
    text = card.read_text()
    assert main(["card", str(folder), "--set", "single GAN"]) == 2  # not evaluated: no change
    assert main(["card", str(folder)]) == 0  # from the copy beside it: the same card
    assert card.read_text() == text and text.count("## Evaluation") == 1


def test_safe_yaml_round_trips_hostile_strings() -> None:
    value = {
        "plain": ["image-segmentation", "cc-by-4.0", "n<1K", "0.1.0", "yes", "No", "null", "~"],
        "odd": ["a: b", "# c", "- d", "", " lead", "tab\there", 'q"\\', "é 😀 \u2028 \x85 \x00"],
        "numbers": [0, -3, 1e-05, 2.5e20, 0.5, True, None],
        "nested": [{"a": [1, {"b": "c"}], "d": {}}, [], [[1, 2]]],
        "key: with colon": "v",
    }
    back = yaml.safe_load(safe_yaml.dump(value))
    assert back == value
    assert math.isnan(yaml.safe_load(safe_yaml.dump({"x": float("nan")}))["x"])
    with pytest.raises(TypeError):
        safe_yaml.dump({"x": object()})
