"""``synthmed fit``: the plan from measured speeds and a budget, and the whole run end to end,
resumed after a kill (issue 32)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synthmed.errors import UserError
from synthmed.fitting import run as fit_run
from synthmed.fitting.plan import DataSummary, make_plan, parse_duration


def _summary(kind: str, side: int = 565, channels: int = 3) -> DataSummary:
    return DataSummary(count=15, holdout=5, native_side=side, channels=channels, mask_kind=kind)


def _speed(pixels_per_s: float):
    """A machine whose step time grows with the pixels a step sees (timed by a formula)."""

    def timing(stage: str, preset: str, options: dict, res: int) -> float:
        side = options.get("crop") or (res if stage in ("texture", "refiner", "segmenter") else 0)
        side = side or options.get("resolution", res)
        batch = 4 if stage in ("texture", "refiner") else 16
        return batch * side * side / pixels_per_s

    return timing


def test_durations_read_as_people_write_them() -> None:
    assert [parse_duration(t) for t in ("1h", "90m", "1h30m", "45s", "600")] == [
        3600,
        5400,
        5400,
        45,
        600,
    ]
    for bad in ("soon", "0", "-1h", ""):
        with pytest.raises(UserError, match="--budget"):
            parse_duration(bad)


def test_a_fast_machine_gets_the_drive512_layout_for_vessels() -> None:
    plan = make_plan(_summary("vessel"), 2 * 3600, 30, _speed(5e6))
    assert plan.resolution == 512
    assert list(plan.stages) == ["geometry", "refiner", "texture", "single"]
    assert plan.stages["geometry"].options["resolution"] == 128
    assert plan.stages["texture"].options["crop"] == 256
    assert all(s.steps <= {"geometry": 4000, "refiner": 1500, "texture": 9000, "single": 1000}[k]
               for k, s in plan.stages.items())  # fmt: skip
    assert plan.expected_s <= plan.budget_s


def test_the_evaluation_plans_for_every_arm_it_will_train() -> None:
    """With the single GAN (budgets from 90 min) five arms share the evaluation's time, not
    three: DRIVE's 2-hour run planned three, trained five and overran by 14 minutes."""
    segmenter = 0.186  # s per step, DRIVE at 512 px on a 2-core EPYC
    timing = _speed(5e6)

    def with_segmenter(stage: str, preset: str, options: dict, res: int) -> float:
        return segmenter if stage == "segmenter" else timing(stage, preset, options, res)

    short = make_plan(_summary("vessel"), 3600, 30, with_segmenter)
    long = make_plan(_summary("vessel"), 2 * 3600, 30, with_segmenter)
    assert "single" not in short.stages and "single" in long.stages
    for plan, arms in ((short, 3), (long, 5)):
        segmenters_s = arms * len(plan.seeds) * plan.segmenter_steps * segmenter
        assert segmenters_s <= 0.7 * 0.25 * plan.budget_s + arms * len(plan.seeds) * segmenter
        assert any(f"x {arms} arms" in c for c in plan.choices)


def test_a_slow_machine_or_short_budget_plans_a_smaller_size_and_says_why() -> None:
    fast = make_plan(_summary("vessel", side=128), 3600, 30, _speed(5e6))
    slow = make_plan(_summary("vessel", side=128), 3600, 30, _speed(1e5))
    assert slow.resolution < fast.resolution
    assert any("trying a smaller size" in c for c in slow.choices)
    assert "single" not in slow.stages  # one hour does not train the baseline
    with pytest.raises(UserError, match="give a longer --budget"):
        make_plan(_summary("vessel", side=64), 300, 30, _speed(1e4))
    demo = make_plan(_summary("vessel", side=64), 300, 30, _speed(1e4), short_ok=True)
    assert demo.resolution == 32 and any("below its minimum" in c for c in demo.choices)


def test_large_vessel_data_keeps_the_refiner_layout_or_is_refused() -> None:
    """DRIVE-sized vessel data is planned at 256 px or more, with distance maps and a
    refiner: at 128 px a Stage I drawing the masks drew speckle on DRIVE (docs/fit.md)."""
    roomy = make_plan(_summary("vessel"), 7200, 30, _speed(2e5))
    assert roomy.resolution >= 256 and "refiner" in roomy.stages
    assert roomy.stages["refiner"].steps >= 200
    with pytest.raises(UserError, match="even at 256 px"):
        make_plan(_summary("vessel"), 3600, 30, _speed(2e5))
    short = make_plan(_summary("vessel"), 3600, 30, _speed(2e5), short_ok=True)
    assert short.resolution == 256 and "refiner" in short.stages


