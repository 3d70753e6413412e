"""Write generated pairs as a dataset folder that the paired-folder reader reads back.

Layout: ``images/0000.png``, ``masks/0000.png`` (0/255), ``fov/0000.png``,
``manifest.json`` (seed, models' configs and weight hashes, resolution, version, command),
``datalist.json`` (MONAI's Decathlon datalist) and ``README.md`` (a dataset card; both from
:mod:`synthmed.dataset_card`). The folder is built beside the destination and renamed into
place, so it is complete or absent, card and datalist included.

Two sources of pairs: the whole pipeline from noise (:func:`generate_dataset`), or Stage II
alone on masks the user already has (:func:`translate_dataset`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from synthmed import __version__
from synthmed.data.prepared import PreparedDataset
from synthmed.data.sources import load_any
from synthmed.dataset_card import write_dataset_files
from synthmed.errors import UserError
from synthmed.files import atomic_folder, write_json
from synthmed.pipeline import (
    Samples,
    SingleGANPipeline,
    SynthMedPipeline,
    TextureModel,
    TrainedModel,
    load,
)

BATCH = 64  # pairs generated per call to the pipeline (bounds memory, not the output)
# zlib level 1: PNG stays lossless; level 6 (Pillow's default) took longer than the networks.
PNG_LEVEL = 1


def generate(
    model: str | Path | TrainedModel,
    out: str | Path,
    n: int | None = None,
    *,
    seed: int = 0,
    masks: str | Path | PreparedDataset | None = None,
    license: str | None = None,
    command: str | None = None,
    **sampling: Any,
) -> Path:
    """A dataset folder from a trained model in one call (``synthmed.generate``).

    ``model`` is a loaded model or any folder :func:`synthmed.pipeline.load` reads: a
    pipeline or a single GAN makes ``n`` new pairs; a Stage II model (``train texture``)
    renders an image for each mask of ``masks`` (a prepared dataset or a folder of pairs),
    names kept. ``sampling``: :class:`~synthmed.pipeline.SamplingOptions`, when ``model`` is
    a folder. Returns ``out``, written atomically with its manifest, datalist and card.
    """
    if not isinstance(model, TrainedModel):
        model = load(model, **sampling)
    elif sampling:
        raise UserError(f"generate: {sorted(sampling)} apply only when loading a model folder")
    if isinstance(model, TextureModel):
        if masks is None:
            raise UserError("generate: a Stage II model alone needs masks to render (--masks)")
        if n is not None:
            raise UserError("generate: with masks, every mask gets one image (drop --n)")
        data = masks if isinstance(masks, PreparedDataset) else load_any(masks, model.resolution)
        return translate_dataset(model, data, out, seed, license=license, command=command)
    if masks is not None:
        raise UserError("generate --masks: give a Stage II model (--texture) only")
    if n is None:
        raise UserError("generate: say how many pairs to make (--n)")
    return generate_dataset(model, n, out, seed, license=license, command=command)


def generate_dataset(
    pipe: SynthMedPipeline | SingleGANPipeline,
    n: int,
    out: str | Path,
    seed: int = 0,
    *,
    license: str | None = None,
    command: str | None = None,
) -> Path:
    """Generate ``n`` pairs with ``pipe`` into the new folder ``out``.

    ``license`` goes into the dataset card (None: ``other``, and the card asks the user to
    set it); ``command``, the command line that made the set, into the manifest and the card.
    """
    if n < 1:
        raise UserError(f"--n {n}: need at least one pair")
    width = max(4, len(str(n - 1)))

    def batches() -> Iterator[tuple[list[str], Samples]]:
        # Seeds per batch derived from the user's seed: batch b uses seed * 1_000_003 + b.
        for b, start in enumerate(range(0, n, BATCH)):
            s = pipe.sample(min(BATCH, n - start), seed=seed * 1_000_003 + b)
            yield [f"{start + i:0{width}d}" for i in range(len(s.masks))], s

    manifest = {
        "seed": seed,
        "resolution": pipe.resolution,
        "channels": pipe.channels,
        "models": pipe.describe(),
        "precision": getattr(pipe, "precision", "float32"),
        "stochastic_texture": getattr(pipe, "stochastic", False),
        "texture_tile": getattr(pipe, "tile", None),
        "tree_repair": getattr(pipe, "repair_spec", None),
        "command": command,
    }
    return _write_dataset(Path(out), n, batches, manifest, license)


def translate_dataset(
    texture: TextureModel,
    data: PreparedDataset,
    out: str | Path,
    seed: int = 0,
    *,
    license: str | None = None,
    command: str | None = None,
) -> Path:
    """Stage II only: an image for every (mask, field of view) of ``data``, names kept.

    For researchers who have masks (drawn, or from another generator) and want images, and
    for judging Stage II apart from Stage I on the real masks. ``license`` and ``command``
    as for :func:`generate_dataset`.
    """

    def batches() -> Iterator[tuple[list[str], Samples]]:
        for start in range(0, len(data), BATCH):
            part = slice(start, start + BATCH)
            images = texture.translate(data.masks[part], data.fov[part], seed * 1_000_003 + start)
            masks, fov = data.masks[part].astype(bool), data.fov[part].astype(bool)
            yield data.names[part], Samples(masks, fov, images)

    manifest = {
        "resolution": data.resolution,
        "channels": texture.channels,
        "models": texture.describe(),
        "precision": texture.precision,
        "stochastic_texture": texture.stochastic,
        "texture_tile": texture.tile,
        "seed": seed,
        "masks_from": data.meta.get("source", "?"),
        "command": command,
    }
    return _write_dataset(Path(out), len(data), batches, manifest, license)


def _write_dataset(
    out: Path,
    n: int,
    batches: Callable[[], Iterator[tuple[list[str], Samples]]],
    manifest: dict[str, Any],
    license: str | None = None,
) -> Path:
    """Write the pairs of ``batches()``, the manifest, the MONAI datalist and the dataset
    card into ``out``, atomically (all inside the temporary folder before its rename)."""
    with _new_folder(out) as tmp:
        t0 = time.perf_counter()
        written: list[str] = []  # the datalist lists the pairs in the order they were written
        with tqdm(total=n, unit="pair", desc="generate", dynamic_ncols=True) as bar:
            for names, s in batches():
                for name, image, mask, fov in zip(names, s.images, s.masks, s.fov, strict=True):
                    _save(image[..., 0] if image.shape[-1] == 1 else image, tmp / "images", name)
                    _save(mask.astype(np.uint8) * 255, tmp / "masks", name)
                    _save(fov.astype(np.uint8) * 255, tmp / "fov", name)
                written += names
                bar.update(len(names))
        head = {"generator": "synthmed", "version": __version__, "count": n}
        tail = {
            "layout": {"images": "images/", "masks": "masks/", "fov": "fov/"},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        full = head | manifest | tail
        write_json(tmp / "manifest.json", full)
        write_dataset_files(tmp, out.name, written, full, license)
    return out


def _save(array: np.ndarray, folder: Path, name: str) -> None:
    Image.fromarray(array).save(folder / f"{name}.png", compress_level=PNG_LEVEL)


@contextmanager
def _new_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out`` that becomes ``out`` when the block succeeds; ``out``
    must not exist or be an empty folder (a dataset is never overwritten)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: folder exists and is not empty; choose another --out")
    with atomic_folder(out) as tmp:
        for sub in ("images", "masks", "fov"):
            (tmp / sub).mkdir()
        yield tmp
