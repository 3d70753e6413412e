"""``synthmed demo``: the whole pipeline on the embedded phantom data, in minutes on a CPU.

Prepares phantom fundus data, trains both stages briefly, generates a folder of pairs and a
4x4 grid of (mask, image), and prints where everything is. The budget below was chosen so
the demo finishes within 10 minutes on 2 CPU cores (see README for the measured time).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import phantom_dataset
from synthmed.generation import generate_dataset
from synthmed.grids import pair_grid, save_png
from synthmed.models.dcgan import GeometryConfig
from synthmed.models.pix2pix import TextureConfig
from synthmed.pipeline import SynthMedPipeline
from synthmed.training.geometry import train_geometry
from synthmed.training.options import TrainOptions
from synthmed.training.texture import train_texture

# 64 px: at 128 px the DCGAN still drew speckle after 600 steps (~4 min on 2 cores), at
# 64 px it draws the main vessel arcades in that time. Quality at full size is issue work.
DEMO_RES = 64
DEMO_IMAGES = 64  # phantom training pairs
GEOMETRY_STEPS, GEOMETRY_BATCH = 1000, 16
TEXTURE_STEPS, TEXTURE_BATCH = 900, 4
QUICK_STEPS = 4  # --quick: a smoke test of every step, not a useful model


def run_demo(out: Path, device: str = "auto", quick: bool = False) -> Path:
    """Run the demo into ``out``; return the path of the (mask, image) grid."""
    t0 = time.perf_counter()
    res = 32 if quick else DEMO_RES
    data_dir = out / f"data/phantom{res}"
    if (data_dir / "dataset.json").is_file():
        data = PreparedDataset.load(data_dir)
    else:
        print(f"[1/4] rendering {DEMO_IMAGES} phantom fundus images at {res}x{res}")
        data = phantom_dataset(16 if quick else DEMO_IMAGES, res, seed=0)
        data.save(data_dir)
    base = TrainOptions(device=device, grid_every=100, checkpoint_every=100)
    if quick:
        base = replace(base, log_every=1, grid_every=QUICK_STEPS, checkpoint_every=QUICK_STEPS)

    geo_opts = replace(base, steps=QUICK_STEPS if quick else GEOMETRY_STEPS)
    geo_opts = replace(geo_opts, batch_size=GEOMETRY_BATCH)
    print("[2/4] Stage I: DCGAN learning vessel masks")
    geo_cfg = GeometryConfig(resolution=res, ngf=32, ndf=32)
    geo = out / "runs/geometry"
    train_geometry(data, geo, geo_cfg, geo_opts, resume=(geo / "checkpoint.safetensors").exists())

    tex_opts = replace(base, steps=QUICK_STEPS if quick else TEXTURE_STEPS)
    tex_opts = replace(tex_opts, batch_size=TEXTURE_BATCH)
    print("[3/4] Stage II: pix2pix learning mask -> fundus image")
    tex_cfg = TextureConfig(resolution=res, ngf=32, ndf=32, out_channels=data.channels)
    tex = out / "runs/texture"
    train_texture(data, tex, tex_cfg, tex_opts, resume=(tex / "checkpoint.safetensors").exists())

    print("[4/4] generating synthetic pairs")
    pipe = SynthMedPipeline.from_folders(geo, tex, device=device)
    pipe.save(out / "pipeline")
    synth = out / "synthetic"
    if synth.exists():
        import shutil

        shutil.rmtree(synth)  # the demo's own output from an earlier demo run
    generate_dataset(pipe, 64, synth, seed=0)
    samples = pipe.sample(16, seed=0)
    grid_path = out / "grid.png"
    save_png(pair_grid(samples.masks, samples.images, ncol=4), grid_path)
    print(
        f"\ndone in {time.perf_counter() - t0:.0f} s\n"
        f"  grid of 16 (mask, image) pairs: {grid_path}\n"
        f"  synthetic dataset (64 pairs):   {synth}\n"
        f"  pipeline (both stages):         {out / 'pipeline'}\n"
        f"  training runs (grids, stats):   {geo}, {tex}\n"
        f"  real phantom training data:     {data_dir}"
    )
    return grid_path
