"""The two-stage generator as one object: Stage I masks, then Stage II images.

A pipeline folder (after diffusers' convention) holds ``pipeline.json`` and one sub-folder
per stage, ``geometry/`` and ``texture/``, each with ``config.json`` + ``model.safetensors``.
Loading never unpickles anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthmed import __version__
from synthmed.checkpoints import save_component
from synthmed.data import provenance
from synthmed.device import autocast, pick_device, pick_precision
from synthmed.errors import UserError
from synthmed.files import read_json, sha256_file, write_json
from synthmed.models.conditioning import condition
from synthmed.models.dcgan import MaskGenerator
from synthmed.models.loading import component_folder, load_generator
from synthmed.models.pix2pix import UNetGenerator
from synthmed.models.refiner import coarse_encoding, coarse_masks, refiner_condition
from synthmed.models.tree_repair import TreeRepair, repair_trees

# Stage I's batch norm uses batch statistics, so a mask depends on the other masks of its
# batch: sampling always runs in chunks of this size, making output a function of the seed.
CHUNK = 16


def _window(side: int, device: torch.device) -> torch.Tensor:
    """Blending weights (side, side) of one tile: a tent, highest in the middle, > 0 at edges."""
    ramp = 1 - (2 * (torch.arange(side, device=device) + 0.5) / side - 1).abs()
    return ramp[:, None] * ramp[None, :]


def check_tile(tile: int, side: int, net: UNetGenerator) -> int:
    """``tile`` if Stage II can render ``side`` px images in half-overlapping windows of it
    (0 or >= side: whole images), else a UserError."""
    unit = 2 ** net.cfg.levels()
    if tile < 0 or (0 < tile < side and (tile % unit or side % (tile // 2))):
        raise UserError(
            f"--tile {tile}: windows must be a multiple of {unit} px (the U-Net's levels) "
            f"whose half divides the image side {side} px, or 0 for whole images"
        )
    return 0 if tile >= side else tile


def training_crop(folder: Path) -> int:
    """The crop side a Stage II run trained on (its ``options.json``), 0 if whole images or
    unknown: sampling renders in windows of it by default (see :func:`render`)."""
    options = folder.parent / "options.json" if folder.name == "generator" else None
    if options is None or not options.is_file():
        return 0
    spec = read_json(options)
    crop, side = spec.get("train", {}).get("crop", 0), spec.get("resolution", 0)
    return crop if 0 < crop < side else 0


def render(
    net: UNetGenerator, cond: torch.Tensor, style: torch.Tensor | None, tile: int = 0
) -> torch.Tensor:
    """Stage II: conditions (N, 2, H, W) -> images (N, C, H, W) in [-1, 1].

    ``tile`` 0 (or >= the image) renders whole images. Otherwise windows of ``tile`` px, half
    overlapping and blended with tent weights, each with its image's style code. Why: Stage II
    trains on crops, and its instance norms then see crop statistics; a whole 512 px image
    normalised over four times the area came out brighter than the photos its codes came from
    (measured on work/drive512-v11, each training image rendered from its own code: mean red
    +12 of 255 whole, +1 in 256 px windows; experiments/render_windows.py).
    """
    n, _, h, w = cond.shape
    if not tile or (tile >= h and tile >= w):
        return net(cond, style)
    step = tile // 2
    spots = [(y, x) for y in range(0, h - tile + 1, step) for x in range(0, w - tile + 1, step)]
    weight = _window(tile, cond.device)
    out = torch.zeros(n, net.cfg.out_channels, h, w, device=cond.device)
    total = torch.zeros(h, w, device=cond.device)
    for y, x in spots:  # one window at a time: memory stays that of a tile
        piece = net(cond[..., y : y + tile, x : x + tile], style).float()
        out[..., y : y + tile, x : x + tile] += piece * weight
        total[y : y + tile, x : x + tile] += weight
    return out / total


def sampling_dropout(net: torch.nn.Module, on: bool) -> None:
    """Keep a network's dropout layers active (``on``) or not while the rest stays in eval mode.

    pix2pix's only noise source is its decoder dropout, and Isola et al. keep it on at test
    time; switched off, every mask gets exactly one rendering.
    """
    for m in net.modules():
        if isinstance(m, torch.nn.Dropout):
            m.train(on)


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed the global generators (style codes and dropout draw from them) inside, restore
    them after."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@dataclass
class Samples:
    """Generated pairs as arrays ready to save: masks/fov (N, R, R) bool, images (N, R, R, C)."""

    masks: np.ndarray
    fov: np.ndarray
    images: np.ndarray


@dataclass
class SamplingOptions:
    """How a trained model runs (never what it learnt): the keywords every ``load`` takes.

    ``precision`` "auto" is bfloat16 where the device computes it natively, else float32;
    ``stochastic`` keeps Stage II's decoder dropout on (varied renderings of one mask);
    ``tile`` is Stage II's window side (None: the one the folder records, 0: whole images).
    """

    device: str = "auto"
    precision: str = "auto"
    stochastic: bool = False
    tile: int | None = None


class TrainedModel:
    """What every loaded model offers, whatever it is: ``describe()`` for manifests and
    dataset cards, ``channels``, ``precision``, and ``device``. Sampling models
    (:class:`SynthMedPipeline`, :class:`SingleGANPipeline`) add ``pipe(n, seed=...)``;
    :class:`TextureModel` adds ``model(masks, fov, seed=...)``."""

    device: torch.device
    dtype: torch.dtype = torch.float32

    @property
    def precision(self) -> str:
        """Compute dtype of sampling: "float32" or "bfloat16"."""
        return str(self.dtype).removeprefix("torch.")

    @property
    def channels(self) -> int:
        """Channels of the generated images (1 grayscale, 3 colour)."""
        raise NotImplementedError

    def describe(self) -> dict[str, dict]:
        """Config and weight hash of each network (for manifests and dataset cards)."""
        raise NotImplementedError


class SynthMedPipeline(TrainedModel):
    """Stage I (DCGAN masks, optionally refined) followed by Stage II (pix2pix images).

    Load a saved pipeline with :meth:`load`, or assemble one from training runs with
    :meth:`from_folders`; ``pipe(n, seed=...)`` samples ``n`` pairs.
    """

    def __init__(
        self,
        geometry: MaskGenerator,
        texture: UNetGenerator,
        refiner: UNetGenerator | None = None,
        repair: TreeRepair | None = None,
        **sampling: Any,
    ):
        """``sampling``: the fields of :class:`SamplingOptions` (``tile`` None: whole images)."""
        opts = SamplingOptions(**sampling)
        side = _check_stages(geometry, texture, refiner)
        self.device = pick_device(opts.device)
        self.dtype = pick_precision(opts.precision, self.device)
        # channels_last: oneDNN's bf16 convolutions otherwise reorder every activation
        # (docs/speed.md).
        last = torch.channels_last
        self.geometry = geometry.to(self.device, memory_format=last).eval()
        self.texture = texture.to(self.device, memory_format=last).eval()
        self.refiner = None if refiner is None else refiner.to(self.device, memory_format=last)
        if self.refiner is not None:
            self.refiner.eval()
        self.stochastic = opts.stochastic
        self.repair = repair
        self.tile = check_tile(opts.tile or 0, side, texture)
        self.sources: dict[str, Path] = {}

    @property
    def stochastic(self) -> bool:
        """Whether Stage II samples with its decoder dropout on (varied renderings)."""
        return self._stochastic

    @stochastic.setter
    def stochastic(self, on: bool) -> None:
        self._stochastic = on
        sampling_dropout(self.texture, on)

    @property
    def resolution(self) -> int:
        """Side of the generated pairs."""
        return self.geometry.cfg.resolution if self.refiner is None else self.refiner.cfg.resolution

    @property
    def channels(self) -> int:
        return self.texture.cfg.out_channels

    @classmethod
    def from_folders(
        cls,
        geometry: str | Path,
        texture: str | Path,
        refiner: str | Path | None = None,
        repair: TreeRepair | None = None,
        **sampling: Any,
    ) -> SynthMedPipeline:
        """Build from the run folders (or component folders) of ``synthmed train``.
        ``sampling``: :class:`SamplingOptions`; ``tile`` None is Stage II's training crop
        when its run folder records one (see :func:`render`)."""
        g, g_dir = load_generator(geometry, "geometry")
        if repair is not None:
            _check_repair_fits(g_dir)
        t, t_dir = load_generator(texture, "texture")
        r, r_dir = load_generator(refiner, "refiner") if refiner else (None, None)
        if sampling.get("tile") is None:
            sampling["tile"] = training_crop(t_dir)
        pipe = cls(g, t, r, repair, **sampling)
        pipe.sources = {"geometry": g_dir, "texture": t_dir}
        if r_dir is not None:
            pipe.sources["refiner"] = r_dir
        return pipe

    @classmethod
    def load(
        cls, folder: str | Path, repair: TreeRepair | None | bool = True, **sampling: Any
    ) -> SynthMedPipeline:
        """Load a folder written by :meth:`save`; ``repair`` True keeps the folder's own
        Stage I repair (if any), False / None turns it off, settings replace it.
        ``sampling``: :class:`SamplingOptions`; ``tile`` None keeps the folder's Stage II
        window (whole images in folders saved before it)."""
        folder = Path(folder)
        spec = read_json(folder / "pipeline.json")  # fails clearly if not one
        stages = spec.get("stages") if isinstance(spec, dict) else None
        if not isinstance(stages, dict) or not {"geometry", "texture"} <= set(stages):
            raise UserError(
                f"{folder / 'pipeline.json'}: 'stages' must name geometry and texture "
                "(not a pipeline folder written by synthmed)"
            )
        refiner = folder / "refiner" if "refiner" in stages else None
        if repair is True:
            saved = spec.get("tree_repair")  # absent from folders saved before it existed
            repair = (
                None if saved is None else TreeRepair.from_dict(saved, folder / "pipeline.json")
            )
        if sampling.get("tile") is None:
            sampling["tile"] = spec.get("texture_tile", 0)
        geometry, texture = folder / "geometry", folder / "texture"
        return cls.from_folders(geometry, texture, refiner, repair or None, **sampling)

    def _stages(self) -> dict[str, torch.nn.Module]:
        nets = {"geometry": self.geometry, "refiner": self.refiner, "texture": self.texture}
        return {name: net for name, net in nets.items() if net is not None}

    def save(self, folder: str | Path) -> None:
        """Write ``geometry/``, ``texture/`` (``refiner/``) and ``pipeline.json``, atomically."""
        folder = Path(folder)
        for name, net in self._stages().items():
            record = provenance.trained_on(self.sources.get(name))
            save_component(folder / name, net.cfg, net, name)
            if record is not None:
                path = folder / name / provenance.PROVENANCE_FILE
                write_json(path, {"trained_on": record})
        spec = {
            "version": __version__,
            "stages": self.describe(),
            "tree_repair": self.repair_spec,
            "texture_tile": self.tile,
        }
        write_json(folder / "pipeline.json", spec)
        self.sources = {name: folder / name for name in self._stages()}

    @property
    def repair_spec(self) -> dict | None:
        """The Stage I repair's settings as saved in pipeline.json and manifests (None: off)."""
        return None if self.repair is None else asdict(self.repair)

    def describe(self) -> dict[str, dict]:
        """Config and weight hash of each stage (for manifests and dataset cards)."""
        stages = self._stages().items()
        return {name: _describe(net, self.sources.get(name)) for name, net in stages}

    def __call__(self, n: int, seed: int = 0) -> Samples:
        """``pipe(n, seed=...)``: the same as :meth:`sample` (diffusers' calling convention)."""
        return self.sample(n, seed)

    @torch.inference_mode()
    def sample(self, n: int, seed: int = 0) -> Samples:
        """Generate ``n`` (mask, image) pairs; the same seed gives the same pairs."""

        def pairs(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            with autocast(self.device, self.dtype):
                m, fov = self.masks(z)
                style = self.texture.random_style(len(z), self.device)
                return m, fov, render(self.texture, condition(m, fov), style, self.tile).float()

        return _sample(pairs, n, seed, self.geometry.cfg.z_dim, self.device)

    def masks(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage I: latents (N, z_dim) -> vessel masks and fields of view, (N, 1, R, R) bool."""
        g = self.geometry
        if self.refiner is None:
            m = g.binary_masks(z, self._edge)
            fov = (g.fov > 0.5).expand_as(m)
            return self._repaired(m, fov), fov
        coarse = coarse_masks(g, z)
        side = self.refiner.cfg.resolution
        fov = (self.refiner.fov > 0.5).expand(len(z), 1, side, side)
        masks = (self.refiner(refiner_condition(coarse, fov)) > self._edge) & fov
        return self._repaired(masks, fov), fov

    @property
    def _edge(self) -> float:
        """Stage I's output level (tanh) taken as the vessel edge: 0, or the repair's."""
        return 0.0 if self.repair is None else self.repair.edge

    def _repaired(self, masks: torch.Tensor, fov: torch.Tensor) -> torch.Tensor:
        """Stage I's masks after the tree repair (on the CPU: it is scipy), if one is set."""
        if self.repair is None:
            return masks
        fixed = repair_trees(masks[:, 0].cpu().numpy(), fov[:, 0].cpu().numpy(), self.repair)
        return torch.from_numpy(fixed)[:, None].to(masks.device)


def _check_stages(
    geometry: MaskGenerator, texture: UNetGenerator, refiner: UNetGenerator | None
) -> int:
    """The side of Stage I's masks if the stages fit together, else a UserError saying why."""
    g, t = geometry.cfg, texture.cfg
    if t.in_channels != 2:
        raise UserError(f"texture model expects {t.in_channels} condition channels, not 2")
    side = g.resolution
    if refiner is not None:
        if refiner.cfg.coarse != g.resolution:
            raise UserError(
                f"the refiner sharpens {refiner.cfg.coarse} px masks but the geometry "
                f"model makes {g.resolution} px ones"
            )
        if coarse_encoding(refiner.cfg) != coarse_encoding(g):
            raise UserError(
                f"the refiner reads {coarse_encoding(refiner.cfg)} coarse masks but the "
                f"geometry model makes {coarse_encoding(g)} ones"
            )
        side = refiner.cfg.resolution
    elif g.resolution < t.resolution:
        # Stage II would run below the size it learnt; with a coarse (soft-mask) geometry
        # run, which is what this almost always is, the refiner was forgotten.
        raise UserError(
            f"Stage I makes {g.resolution} px masks but Stage II learnt {t.resolution} px "
            "images; a coarse geometry run (train geometry --resolution) needs its refiner "
            "(--refiner)"
        )
    for net in (texture, refiner):
        if net is not None and side % 2 ** net.cfg.levels():
            raise UserError(
                f"Stage I resolution {side} does not fit a U-Net of {net.cfg.levels()} "
                f"levels (needs a multiple of {2 ** net.cfg.levels()})"
            )
    return side


class SingleGANPipeline(TrainedModel):
    """The paper's baseline: one DCGAN emitting image and mask together (``train single``).

    Same ``load`` / ``pipe(n, seed=...)`` / ``describe`` interface as
    :class:`SynthMedPipeline`, so ``generate`` and the evaluation treat both alike.
    """

    def __init__(self, generator: MaskGenerator, **sampling: Any):
        """``sampling``: :class:`SamplingOptions`; only ``device`` applies (the single GAN
        samples in float32 and has no Stage II to make stochastic or tile)."""
        opts = SamplingOptions(**sampling)
        if opts.stochastic:
            raise UserError("--stochastic: the single GAN has no Stage II dropout")
        if opts.tile:
            raise UserError("--tile: the single GAN has no Stage II")
        self.device = pick_device(opts.device)
        self.generator = generator.to(self.device).eval()
        self.source: Path | None = None

    @classmethod
    def load(cls, folder: str | Path, **sampling: Any) -> SingleGANPipeline:
        """Load a ``synthmed train single`` run folder (or its ``generator/``)."""
        g, g_dir = load_generator(folder, "single")
        pipe = cls(g, **sampling)
        pipe.source = g_dir
        return pipe

    @property
    def resolution(self) -> int:
        """Side of the generated pairs."""
        return self.generator.cfg.resolution

    @property
    def channels(self) -> int:
        return self.generator.cfg.channels - 1

    def describe(self) -> dict[str, dict]:
        """Config and weight hash of the single generator."""
        return {"single": _describe(self.generator, self.source)}

    def __call__(self, n: int, seed: int = 0) -> Samples:
        """``pipe(n, seed=...)``: the same as :meth:`sample` (diffusers' calling convention)."""
        return self.sample(n, seed)

    @torch.inference_mode()
    def sample(self, n: int, seed: int = 0) -> Samples:
        """Generate ``n`` (mask, image) pairs; the same seed gives the same pairs."""

        def pairs(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            m = self.generator.binary_masks(z)
            fov = (self.generator.fov > 0.5).expand_as(m)
            return m, fov, self.generator.sample(z)[:, :-1]

        return _sample(pairs, n, seed, self.generator.cfg.z_dim, self.device)


def _describe(net: torch.nn.Module, source: Path | None) -> dict:
    """A stage's entry in manifests: its config, and, when loaded from disk, its weights'
    hash and the content hashes of the images it trained on (``trained_on``)."""
    entry: dict = {"config": dict(vars(net.cfg))}
    if source is not None:
        entry["sha256"] = sha256_file(source / "model.safetensors")
        record = provenance.trained_on(source)
        if record is not None:  # absent for models trained before records were kept
            entry["trained_on"] = record
    return entry


def _sample(
    pairs: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    n: int,
    seed: int,
    z_dim: int,
    device: torch.device,
) -> Samples:
    """Draw z in chunks of CHUNK from ``seed``, map each chunk through ``pairs`` (z -> mask,
    fov, image in [-1, 1]) and collect uint8 arrays, black outside the field of view."""
    gen = torch.Generator().manual_seed(seed)
    masks, fovs, images = [], [], []
    for start in range(0, n, CHUNK):
        with seeded(seed * 7919 + start, device):  # style codes and dropout: from the seed
            m, fov, img = pairs(torch.randn(CHUNK, z_dim, generator=gen).to(device))
        img = ((img + 1) * 127.5).round().clamp(0, 255).to(torch.uint8) * fov
        keep = min(CHUNK, n - start)
        masks.append(m[:keep, 0].cpu().numpy())
        fovs.append(fov[:keep, 0].cpu().numpy())
        images.append(img[:keep].permute(0, 2, 3, 1).cpu().numpy())
    return Samples(np.concatenate(masks), np.concatenate(fovs), np.concatenate(images))


class TextureModel(TrainedModel):
    """Stage II alone: images for masks the user already has (``generate --masks``);
    ``model(masks, fov, seed=...)`` translates."""

    def __init__(self, texture: UNetGenerator, **sampling: Any):
        """``sampling``: :class:`SamplingOptions` (``tile`` None: whole images)."""
        opts = SamplingOptions(**sampling)
        self.device = pick_device(opts.device)
        self.dtype = pick_precision(opts.precision, self.device)
        self.texture = texture.to(self.device, memory_format=torch.channels_last).eval()
        self.stochastic = opts.stochastic  # decoder dropout on while translating
        sampling_dropout(self.texture, opts.stochastic)
        self.tile = opts.tile or 0  # checked against each batch's side in translate()
        self.source: Path | None = None

    @classmethod
    def load(cls, folder: str | Path, **sampling: Any) -> TextureModel:
        """Load a ``synthmed train texture`` run folder (or its ``generator/``);
        ``sampling``: :class:`SamplingOptions`, ``tile`` None is its training crop when the
        run folder records one (see :func:`render`)."""
        t, t_dir = load_generator(folder, "texture")
        if sampling.get("tile") is None:
            sampling["tile"] = training_crop(t_dir)
        model = cls(t, **sampling)
        model.source = t_dir
        return model

    @property
    def resolution(self) -> int:
        """Side of the images Stage II trained on (it translates any multiple of its unit)."""
        return self.texture.cfg.resolution

    @property
    def channels(self) -> int:
        return self.texture.cfg.out_channels

    def describe(self) -> dict[str, dict]:
        """Config and weight hash of the Stage II generator."""
        return {"texture": _describe(self.texture, self.source)}

    def __call__(self, masks: np.ndarray, fov: np.ndarray, seed: int = 0) -> np.ndarray:
        """``model(masks, fov, seed=...)``: the same as :meth:`translate`."""
        return self.translate(masks, fov, seed)

    @torch.inference_mode()
    def translate(self, masks: np.ndarray, fov: np.ndarray, seed: int = 0) -> np.ndarray:
        """Masks and fields of view (N, R, R) in {0, 1} -> images (N, R, R, C) uint8.

        R must be a multiple of 2**levels of the U-Net (it is fully convolutional). ``seed``
        matters only when :attr:`stochastic` (it seeds the dropout).
        """
        side, levels = masks.shape[-1], self.texture.cfg.levels()
        if masks.shape[-2] % 2**levels or side % 2**levels:
            raise UserError(
                f"masks of {masks.shape[-2]}x{side} px do not fit the U-Net of {levels} levels "
                f"(need multiples of {2**levels})"
            )
        tile = check_tile(self.tile, side, self.texture)
        out = []
        for start in range(0, len(masks), CHUNK):
            m = torch.from_numpy(masks[start : start + CHUNK])[:, None].to(self.device)
            f = torch.from_numpy(fov[start : start + CHUNK])[:, None].to(self.device)
            with seeded(seed * 7919 + start, self.device), autocast(self.device, self.dtype):
                style = self.texture.random_style(len(m), self.device)
                img = render(self.texture, condition(m, f), style, tile).float()
            img = ((img + 1) * 127.5).round().clamp(0, 255).to(torch.uint8) * f.bool()
            out.append(img.permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(out)


def load(path: str | Path, **sampling: Any) -> SynthMedPipeline | SingleGANPipeline | TextureModel:
    """Any trained model from its folder, whatever it is: a saved pipeline (``pipeline.json``),
    or a run (or component) folder of ``train single`` or ``train texture``.

    ``sampling``: the fields of :class:`SamplingOptions`. A geometry or refiner run alone is
    refused: it makes masks, not pairs (use :meth:`SynthMedPipeline.from_folders`).
    """
    path = Path(path)
    if (path / "pipeline.json").is_file():
        return SynthMedPipeline.load(path, **sampling)
    config = component_folder(path) / "config.json"
    spec = read_json(config) if config.is_file() else None
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind == "single":
        return SingleGANPipeline.load(path, **sampling)
    if kind == "texture":
        return TextureModel.load(path, **sampling)
    if kind in ("geometry", "refiner"):
        raise UserError(
            f"{path}: a {kind} run makes masks only; a pipeline needs Stage II as well "
            "(Pipeline.from_folders(geometry, texture), or generate --geometry --texture)"
        )
    raise UserError(f"{path}: not a pipeline, run or model folder written by synthmed")


def _check_repair_fits(component: Path) -> None:
    """Refuse the vessel-tree repair for a Stage I that learnt compact masks (cells, nuclei:
    its run's options.json ``mask_kind``, recorded from the prepared data); runs that record
    no kind (component folders, runs from before issue 32) pass."""
    options = component.parent / "options.json"
    record = read_json(options) if options.is_file() else {}
    if isinstance(record, dict) and record.get("mask_kind") == "compact":
        raise UserError(
            f"{component.parent}: Stage I learnt compact masks (options.json mask_kind); the "
            "tree repair mends vessel trees and would break them: generate without it"
        )
