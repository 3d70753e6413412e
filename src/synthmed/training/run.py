"""The run driver shared by both stages: resume, progress, stats, grids, checkpoints.

A run folder (after stylegan2-ada's convention) holds ``options.json``, ``stats.jsonl``
(one JSON object per logged step), ``reals.png``, ``grids/fakesNNNNNN.png``,
``checkpoint.safetensors`` (everything needed to resume exactly) and ``generator/``
(the trained generator as ``config.json`` + ``model.safetensors``, what ``generate`` loads,
and ``provenance.json``: the content hashes of the images it trained on).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from synthmed import __version__
from synthmed.checkpoints import load_checkpoint, save_checkpoint, save_component
from synthmed.data.provenance import PROVENANCE_FILE
from synthmed.errors import UserError
from synthmed.files import atomic_write, read_json, write_json
from synthmed.grids import save_png
from synthmed.training.options import TrainOptions

CHECKPOINT = "checkpoint.safetensors"


@dataclass
class Stage:
    """What differs between the stages; everything else is in :func:`run_training`."""

    kind: str  # "geometry" or "texture": names the generator's config kind
    config: Any  # the networks' config dataclass
    modules: dict[str, nn.Module]  # must contain "G" (saved as the generator) and "D"
    optimizers: dict[str, torch.optim.Optimizer]
    train_step: Callable[[torch.Generator, int], dict[str, float]]  # (rng, step) -> losses
    fakes_sheet: Callable[[], np.ndarray]  # grid of samples from fixed inputs
    reals_sheet: np.ndarray  # grid of training examples, saved once
    exported: nn.Module | None = None  # what generate uses; default modules["G"] (EMA: its average)
    # Called with the step before a checkpoint and export: e.g. fit what sampling needs.
    before_export: Callable[[int], None] | None = None


def check_run_folder(out: Path, resume: bool) -> None:
    """Refuse to overwrite a run by accident, or to resume a run that never saved."""
    has_ckpt = (out / CHECKPOINT).is_file()
    if resume and not has_ckpt:
        raise UserError(f"{out / CHECKPOINT}: no checkpoint to resume from")
    if not resume and has_ckpt:
        raise UserError(f"{out}: already holds a run; pass --resume or choose another --out")


def resumed_options(out: Path) -> dict[str, Any]:
    """The options a run was started with (to rebuild the same networks on --resume)."""
    return read_json(out / "options.json")


def _check_same_data(out: Path, trained_on: dict[str, Any] | None) -> None:
    """Refuse to resume a run on other images than it started with: its provenance record
    (and every evaluation that trusts it) would then be wrong."""
    before = read_json(out / "options.json").get("trained_on")
    if trained_on and before and before.get("digest") != trained_on.get("digest"):
        raise UserError(
            f"{out}: started on {before.get('source')} ({before.get('count')} pairs, digest "
            f"{str(before.get('digest'))[:12]}), resumed on other data (digest "
            f"{str(trained_on.get('digest'))[:12]}); resume on the same --data"
        )


def _start(
    stage: Stage, opts: TrainOptions, out: Path, resume: bool, extra: dict[str, Any]
) -> tuple[int, torch.Generator]:
    """Open the run folder: restore a checkpoint (weights, optimisers, random streams; the
    step it reached) or record a new run's options and real samples. Returns the step to
    continue after and the data stream."""
    out.mkdir(parents=True, exist_ok=True)
    check_run_folder(out, resume)
    data_rng = torch.Generator().manual_seed(opts.seed + 1)
    if not resume:
        record = {"kind": stage.kind, "version": __version__, "train": dataclasses.asdict(opts)}
        record["model"] = dataclasses.asdict(stage.config)
        write_json(out / "options.json", record | extra)
        save_png(stage.reals_sheet, out / "reals.png")
        return 0, data_rng
    _check_same_data(out, extra.get("trained_on"))
    rng, state = load_checkpoint(out / CHECKPOINT, stage.modules, stage.optimizers)
    torch.set_rng_state(rng["torch"])
    data_rng.set_state(rng["data"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    start = int(state["step"])
    _truncate_stats(out / "stats.jsonl", start)
    return start, data_rng


def _log(stats: Any, bar: tqdm, step: int, batch: int, losses: dict, since: tuple) -> tuple:
    """One stats.jsonl line (losses, images/s since the last line) and the bar's losses;
    returns the new (time, step) to measure the next rate from."""
    now = time.perf_counter()
    ips = (step - since[1]) * batch / max(now - since[0], 1e-9)
    bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
    row = {"step": step, "images": step * batch, "images_per_s": ips}
    stats.write(json.dumps(row | losses) + "\n")
    stats.flush()
    return now, step


def run_training(
    stage: Stage, opts: TrainOptions, out: Path, resume: bool, extra: dict[str, Any]
) -> Path:
    """Train ``stage`` until ``opts.steps``, resuming from ``out`` when asked.

    Args:
        stage: networks, optimisers and the step function of one stage.
        opts: loop options; ``opts.steps`` is the total, also when resuming.
        out: run folder.
        resume: continue from ``out/checkpoint.safetensors`` exactly where it stopped.
        extra: recorded in ``options.json`` (data source, resolution, ...).
    Returns:
        The folder of the trained generator (``out/generator``).
    """
    start, data_rng = _start(stage, opts, out, resume, extra)

    def prepare_export(step: int) -> None:
        if stage.before_export is not None:
            stage.before_export(step)

    def save_generator() -> None:
        exported = stage.exported if stage.exported is not None else stage.modules["G"]
        save_component(out / "generator", stage.config, exported, stage.kind)
        if "trained_on" in extra:  # which images trained it travels with the weights
            write_json(out / "generator" / PROVENANCE_FILE, {"trained_on": extra["trained_on"]})

    if start >= opts.steps:
        # Exported again: a finished run saved by an earlier version gains what this one
        # adds at export time (Stage II's fitted style prior); the checkpoint is untouched.
        prepare_export(start)
        save_generator()
        print(f"{out}: already trained for {start} steps (--steps {opts.steps}); re-exported")
        return out / "generator"

    def checkpoint(step: int) -> None:
        rng = {"torch": torch.get_rng_state(), "data": data_rng.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state()
        prepare_export(step)  # first, so that the checkpoint and the generator agree
        save_checkpoint(out / CHECKPOINT, stage.modules, stage.optimizers, rng, {"step": step})
        save_generator()

    total, done = opts.steps * opts.batch_size, start * opts.batch_size
    desc = f"train {stage.kind}"
    bar = tqdm(total=total, initial=done, unit="img", desc=desc, dynamic_ncols=True)
    since = (time.perf_counter(), start)
    with bar, open(out / "stats.jsonl", "a") as stats:
        for step in range(start + 1, opts.steps + 1):
            losses = stage.train_step(data_rng, step)
            bar.update(opts.batch_size)
            last = step == opts.steps
            if step % opts.log_every == 0 or last:
                since = _log(stats, bar, step, opts.batch_size, losses, since)
            if step % opts.grid_every == 0 or last:
                save_png(stage.fakes_sheet(), out / "grids" / f"fakes{step:06d}.png")
            if step % opts.checkpoint_every == 0 or last:
                checkpoint(step)
    return out / "generator"


def _truncate_stats(path: Path, step: int) -> None:
    """Drop stats a killed run logged after its last checkpoint (they will be redone)."""
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
    text = "".join(ln + "\n" for ln in keep)
    atomic_write(path, lambda p: p.write_text(text))


def adam(module: nn.Module, opts: TrainOptions) -> torch.optim.Adam:
    """Adam with the DCGAN / pix2pix hyper-parameters (lr 2e-4, beta1 0.5).

    The fused implementation: on CPU the per-parameter update of pix2pix's 54 M weights
    otherwise takes a fifth of a training step.
    """
    return torch.optim.Adam(module.parameters(), lr=opts.lr, betas=(opts.beta1, 0.999), fused=True)


def weight_average(G: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``G``'s weights (None when ``decay`` is 0).

    Update it after every generator step; sample from ``.module``. Averaged weights give
    smoother, more stable samples than the last iterate of a GAN (Yazici et al. 2019).
    """
    if not 0 <= decay < 1:
        raise UserError(f"--ema {decay}: must be in [0, 1)")
    if decay == 0:
        return None
    return AveragedModel(G, multi_avg_fn=_ema_with_warmup(decay), use_buffers=True)


def _ema_with_warmup(decay: float) -> Callable[[list, list, torch.Tensor], None]:
    """EMA whose decay after n updates is min(decay, (1 + n) / (10 + n)) (the warm-up of
    TensorFlow's ExponentialMovingAverage). With a fixed 0.999 the first step's (nearly
    random) weights still weigh 0.999^1500 = 22 % after 1500 steps: measured, the refiner's
    averaged weights drew vessels 46 % too wide where its last iterate drew them 19 % too
    wide. With the warm-up they weigh nothing; long runs end at ``decay`` all the same."""

    @torch.no_grad()
    def update(ema: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        d = min(decay, (1 + float(n)) / (10 + float(n)))
        if torch.is_floating_point(ema[0]):
            torch._foreach_lerp_(ema, current, 1 - d)
        else:  # integer buffers: no lerp kernel
            for e, c in zip(ema, current, strict=True):
                e.copy_(e * d + c * (1 - d))

    return update


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Flip each item of a batch horizontally with probability 1/2 (batched, on tensors)."""
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    return torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
