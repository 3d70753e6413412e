"""``synthmed evaluate`` end to end at 32 px on phantom data: every command, and the report."""

import json
from pathlib import Path
from typing import Any

import pytest

from synthmed.cli import main
from synthmed.data.sources import phantom_dataset

pytestmark = pytest.mark.slow
TINY = ["--steps", "3", "--batch-size", "2", "--ngf", "8", "--ndf", "8", "--device", "cpu"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Real train / held-out phantom sets, a dual-GAN and a single-GAN generated set."""
    root = tmp_path_factory.mktemp("eval")
    phantom_dataset(8, 32, seed=0).save(root / "real_train")
    phantom_dataset(4, 32, seed=1).save(root / "real_test")
    data = str(root / "real_train")
    for stage in ("geometry", "texture", "single"):
        assert main(["train", stage, "--data", data, "--out", str(root / stage), *TINY]) == 0
    gen = ["--n", "8", "--device", "cpu"]
    assert (
        main(
            [
                "generate",
                "--geometry",
                str(root / "geometry"),
                "--texture",
                str(root / "texture"),
                "--out",
                str(root / "dual"),
                *gen,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "generate",
                "--single",
                str(root / "single"),
                "--out",
                str(root / "single_synth"),
                *gen,
            ]
        )
        == 0
    )
    return root


def test_evaluate_all_writes_the_report(work: Path) -> None:
    out = work / "report"
    args = [
        "evaluate",
        "all",
        "--synthetic",
        str(work / "dual"),
        "--baseline",
        str(work / "single_synth"),
        "--real-train",
        str(work / "real_train"),
        "--real-test",
        str(work / "real_test"),
        "--budget",
        "5",
        "--seeds",
        "1",
        "--extractor-steps",
        "3",
        "--critic-steps",
        "20",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--runs",
        f"geometry={work / 'geometry'}",
        f"texture={work / 'texture'}",
        "--compare",
        f"plain={work / 'dual'}",
        "--real-subsets",
        "4",
        "--synthetic-share",
        "0.25",
    ]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["utility"]["synthetic_share"] == 0.25
    arms = metrics["utility"]["arms"]
    assert set(arms) == {
        "real",
        "real (4 of 8)",
        "dual GAN",
        "real+dual GAN",
        "single GAN",
        "real+single GAN",
    }
    for arm in arms.values():
        assert 0 <= arm["mean"]["f1"] <= 1 and arm["std"]["f1"] >= 0
    fid = metrics["fidelity"]
    # The held-out set is for utility only: no fidelity row, but still the masks' reference.
    assert set(fid["sets"]) == {"dual GAN", "single GAN", "plain"}
    nn = fid["sets"]["dual GAN"]["mask_nearest_neighbours"]
    assert 0 <= nn["generated_to_train"]["median"] <= 1 and "held_out_to_train" in nn
    assert "domain" in fid["extractor"] and "procedural phantoms" in fid["extractor"]
    assert fid["extractor_training_data"] == "64 procedural phantoms"
    sizes = fid["sets"]["dual GAN"]["sizes"]
    assert (sizes["a"], sizes["b"], sizes["compared"], sizes["splits"]) == (4, 4, 4, 50)
    assert metrics["context"]["machine"]["torch"]
    page = (out / "report.html").read_text()
    for section in (
        "Samples",
        "Training losses",
        "Intensity histograms",
        "Vessel widths",
        "Utility: train on synthetic",
        "Fidelity",
        "Feature extractor",
        "KL(P_real",
        "Diversity and memorisation",
        "learning curve",
    ):
        assert section in page, section
    assert "draw 25% of their training patches from the synthetic set" in page
    gains = metrics["utility"]["f1_gain_over_real"]
    assert set(gains) == set(arms) - {"real"} and "two-level bootstrap" in page
    assert "95 % interval: test images and seeds" in page and "not a p-value" in page
    provenance = metrics["provenance"]["splits"]
    assert provenance["real training"]["count"] == 8 and provenance["test"]["count"] == 4
    assert "Data provenance" in page and provenance["test"]["digest"][:16] in page
    assert "Sensitivity by vessel width" in page
    assert "at the working resolution (the test set records no original files" in page
    assert "Mask critic" in page and "loops" in page and "disc_convergence" in page
    critic = metrics["fidelity"]["sets"]["dual GAN"]["mask_critic"]
    assert 0 <= critic["auc"] <= 1 and critic["n_real"] == 8
    assert "Judge sharpness by the sharpness table" in page  # the domain encoder's caveat
    assert "<h3>Sharpness</h3>" in page and "variance of the Laplacian" in page
    for column in ("synthetic median [5–95 %]", "real vs real median [5–95 %]"):
        assert column in page
    assert "share of splits synthetic further" in page and "sizes (A vs compared)" in page
    assert "saw none of the compared images" in page and "64 procedural phantoms" in page
    assert "real (held-out)" not in page and "held-out real row" not in page
    assert "Fidelity references" in page  # the spread figure
    assert page.count("data:image/png;base64,") == 5  # figures embedded: opens offline
    assert "<script" not in page
    assert len(list((out / "figures").glob("*.png"))) == 5


def test_evaluate_utility_and_fidelity_commands(work: Path, capsys) -> None:
    out = work / "single_cmds"
    assert (
        main(
            [
                "evaluate",
                "utility",
                "--synthetic",
                str(work / "dual"),
                "--real-train",
                str(work / "real_train"),
                "--real-test",
                str(work / "real_test"),
                "--budget",
                "5",
                "--seeds",
                "2",
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads((out / "utility.json").read_text())
    assert result["seeds"] == [0, 1] and len(result["arms"]["real"]["per_seed"]) == 2
    assert "F1 - real" in capsys.readouterr().out  # with its interval over the test images
    assert (
        main(
            [
                "evaluate",
                "fidelity",
                "--synthetic",
                str(work / "dual"),
                "--real",
                str(work / "real_train"),
                "--extractor-steps",
                "3",
                "--critic-steps",
                "20",
                "--extractor-data",
                str(work / "real_test"),
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    fidelity = json.loads((out / "fidelity.json").read_text())
    kl = fidelity["sets"]["synthetic"]["matched"]["kl"]["mean"]
    assert kl["synthetic"]["median"] >= 0 and kl["real_vs_real"]["p5"] >= 0
    # The encoder trained on the given folder (4 pairs), not on the compared real set.
    assert f"on {work / 'real_test'} (4 pairs)" in fidelity["extractor"]
    assert fidelity["extractor_training_data"] == f"{work / 'real_test'} (4 pairs)"
    printed = capsys.readouterr().out
    assert "kl mean: synthetic" in printed and "real vs real" in printed
    assert "fid: synthetic" in printed and "precision: synthetic" in printed


def test_evaluate_fidelity_has_no_held_out_reference_flag(capsys) -> None:
    argv = ["evaluate", "fidelity", "--synthetic", "s", "--real", "r", "--reference", "t"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "--reference" in capsys.readouterr().err


def test_evaluate_refuses_mismatched_resolution(work: Path, capsys) -> None:
    phantom_dataset(4, 64, seed=2).save(work / "real64")
    code = main(
        [
            "evaluate",
            "utility",
            "--synthetic",
            str(work / "dual"),
            "--real-train",
            str(work / "real64"),
            "--real-test",
            str(work / "real_test"),
            "--budget",
            "2",
            "--seeds",
            "1",
        ]
    )
    assert code == 2
    assert "64" in capsys.readouterr().err


def test_evaluate_takes_the_resolution_of_a_prepared_synthetic_set(work: Path, capsys) -> None:
    """A prepared folder (e.g. a filtered subset of generated pairs) names its resolution in
    dataset.json, so --res is not needed; a folder with neither file asks for it."""
    argv = ["evaluate", "utility", "--real-train", str(work / "real_train"), "--real-test"]
    argv += [str(work / "real_test"), "--budget", "2", "--seeds", "1", "--arms", "synthetic"]
    out = work / "prepared_synth"
    phantom_dataset(4, 32, seed=3).save(work / "prepared_pairs")
    assert main([*argv, "--synthetic", str(work / "prepared_pairs"), "--out", str(out)]) == 0
    assert json.loads((out / "utility.json").read_text())["resolution"] == 32
    (work / "bare").mkdir()
    assert main([*argv, "--synthetic", str(work / "bare")]) == 2
    assert "no manifest.json or dataset.json" in capsys.readouterr().err


@pytest.mark.parametrize("share", ["0", "1", "1.5", "half"])
def test_evaluate_refuses_a_synthetic_share_outside_zero_one(capsys, share: str) -> None:
    argv = ["evaluate", "all", "--synthetic", "s", "--real-train", "r", "--real-test", "t"]
    with pytest.raises(SystemExit) as exit_info:  # argparse: before any data is read
        main([*argv, "--synthetic-share", share])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--synthetic-share: {share}: need a fraction between 0 and 1" in err


def _utility(work: Path, train: Path, test: Path, synthetic: Path | None = None) -> int:
    argv = ["evaluate", "utility", "--real-train", str(train), "--real-test", str(test)]
    argv += ["--synthetic", str(synthetic or work / "dual"), "--budget", "2", "--seeds", "1"]
    return main(argv)


def test_evaluate_refuses_a_test_image_that_trained_a_segmenter(work: Path, capsys) -> None:
    """Issue 29: a test image that is also a real training image: exit 2, one line naming
    it, before any segmenter is trained."""
    train = phantom_dataset(8, 32, seed=0)
    mixed = phantom_dataset(4, 32, seed=1)
    leaked = mixed.subset([0, 1])
    leaked.images[1] = train.images[5]  # one training image slipped into the test set
    leaked.meta["hashes"][1] = train.meta["hashes"][5]
    leaked.names[1] = "leaked"
    leaked.save(work / "leaky_test")
    assert _utility(work, work / "real_train", work / "leaky_test") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "image leaked is also in the real training set" in err[0]


def test_evaluate_refuses_a_test_image_that_trained_the_generators(work: Path, capsys) -> None:
    """The generators of the dual set trained on real_train (their manifest says so): its
    images may not be test images, even when the segmenters' real set is another one."""
    phantom_dataset(8, 32, seed=0).subset([2, 3]).save(work / "generator_images")
    assert _utility(work, work / "real_test", work / "generator_images") == 2
    err = capsys.readouterr().err
    assert "training data of synthetic's geometry model" in err
    manifest = json.loads((work / "dual" / "manifest.json").read_text())
    trained = manifest["models"]["texture"]["trained_on"]
    assert trained["count"] == 8 and len(trained["images"]) == 8


def test_evaluate_records_the_digest_of_every_split(work: Path) -> None:
    out = work / "digests"
    argv = ["evaluate", "utility", "--real-train", str(work / "real_train"), "--real-test"]
    argv += [str(work / "real_test"), "--synthetic", str(work / "dual"), "--budget", "2"]
    assert main([*argv, "--seeds", "1", "--arms", "synthetic", "--out", str(out)]) == 0
    splits = json.loads((out / "utility.json").read_text())["provenance"]["splits"]
    assert {"real training", "test", "synthetic: geometry training data"} <= splits.keys()
    assert (
        splits["real training"]["digest"] == splits["synthetic: geometry training data"]["digest"]
    )
    assert splits["test"]["digest"] != splits["real training"]["digest"]


def test_evaluate_refuses_extractor_data_that_overlaps_a_compared_set(work: Path, capsys) -> None:
    """Issue 29: the feature encoder must never have seen the images it compares."""
    argv = ["evaluate", "fidelity", "--synthetic", str(work / "dual"), "--real"]
    argv += [str(work / "real_train"), "--extractor-data", str(work / "real_train")]
    assert main([*argv, "--extractor-steps", "2", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is also in the real set" in err[0]


def _figures(metrics: dict) -> str:
    """The metrics without timings and the run's context, as text (NaN compares equal)."""

    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ("seconds", "context")}
        return [strip(v) for v in x] if isinstance(x, list | tuple) else x

    return json.dumps(strip(metrics), sort_keys=True)


def test_python_api_evaluate_gives_the_cli_figures(work: Path) -> None:
    """synthmed.evaluate is evaluate all: the same figures for the same seeds, with sets given
    as folders or loaded, and the report written when out= is given."""
    import synthmed
    from synthmed.data.prepared import PreparedDataset

    utility = synthmed.UtilitySettings(5, seeds=(0,), device="cpu", progress=False)
    fidelity = synthmed.FidelitySettings(extractor_steps=3, critic_steps=0, device="cpu")
    real_train = PreparedDataset.load(work / "real_train")  # loaded, or a folder: either
    out = work / "api"
    metrics = synthmed.evaluate(
        work / "dual", real_train, work / "real_test", utility=utility, fidelity=fidelity, out=out
    )
    assert set(metrics) == {"utility", "fidelity", "context", "provenance"}
    assert set(metrics["utility"]["arms"]) == {"real", "dual GAN", "real+dual GAN"}
    assert metrics["context"]["command"].startswith("synthmed.evaluate(")
    # The generators' training data came from the folder's manifest, as in the CLI.
    assert "dual GAN: geometry training data" in metrics["provenance"]["splits"]
    assert (out / "report.html").is_file()
    assert _figures(json.loads((out / "metrics.json").read_text())) == _figures(metrics)
    cli = work / "api_cli"
    argv = ["evaluate", "all", "--synthetic", str(work / "dual"), "--real-train"]
    argv += [str(work / "real_train"), "--real-test", str(work / "real_test"), "--budget", "5"]
    argv += ["--seeds", "1", "--extractor-steps", "3", "--critic-steps", "0", "--device", "cpu"]
    assert main([*argv, "--out", str(cli)]) == 0
    assert _figures(json.loads((cli / "metrics.json").read_text())) == _figures(metrics)
