"""End to end through the command line at 32 px: prepare, train both stages, generate,
read the output back as a dataset; and the demo in its quick form."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synthmed.cli import main
from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import prepare_source

pytestmark = pytest.mark.slow
TINY = ["--steps", "3", "--batch-size", "2", "--ngf", "8", "--ndf", "8", "--device", "cpu"]


def test_prepare_train_generate_read_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert main(["prepare", "phantom", "--res", "32", "--n", "6", "--out", str(data)]) == 0
    geo, tex = tmp_path / "geo", tmp_path / "tex"
    assert main(["train", "geometry", "--data", str(data), "--out", str(geo), *TINY]) == 0
    assert main(["train", "texture", "--data", str(data), "--out", str(tex), *TINY]) == 0
    out = tmp_path / "synth"
    args = ["generate", "--geometry", str(geo), "--texture", str(tex), "--n", "5"]
    assert (
        main(
            [*args, "--out", str(out), "--device", "cpu", "--save-pipeline", str(tmp_path / "pipe")]
        )
        == 0
    )

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == 5 and manifest["resolution"] == 32 and manifest["seed"] == 0
    assert len(manifest["models"]["geometry"]["sha256"]) == 64
    assert manifest["models"]["texture"]["config"]["ngf"] == 8
    back = prepare_source("folder", out, 32)
    assert len(back) == 5 and back.channels == 3
    assert set(np.unique(back.masks)) <= {0, 1}

    # The same seed from the saved pipeline folder gives byte-identical files.
    again = tmp_path / "again"
    assert (
        main(
            [
                "generate",
                "--pipeline",
                str(tmp_path / "pipe"),
                "--n",
                "5",
                "--out",
                str(again),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    for sub in ("images", "masks", "fov"):
        for f in sorted((out / sub).iterdir()):
            assert f.read_bytes() == (again / sub / f.name).read_bytes()
    assert manifest["tree_repair"] is None

    # The Stage I repair: recorded in the manifest and in a saved pipeline, which keeps it
    # unless told otherwise.
    pipe = ["generate", "--pipeline", str(tmp_path / "pipe"), "--n", "2", "--device", "cpu"]
    mended, kept, dropped = tmp_path / "mended", tmp_path / "kept", tmp_path / "dropped"
    save = ["--save-pipeline", str(tmp_path / "pipe2")]
    assert main([*pipe, "--repair-tree", "--out", str(mended), *save]) == 0
    assert json.loads((mended / "manifest.json").read_text())["tree_repair"]["gap_px"] == 60
    pipe[2] = str(tmp_path / "pipe2")
    assert main([*pipe, "--out", str(kept)]) == 0
    assert main([*pipe, "--no-repair-tree", "--out", str(dropped)]) == 0
    assert json.loads((kept / "manifest.json").read_text())["tree_repair"]["gap_px"] == 60
    assert json.loads((dropped / "manifest.json").read_text())["tree_repair"] is None
    for f in sorted((mended / "masks").iterdir()):
        assert f.read_bytes() == (kept / "masks" / f.name).read_bytes()


def test_resume_through_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    main(["prepare", "phantom", "--res", "32", "--n", "4", "--out", str(data)])
    run = tmp_path / "geo"
    assert main(["train", "geometry", "--data", str(data), "--out", str(run), *TINY]) == 0
    assert (
        main(
            [
                "train",
                "geometry",
                "--data",
                str(data),
                "--out",
                str(run),
                "--resume",
                "--steps",
                "5",
            ]
        )
        == 0
    )
    steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == [3, 5]  # log_every 10: logged at each run's last step
    opts = json.loads((run / "options.json").read_text())
    assert opts["model"]["ngf"] == 8  # the resumed run kept its own architecture


def test_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "synthmed", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for cmd in ("prepare", "train", "generate", "demo"):
        assert cmd in out


def test_demo_quick(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "synthmed", "demo", "--quick", "--out", str(out), "--device", "cpu"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "grid.png").is_file()
    assert PreparedDataset.load(out / "phantom32").resolution == 32
    plan = json.loads((out / "fit/plan.json").read_text())  # the demo is a fit run
    assert plan["data"]["mask_kind"] == "vessel"  # found from the masks, not named
    assert len(list((out / "fit/synthetic/images").iterdir())) == plan["synthetic_pairs"]
    assert (out / "fit/report/report.html").is_file()


def test_single_gan_baseline_and_holdout_split(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ["prepare", "phantom", "--res", "32", "--n", "6", "--out", str(data), "--holdout", "2"]
    assert main(args) == 0
    train, holdout = PreparedDataset.load(data / "train"), PreparedDataset.load(data / "holdout")
    assert (len(train), len(holdout)) == (4, 2)
    assert holdout.names == ["phantom_0004", "phantom_0005"]  # the last ones by name
    run = tmp_path / "single"
    assert main(["train", "single", "--data", str(data / "train"), "--out", str(run), *TINY]) == 0
    assert json.loads((run / "generator/config.json").read_text())["channels"] == 4
    out = tmp_path / "synth"
    assert main(["generate", "--single", str(run), "--n", "3", "--out", str(out)]) == 0
    back = prepare_source("folder", out, 32)
    assert len(back) == 3 and back.channels == 3
    assert "single" in json.loads((out / "manifest.json").read_text())["models"]
    # The single GAN's masks come with their images: repairing them would part the two.
    cmd = ["generate", "--single", str(run), "--n", "3", "--repair-tree"]
    assert main([*cmd, "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_bench_gets_all_its_options_and_gives_its_exit_code(monkeypatch) -> None:
    """``synthmed bench ARGS`` hands every ARG, options included, to synthmed.bench and exits
    with its code (1: the repository load check saw errors)."""
    seen = []
    monkeypatch.setattr("synthmed.bench.main", lambda argv: seen.append(argv) or 1)
    assert main(["bench", "--repository", "--clients", "3", "--out", "b.json"]) == 1
    assert seen == [["--repository", "--clients", "3", "--out", "b.json"]]


def test_parser_choices_agree_and_stay_light() -> None:
    """The CLI spells out some choices so that `synthmed serve` starts without torch."""
    import subprocess
    import sys

    from synthmed import cli
    from synthmed.data.sources import SOURCES
    from synthmed.device import PRECISIONS
    from synthmed.training.losses import LOSSES

    assert (cli.SOURCES, cli.PRECISIONS, cli.LOSSES) == (SOURCES, PRECISIONS, LOSSES)
    code = (
        "import sys; from synthmed.cli import build_parser; build_parser(); "
        "import synthmed.repository.app; print(sorted({'torch', 'scipy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
