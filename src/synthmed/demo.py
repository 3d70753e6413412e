"""``synthmed demo``: ``synthmed fit`` on the embedded phantom data, in minutes on a CPU.

Renders phantom fundus pairs, then runs the same ``fit`` a lab runs on its own data (no
domain named: the phantoms' masks are found to be vessel trees), and draws a 4x4 grid of
generated (mask, image) pairs from the fitted pipeline. The budget below was chosen so the
demo plans its stages at 64 px on 2 CPU cores (see README for the measured time).
"""

from __future__ import annotations

import time
from pathlib import Path

from synthmed.data.sources import phantom_dataset
from synthmed.fitting.run import DataOptions, fit
from synthmed.grids import pair_grid, save_png
from synthmed.pipeline import SynthMedPipeline

DEMO_RES = 64  # at 64 px the DCGAN draws the phantom's main vessel arcades within minutes
DEMO_IMAGES = 64  # phantom pairs, a fifth of them held out for the evaluation
DEMO_BUDGET = "20m"  # fit's budget: on 2 idle CPU cores every stage gets its minimum steps at 64 px
QUICK_STEPS = 2  # --quick: a smoke test of every step, not a useful model


def run_demo(out: Path, device: str = "auto", quick: bool = False) -> Path:
    """Run the demo into ``out``; return the path of the (mask, image) grid.

    ``out/phantom{res}`` holds the rendered pairs, ``out/fit`` the fit run (plan, runs,
    pipeline, synthetic set, report); running the demo again resumes an unfinished fit.
    """
    t0 = time.perf_counter()
    res = 32 if quick else DEMO_RES
    data_dir = out / f"phantom{res}"
    if not (data_dir / "dataset.json").is_file():
        print(f"[1/3] rendering {DEMO_IMAGES} phantom fundus pairs at {res}x{res}")
        phantom_dataset(16 if quick else DEMO_IMAGES, res, seed=0).save(data_dir)
    run = out / "fit"
    print(f"[2/3] synthmed fit {data_dir} --out {run} --budget {DEMO_BUDGET}")
    fit(
        data_dir,
        run,
        reading=DataOptions(),
        budget=DEMO_BUDGET,
        resume=(run / "plan.json").is_file(),
        device=device,
        max_steps=QUICK_STEPS if quick else None,
        short_ok=True,  # on a busy machine: a smaller or shorter run, never a refusal
    )
    print("[3/3] drawing 16 pairs from the fitted pipeline")
    samples = SynthMedPipeline.load(run / "pipeline", device=device).sample(16, seed=0)
    grid_path = out / "grid.png"
    save_png(pair_grid(samples.masks, samples.images, ncol=4), grid_path)
    pairs = len(list((run / "synthetic" / "images").iterdir()))
    print(
        f"\ndone in {time.perf_counter() - t0:.0f} s\n"
        f"  grid of 16 (mask, image) pairs: {grid_path}\n"
        f"  synthetic dataset ({pairs} pairs): {run / 'synthetic'}\n"
        f"  evaluation report:              {run / 'report' / 'report.html'}\n"
        f"  the plan and why:               {run / 'plan.json'}\n"
        f"  pipeline (both stages):         {run / 'pipeline'}\n"
        f"  training runs (grids, stats):   {run / 'runs'}\n"
        f"  real phantom pairs:             {data_dir}"
    )
    return grid_path
