"""``python -m synthmed.bench`` / ``synthmed bench``: speed and memory, measured, not assumed.

Every figure is taken in one run on one machine, so ratios are meaningful:

* the machine's own limit: float32 matrix-multiply GFLOP/s at the thread count in use;
* Stage I and Stage II training images/s and achieved GFLOP/s (FLOPs of one step counted with
  ``torch.utils.flop_counter``), for SynthMed's default configuration and the paper preset;
* generation: complete (mask, image) pairs per second, PNG writing included;
* peak resident memory of each case: every case runs in its own process.

Training steps are timed through the same ``Stage.train_step`` that ``synthmed train`` runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from synthmed.models.dcgan import GeometryConfig
from synthmed.models.pix2pix import TextureConfig
from synthmed.training.options import TrainOptions

# Named configurations. "paper" keeps the paper's / reference implementations' choices
# (DCGAN with transposed convolutions; pix2pix U-Net-256 with ngf 64, 70x70 PatchGAN, batch 1).
PRESETS: dict[str, dict[str, Any]] = {
    "default": {
        "geometry": {"config": {}, "batch_size": 16},
        "texture": {"config": {}, "batch_size": 4},
    },
    "paper": {
        "geometry": {"config": {"upsample": "transpose", "ngf": 64, "ndf": 64}, "batch_size": 16},
        "texture": {"config": {"upsample": "transpose", "ngf": 64, "ndf": 64}, "batch_size": 1},
    },
}


def matmul_gflops(n: int = 2048, trials: int = 5, seconds: float = 0.5) -> float:
    """Float32 matrix-multiply rate of this machine at the current thread count.

    The best of several short trials: a shared machine's slow moments are noise, the limit
    is what the hardware can do.
    """
    a, b = torch.randn(n, n), torch.randn(n, n)
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


def train_case(stage: str, res: int, preset: str, steps: int) -> dict[str, Any]:
    """Images/s, FLOPs per image and peak memory of training ``stage`` at ``res``."""
    from synthmed.data.sources import phantom_dataset
    from synthmed.training.geometry import geometry_stage
    from synthmed.training.texture import texture_stage

    p = PRESETS[preset][stage]
    data = phantom_dataset(4, res, seed=0)
    opts = TrainOptions(steps=steps, batch_size=p["batch_size"], device="cpu")
    if stage == "geometry":
        cfg = GeometryConfig(resolution=res, **p["config"])
        st = geometry_stage(data, cfg, opts, 0.3, True, steps)
    else:
        cfg = TextureConfig(resolution=res, **p["config"])
        st = texture_stage(data, cfg, opts)
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
        "peak_rss_mb": _peak_rss_mb(),
    }


def generate_case(res: int, n: int) -> dict[str, Any]:
    """Pairs/s of ``generate`` (both stages, default configuration, PNGs written)."""
    from synthmed.generate import generate_dataset
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
    return {"pairs_per_s": n / seconds, "peak_rss_mb": _peak_rss_mb()}


def _run_case(case: str, steps: int) -> dict[str, Any]:
    """Run one case in a fresh process, so that its peak memory is its own."""
    cmd = [sys.executable, "-m", "synthmed.bench", "--case", case, "--steps", str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(resolutions: list[int], steps: int, generate_n: int) -> dict[str, Any]:
    """Measure everything; return the results as one dict (also printed as a table)."""
    result: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "matmul_gflops": matmul_gflops(),
        "training": [],
        "generation": [],
    }
    peak = result["matmul_gflops"]
    print(f"float32 matmul: {peak:.1f} GFLOP/s at {torch.get_num_threads()} threads")
    print(f"{'stage':<9}{'res':>5}{'preset':>9}{'img/s':>9}{'GFLOP/s':>9}{'% matmul':>9}{'MB':>7}")
    for stage in ("geometry", "texture"):
        for res in resolutions:
            for preset in PRESETS:
                r = _run_case(f"train:{stage}:{res}:{preset}", steps)
                r.update(stage=stage, resolution=res, preset=preset)
                r["fraction_of_matmul"] = r["achieved_gflops"] / peak
                result["training"].append(r)
                print(
                    f"{stage:<9}{res:>5}{preset:>9}{r['images_per_s']:>9.2f}"
                    f"{r['achieved_gflops']:>9.1f}{100 * r['fraction_of_matmul']:>8.0f}%"
                    f"{r['peak_rss_mb']:>7.0f}"
                )
    for res in resolutions:
        if res < 256:
            continue
        r = _run_case(f"generate:{res}", generate_n)
        r["resolution"] = res
        result["generation"].append(r)
        print(f"generate {res:>5}: {r['pairs_per_s']:.2f} pairs/s, {r['peak_rss_mb']:.0f} MB")
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m synthmed.bench``."""
    p = argparse.ArgumentParser(prog="synthmed bench", description=__doc__.splitlines()[0])
    p.add_argument("--res", type=int, nargs="+", default=[128, 256, 512])
    p.add_argument("--steps", type=int, default=5, help="timed steps per training case")
    p.add_argument("--generate-n", type=int, default=16, help="pairs per generation case")
    p.add_argument("--out", default="bench.json", help="where to write the results")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case in this process
    args = p.parse_args(argv)
    if args.case:
        kind, *rest = args.case.split(":")
        if kind == "train":
            r = train_case(rest[0], int(rest[1]), rest[2], args.steps)
        else:
            r = generate_case(int(rest[0]), args.steps)
        print(json.dumps(r))
        return 0
    result = run(args.res, args.steps, args.generate_n)
    from synthmed.files import write_json

    write_json(args.out, result)
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
