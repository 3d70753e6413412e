"""``python -m synthmed.bench`` / ``synthmed bench``: speed and memory, measured, not assumed.

Every figure is taken in one run on one machine, so ratios are meaningful:

* the machine's own limit: matrix-multiply GFLOP/s at the thread count in use, in float32
  and (where the hardware has it) bfloat16;
* Stage I and Stage II training images/s and achieved GFLOP/s (FLOPs of one step counted with
  ``torch.utils.flop_counter``) for SynthMed's default preset, the same in float32, and the
  paper preset; the ratio to the paper preset; the images/s that ``synthmed train``'s
  progress bar and ``stats.jsonl`` report for the same case (they must agree);
* generation: complete (mask, image) pairs per second, PNG writing included;
* peak resident memory of each case: every case runs in its own process.

``--recipe drive512`` times a preset's whole training recipe instead: each stage (geometry,
refiner, texture) built as ``synthmed train STAGE --preset drive512`` builds it (batch, crops,
augmentation, EMA, losses), seconds per step, and the preset's steps times that: the projected
training time of the recipe on this machine (style-prior fits and checkpoints not included).

``--repository`` runs only a small load check of the SynthMed repository instead:
``synthmed serve`` on a loopback port, ``--clients`` concurrent clients browsing and
downloading for ``--load-seconds``; requests/s, p50/p99 latency, MB/s and errors (must be 0,
otherwise the exit code is 1).

Training steps are timed through the same ``Stage.train_step`` that ``synthmed train`` runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from synthmed.device import native_bf16, pick_precision
from synthmed.errors import EXIT_USER_ERROR, UserError
from synthmed.models.dcgan import GeometryConfig, MaskGenerator
from synthmed.models.pix2pix import TextureConfig
from synthmed.presets import preset
from synthmed.training.options import GeometryStageOptions, TextureStageOptions, TrainOptions

# (preset, precision override) timed for each resolution; "default/fp32" shows what a
# machine without bfloat16 hardware gets. Stage I, whose targets are quality, not speed,
# is timed for the two presets only; the progress-bar cross-check runs for Stage II.
VARIANTS = {
    "geometry": [("default", None), ("paper", None)],
    "texture": [("default", None), ("default", "fp32"), ("paper", None)],
}


def matmul_gflops(
    dtype: torch.dtype = torch.float32, n: int = 2048, trials: int = 5, seconds: float = 0.5
) -> float:
    """Matrix-multiply rate of this machine in ``dtype`` at the current thread count.

    The best of several short trials: a shared machine's slow moments are noise, the limit
    is what the hardware can do.
    """
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = 0.0
    for _ in range(trials):
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ b
            reps += 1
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9)
    return best


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _stage(stage: str, res: int, name: str, precision: str | None, steps: int) -> Any:
    """The Stage (networks, optimisers, step) of ``stage`` in preset ``name`` at ``res``."""
    from synthmed.data.sources import phantom_dataset
    from synthmed.training.geometry import geometry_stage
    from synthmed.training.texture import texture_stage

    p = preset(name, stage)
    data = phantom_dataset(4, res, seed=0)
    opts = TrainOptions(
        steps=steps,
        batch_size=p["batch_size"],
        device="cpu",
        precision=precision or p["precision"],
        log_every=1,
        grid_every=10**9,
        checkpoint_every=10**9,
    )
    if stage == "geometry":
        cfg = GeometryConfig(resolution=res, **p["model"])
        st = geometry_stage(data, cfg, opts, GeometryStageOptions(noise_fade_steps=1))
    else:
        st = texture_stage(data, TextureConfig(resolution=res, **p["model"]), opts)
    return st, opts


def train_case(stage: str, res: int, name: str, precision: str | None, steps: int) -> dict:
    """Images/s, FLOPs per image and peak memory of training ``stage`` at ``res``."""
    st, opts = _stage(stage, res, name, precision, steps)
    gen = torch.Generator().manual_seed(0)
    with FlopCounterMode(display=False) as counter:
        st.train_step(gen, 1)  # doubles as warm-up
    flops_per_image = counter.get_total_flops() / opts.batch_size
    t0 = time.perf_counter()
    for step in range(2, steps + 2):
        st.train_step(gen, step)
    ips = steps * opts.batch_size / (time.perf_counter() - t0)
    return {
        "images_per_s": ips,
        "gflop_per_image": flops_per_image / 1e9,
        "achieved_gflops": ips * flops_per_image / 1e9,
        "batch_size": opts.batch_size,
        "precision": str(pick_precision(opts.precision, torch.device("cpu"))).split(".")[-1],
        "peak_rss_mb": _peak_rss_mb(),
    }


def driver_case(stage: str, res: int, name: str, precision: str | None, steps: int) -> dict:
    """Images/s as ``synthmed train`` reports it (stats.jsonl, the progress bar's source).

    Runs the real run driver for one warm-up step plus ``steps`` steps and takes the median
    of the per-step figures after the first.
    """
    from synthmed.training.run import run_training

    st, opts = _stage(stage, res, name, precision, steps + 1)
    with tempfile.TemporaryDirectory() as tmp:
        run_training(st, opts, Path(tmp) / "run", False, {})
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "stats.jsonl").open()]
    return {"driver_images_per_s": statistics.median(r["images_per_s"] for r in rows[1:])}


def generate_case(res: int, n: int) -> dict[str, Any]:
    """Pairs/s of ``generate`` (both stages, default configuration, PNGs written)."""
    from synthmed.generation import generate_dataset
    from synthmed.models.dcgan import MaskGenerator
    from synthmed.models.pix2pix import UNetGenerator
    from synthmed.pipeline import SynthMedPipeline

    torch.manual_seed(0)
    pipe = SynthMedPipeline(
        MaskGenerator(GeometryConfig(resolution=res)),
        UNetGenerator(TextureConfig(resolution=res)),
        device="cpu",
    )
    pipe.sample(1)  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate_dataset(pipe, n, Path(tmp) / "out")
        seconds = time.perf_counter() - t0
    return {"pairs_per_s": n / seconds, "precision": pipe.precision, "peak_rss_mb": _peak_rss_mb()}


RECIPE_STAGES = ("geometry", "refiner", "texture")  # the refiner adapts to the DCGAN


def recipe_case(name: str, stage: str, res: int, steps: int) -> dict[str, Any]:
    """Seconds per step of ``stage`` as preset ``name`` trains it on ``res`` px data (phantom
    images), and the preset's steps times that.

    Below 512 px the coarse side (DCGAN and refiner) is at most res / 4 and crops at most
    res / 2, so that the recipe's shape can be timed small (tests)."""
    from synthmed.data.sources import phantom_dataset
    from synthmed.training.geometry import geometry_stage
    from synthmed.training.texture import texture_model, texture_stage

    p = preset(name, stage)
    train = dict(p.get("train", {}))
    recipe_steps = train.pop("steps", TrainOptions.steps)
    if train.get("crop"):
        train["crop"] = min(train["crop"], res // 2)
    opts = TrainOptions(
        **train,
        steps=recipe_steps,
        batch_size=p["batch_size"],
        precision=p["precision"],
        device="cpu",
        log_every=1,
        grid_every=10**9,
        checkpoint_every=10**9,
    )
    data = phantom_dataset(4, res, seed=0)
    stage_options = dict(p.get("stage", {}))
    model = dict(p["model"])
    if stage == "geometry":
        model["resolution"] = min(model.get("resolution", res), res // 4)
        # Without the preset's noise_fade_steps, the noise fades over opts.steps: the recipe's.
        cfg = GeometryConfig(**model)
        st = geometry_stage(data, cfg, opts, GeometryStageOptions(**stage_options))
    else:
        refine = stage == "refiner"
        if refine:
            model["coarse"] = min(model.get("coarse", 64), res // 4)
        cfg = TextureConfig(**texture_model(model, data, refine, opts.crop))
        if refine and stage_options.get("adapt_weight"):
            # The refiner adapts to a DCGAN's masks; an untrained one costs the same per step.
            geometry = dict(preset(name, "geometry")["model"], resolution=cfg.coarse)
            stage_options["adapt_geometry"] = MaskGenerator(GeometryConfig(**geometry))
        target = "mask" if refine else "image"
        st = texture_stage(data, cfg, opts, TextureStageOptions(**stage_options), target)
    gen = torch.Generator().manual_seed(0)
    st.train_step(gen, 1)  # warm-up
    t0 = time.perf_counter()
    for step in range(2, steps + 2):
        st.train_step(gen, step)
    per_step = (time.perf_counter() - t0) / steps
    return {
        "stage": stage,
        "resolution": res,
        "batch_size": opts.batch_size,
        "crop": opts.crop,
        "seconds_per_step": per_step,
        "recipe_steps": recipe_steps,
        "projected_minutes": recipe_steps * per_step / 60,
        "precision": str(pick_precision(opts.precision, torch.device("cpu"))).split(".")[-1],
        "peak_rss_mb": _peak_rss_mb(),
    }


def recipe(name: str, res: int, steps: int) -> dict[str, Any]:
    """Time every stage of preset ``name``'s recipe at ``res``; print and return the figures."""
    from synthmed.presets import PRESETS

    if name not in PRESETS:
        raise SystemExit(f"--recipe {name}: unknown preset; choose one of {', '.join(PRESETS)}")
    threads = torch.get_num_threads()
    print(f"recipe {name} at {res} px, {steps} timed steps per stage, {threads} threads")
    print(f"{'stage':<9}{'batch':>6}{'crop':>6}{'s/step':>8}{'steps':>7}{'minutes':>9}{'MB':>7}")
    rows = []
    for stage in RECIPE_STAGES:
        r = _run_case(f"recipe:{name}:{stage}:{res}", steps)
        rows.append(r)
        print(
            f"{stage:<9}{r['batch_size']:>6}{r['crop']:>6}{r['seconds_per_step']:>8.3f}"
            f"{r['recipe_steps']:>7}{r['projected_minutes']:>9.1f}{r['peak_rss_mb']:>7.0f}"
        )
    total = sum(r["projected_minutes"] for r in rows)
    print(f"projected training time of the recipe: {total:.1f} min")
    return {"preset": name, "resolution": res, "stages": rows, "projected_minutes": total}


def _run_case(case: str, steps: int) -> dict[str, Any]:
    """Run one case in a fresh process, so that its peak memory is its own."""
    cmd = [sys.executable, "-m", "synthmed.bench", "--case", case, "--steps", str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(resolutions: list[int], steps: int, generate_n: int) -> dict[str, Any]:
    """Measure everything; return the results as one dict (also printed as a table)."""
    cpu = torch.device("cpu")
    limits = {"float32": matmul_gflops(torch.float32)}
    if native_bf16(cpu):
        limits["bfloat16"] = matmul_gflops(torch.bfloat16)
    result: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "native_bf16": native_bf16(cpu),
        },
        "matmul_gflops": limits,
        "training": [],
        "generation": [],
    }
    for dtype, rate in limits.items():
        print(f"{dtype} matmul: {rate:.1f} GFLOP/s at {torch.get_num_threads()} threads")
    print(
        f"{'stage':<9}{'res':>5}{'variant':>14}{'batch':>6}{'img/s':>8}{'bar img/s':>10}"
        f"{'x paper':>8}{'GFLOP/s':>9}{'% matmul':>9}{'MB':>7}"
    )
    for stage in ("geometry", "texture"):
        for res in resolutions:
            rows = []
            for name, precision in VARIANTS[stage]:
                if precision == "fp32" and "bfloat16" not in limits:
                    continue  # the default already is float32 here
                spec = f"{stage}:{res}:{name}:{precision or ''}"
                r = _run_case(f"train:{spec}", steps)
                if stage == "texture":
                    r |= _run_case(f"driver:{spec}", steps)
                label = name + (f"/{precision}" if precision else "")
                r.update(stage=stage, resolution=res, preset=name, variant=label)
                r["fraction_of_matmul"] = r["achieved_gflops"] / limits[r["precision"]]
                rows.append(r)
            paper = next(r for r in rows if r["preset"] == "paper")
            for r in rows:
                r["speedup_vs_paper"] = r["images_per_s"] / paper["images_per_s"]
                result["training"].append(r)
                print(
                    f"{stage:<9}{res:>5}{r['variant']:>14}{r['batch_size']:>6}"
                    f"{r['images_per_s']:>8.2f}{r.get('driver_images_per_s', 0):>10.2f}"
                    f"{r['speedup_vs_paper']:>8.2f}{r['achieved_gflops']:>9.1f}"
                    f"{100 * r['fraction_of_matmul']:>8.0f}%{r['peak_rss_mb']:>7.0f}"
                )
    for res in resolutions:
        if res < 256:
            continue
        r = _run_case(f"generate:{res}", generate_n)
        r["resolution"] = res
        result["generation"].append(r)
        print(f"generate {res:>5}: {r['pairs_per_s']:.2f} pairs/s, {r['peak_rss_mb']:.0f} MB")
    return result


def repository_check(clients: int, seconds: float, out: str) -> int:
    """Run the repository load check, print its figures, store them under ``repository_load``.

    Returns the exit code: 1 if any request failed.
    """
    from synthmed.files import write_json
    from synthmed.repository.commands import require_extra

    require_extra("bench --repository")  # before loadcheck.py imports httpx
    from synthmed.repository.loadcheck import run_load_check

    r = run_load_check(clients, seconds)
    print(
        f"repository: {r['clients']} clients, {r['seconds']:.1f} s: {r['requests']} requests, "
        f"{r['requests_per_s']:.1f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
        f"{r['download_mb_per_s']:.1f} MB/s, {r['errors']} errors"
    )
    rss = r["server_rss_mb"]
    if rss["before"] is not None and rss["after"] is not None:
        print(
            f"  server resident memory {rss['before']:.0f} MB before, {rss['after']:.0f} MB after"
        )
    for kind, k in r["by_kind"].items():
        print(f"  {kind:<12}{k['n']:>7}{k['p50_ms']:>9.1f} ms p50{k['p99_ms']:>9.1f} ms p99")
    for e in r["error_examples"]:
        print(f"  error: {e}")
    if r["server_log_tail"]:
        print(f"server log (end):\n{r['server_log_tail']}")
    write_json(out, {"repository_load": r})
    print(f"results in {out}")
    return 1 if r["errors"] else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m synthmed.bench`` (and ``synthmed bench``); returns the exit
    code. A user error (an option, or the repository extra missing for ``--repository``) is
    one line and exit code 2, as in the ``synthmed`` command."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except UserError as e:
        print(f"synthmed: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR


def _parser() -> argparse.ArgumentParser:
    """The options of ``synthmed bench``."""
    p = argparse.ArgumentParser(prog="synthmed bench", description=__doc__.splitlines()[0])
    p.add_argument("--res", type=int, nargs="+", default=[128, 256, 512])
    p.add_argument("--steps", type=int, default=5, help="timed steps per training case")
    p.add_argument("--generate-n", type=int, default=32, help="pairs per generation case")
    p.add_argument(
        "--out", default="bench.json", help="where to write the results (a folder: OUT/bench.json)"
    )
    p.add_argument("--repository", action="store_true", help="run only the repository's load check")
    p.add_argument("--clients", type=int, default=8, help="load check: concurrent clients")
    p.add_argument(
        "--load-seconds", type=float, default=10.0, help="load check: how long (seconds)"
    )
    p.add_argument("--recipe", metavar="PRESET", help="time a preset's recipe (e.g. drive512)")
    p.add_argument("--recipe-res", type=int, default=512, help="--recipe: data side (px)")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case in this process
    return p


def _run(args: argparse.Namespace) -> int:
    """Run what the options ask for: one case (internal), the repository's load check, a
    preset's recipe, or the whole benchmark; returns the exit code."""
    if Path(args.out).is_dir():  # decided now, not after minutes of measuring
        args.out = str(Path(args.out) / "bench.json")
    if args.case:
        kind, *rest = args.case.split(":")
        if kind == "recipe":
            r = recipe_case(rest[0], rest[1], int(rest[2]), args.steps)
        elif kind == "generate":
            r = generate_case(int(rest[0]), args.steps)
        else:
            measure = train_case if kind == "train" else driver_case
            r = measure(rest[0], int(rest[1]), rest[2], rest[3] or None, args.steps)
        print(json.dumps(r))
        return 0
    if args.repository:
        return repository_check(args.clients, args.load_seconds, args.out)
    from synthmed.files import write_json

    if args.recipe:
        write_json(args.out, {"recipe": recipe(args.recipe, args.recipe_res, args.steps)})
        print(f"results in {args.out}")
        return 0
    result = run(args.res, args.steps, args.generate_n)
    write_json(args.out, result)
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
