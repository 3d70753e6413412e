"""Write generated pairs as a dataset folder that the paired-folder reader reads back.

Layout: ``images/0000.png``, ``masks/0000.png`` (0/255), ``fov/0000.png`` and
``manifest.json`` (seed, models' configs and weight hashes, resolution, version). The folder
is built beside the destination and renamed into place, so it is complete or absent.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from synthmed import __version__
from synthmed.errors import UserError
from synthmed.files import write_json
from synthmed.pipeline import SingleGANPipeline, SynthMedPipeline

BATCH = 64  # pairs generated per call to the pipeline (bounds memory, not the output)


def generate_dataset(
    pipe: SynthMedPipeline | SingleGANPipeline, n: int, out: str | Path, seed: int = 0
) -> Path:
    """Generate ``n`` pairs with ``pipe`` into the new folder ``out``."""
    out = Path(out)
    if n < 1:
        raise UserError(f"--n {n}: need at least one pair")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: folder exists and is not empty; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for sub in ("images", "masks", "fov"):
            (tmp / sub).mkdir()
        width = max(4, len(str(n - 1)))
        t0 = time.perf_counter()
        with tqdm(total=n, unit="pair", desc="generate", dynamic_ncols=True) as bar:
            # Seeds per batch derived from the user's seed: batch b uses seed * 1_000_003 + b.
            for b, start in enumerate(range(0, n, BATCH)):
                s = pipe.sample(min(BATCH, n - start), seed=seed * 1_000_003 + b)
                for i in range(len(s.masks)):
                    name = f"{start + i:0{width}d}.png"
                    image = s.images[i]
                    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
                        tmp / "images" / name
                    )
                    Image.fromarray(s.masks[i].astype(np.uint8) * 255).save(tmp / "masks" / name)
                    Image.fromarray(s.fov[i].astype(np.uint8) * 255).save(tmp / "fov" / name)
                bar.update(len(s.masks))
        manifest = {
            "generator": "synthmed",
            "version": __version__,
            "count": n,
            "seed": seed,
            "resolution": pipe.resolution,
            "channels": pipe.channels,
            "models": pipe.describe(),
            "layout": {"images": "images/", "masks": "masks/", "fov": "fov/"},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        write_json(tmp / "manifest.json", manifest)
        if out.exists():
            out.rmdir()  # empty, checked above
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out