def test_compact_objects_get_no_refiner_and_no_colour_jitter_in_grayscale() -> None:
    plan = make_plan(_summary("compact", side=811, channels=1), 3600, 30, _speed(5e6))
    assert plan.resolution == 256 and "refiner" not in plan.stages
    assert plan.stages["geometry"].options["resolution"] == 256
    augment = plan.stages["texture"].options["augment"]
    assert "color" not in augment and "dihedral" in augment and "brightness" in augment
    assert "compact objects" in plan.choices[0]


def test_the_same_measurements_give_the_same_plan() -> None:
    a = make_plan(_summary("vessel"), 3600, 30, _speed(1e6)).to_json()
    assert a == make_plan(_summary("vessel"), 3600, 30, _speed(1e6)).to_json()
    json.dumps(a)  # plan.json holds it as it is


@pytest.fixture
def phantom(tmp_path: Path) -> Path:
    from synthmed.data.sources import phantom_dataset

    phantom_dataset(10, 32, seed=0).save(tmp_path / "data")
    return tmp_path / "data"


@pytest.mark.slow
def test_fit_end_to_end_then_resume_after_a_kill(
    phantom: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "run"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as if the run was killed while generating

    monkeypatch.setattr(fit_run, "_generate", killed)
    with pytest.raises(KeyboardInterrupt):
        reading = fit_run.DataOptions(holdout=3)
        fit_run.fit(phantom, out, reading=reading, budget="20m", device="cpu", max_steps=2)
    plan = json.loads((out / "plan.json").read_text())
    assert plan["data"]["holdout"] == 3 and plan["resolution"] == 32
    assert (out / "runs" / "texture" / "done").is_file()
    stamp = (out / "runs" / "geometry" / "generator" / "model.safetensors").stat().st_mtime_ns
    monkeypatch.undo()
    with pytest.raises(UserError, match="--resume"):
        fit_run.fit(phantom, out, device="cpu")
    fit_run.fit(phantom, out, resume=True, device="cpu")
    after = (out / "runs" / "geometry" / "generator" / "model.safetensors").stat().st_mtime_ns
    assert after == stamp  # the finished stage was not trained again
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert "dual GAN" in metrics["utility"]["f1_gain_over_real"]
    assert (out / "report" / "report.html").is_file()
    times = json.loads((out / "times.json").read_text())
    assert {"read and plan", "geometry", "texture", "generate", "evaluate"} <= set(times)
    parts = sum(v for k, v in times.items() if k != "total")
    assert times["total"] == pytest.approx(parts, abs=0.5)
    assert len(list((out / "synthetic" / "images").glob("*.png"))) == plan["synthetic_pairs"]


def test_fit_refuses_a_bad_budget_in_one_line(phantom: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "synthmed", "fit", str(phantom), "--out", str(tmp_path / "r")]
    done = subprocess.run([*cmd, "--budget", "soon"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--budget 'soon'" in done.stderr
    assert not (tmp_path / "r").exists()


def test_the_timer_runs_a_refiner_on_the_timed_stage_one(tmp_path: Path) -> None:
    """Vessels above 128 px plan a refiner, timed against the Stage I just timed (its folder
    goes into the refiner's options.json: a Path there crashed every such fit)."""
    from synthmed.data.sources import phantom_dataset

    data = phantom_dataset(4, 256, seed=0)
    timer = fit_run._Timer(tmp_path, tmp_path / "timing", fit_run.DataOptions(), 1, "cpu", data)
    small = {"ngf": 8, "ndf": 8, "batch_size": 2}  # the plumbing, not the speed, is tested
    assert timer("geometry", "drive512", {"resolution": 128} | small, 256) > 0
    assert timer("refiner", "drive512", {"crop": 128} | small, 256) > 0
    options = json.loads((tmp_path / "timing" / "refiner-256" / "options.json").read_text())
    assert options["stage"]["adapt_geometry"] == str(tmp_path / "timing" / "geometry-256")


def test_allow_short_reaches_fit_from_the_command_line(monkeypatch, tmp_path: Path) -> None:
    """``fit --allow-short`` trains a short plan where the budget would be refused."""
    from synthmed import cli

    seen = {}
    monkeypatch.setattr(fit_run, "fit", lambda *a, **k: seen.update(k))
    for flags, short in (([], False), (["--allow-short"], True)):
        args = cli.build_parser().parse_args(["fit", str(tmp_path), "--out", "r", *flags])
        cli.run(args)
        assert seen["short_ok"] is short and seen["budget"] == "2h"
