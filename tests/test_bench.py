"""The benchmark runs end to end at a tiny size and reports every figure it promises."""

import json
from pathlib import Path

import pytest

from synthmed.bench import main

pytestmark = pytest.mark.slow


def test_bench_tiny(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["--res", "32", "--steps", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["matmul_gflops"]["float32"] > 0
    cases = {(r["stage"], r["preset"]) for r in result["training"]}
    assert cases == {(s, p) for s in ("geometry", "texture") for p in ("default", "paper")}
    assert result["generation"] == []  # generation is measured from 256 px only
    for r in result["training"]:
        assert r["images_per_s"] > 0 and r["gflop_per_image"] > 0 and r["peak_rss_mb"] > 0
        assert r["speedup_vs_paper"] > 0
        assert r["stage"] == "geometry" or r["driver_images_per_s"] > 0
        assert 0 < r["fraction_of_matmul"]


def test_bench_repository_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import synthmed.repository.loadcheck as loadcheck

    def tiny(clients: int, seconds: float) -> dict:
        return run_load_check(clients, seconds, pairs=4, size=32)

    run_load_check = loadcheck.run_load_check
    monkeypatch.setattr(loadcheck, "run_load_check", tiny)
    out = tmp_path / "bench.json"
    args = ["--repository", "--clients", "2", "--load-seconds", "1.5", "--out", str(out)]
    assert main(args) == 0
    r = json.loads(out.read_text())["repository_load"]
    assert r["requests"] > 0 and r["errors"] == 0 and r["requests_per_s"] > 0
    assert r["p99_ms"] >= r["p50_ms"] > 0
    assert r["bytes_downloaded"] > 0 and r["archive_mb"] > 0
    assert all(k["n"] > 0 for k in r["by_kind"].values())


def test_bench_recipe_projects_the_presets_training_time(tmp_path: Path) -> None:
    """--recipe times each stage as `train --preset` builds it and multiplies by its steps."""
    from synthmed.presets import preset

    out = tmp_path / "bench.json"  # --out a folder: the results go in it as bench.json
    args = ["--recipe", "drive512", "--recipe-res", "128", "--steps", "1", "--out", str(tmp_path)]
    assert main(args) == 0
    r = json.loads(out.read_text())["recipe"]
    assert [s["stage"] for s in r["stages"]] == ["geometry", "refiner", "texture"]
    for s in r["stages"]:
        assert s["recipe_steps"] == preset("drive512", s["stage"])["train"]["steps"]
        assert s["seconds_per_step"] > 0 and s["peak_rss_mb"] > 0
        assert s["projected_minutes"] == pytest.approx(
            s["recipe_steps"] * s["seconds_per_step"] / 60
        )
    assert r["projected_minutes"] == pytest.approx(sum(s["projected_minutes"] for s in r["stages"]))
    assert [s["crop"] for s in r["stages"]] == [0, 64, 64]  # scaled to the small data
    with pytest.raises(SystemExit, match="unknown preset"):
        main(["--recipe", "nope", "--out", str(out)])
