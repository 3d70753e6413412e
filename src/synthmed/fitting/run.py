"""Carry out a ``fit``: read the data, time the machine, plan, train, generate, evaluate.

Each step leaves a mark that ``--resume`` trusts: the plan in ``plan.json`` (never made
again on resume, so a resumed run finishes the plan it started), the split in ``data/``,
a ``done`` file in each finished run folder (an unfinished one resumes from its
checkpoint), the generated folders (written atomically), ``report/metrics.json``.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthmed.data.prepared import PreparedDataset
from synthmed.data.profile import mask_kind_of
from synthmed.data.sources import detect_layout, prepare_source, save_split, split_holdout
from synthmed.errors import UserError
from synthmed.files import read_json, write_json
from synthmed.fitting.plan import DataSummary, Plan, StagePlan, make_plan, parse_duration


@dataclass
class DataOptions:
    """How ``fit`` reads the data: what the user may say that the files do not."""

    holdout: int | None = None  # pairs held out in name order (None: a fifth, at least 1)
    foreground: str | None = None  # white | black | auto (None: the layout's own)
    mask_kind: str = "auto"  # auto | vessel | compact

    def read(self, data: Path, res: int) -> PreparedDataset:
        """``data`` at ``res``: a prepared folder as it is, any other layout prepared."""
        kind = detect_layout(data)
        if kind == "prepared":
            return PreparedDataset.load(data)
        return prepare_source(kind, data, res, foreground=self.foreground)


TIMED_STEPS = 8  # steps run to time a stage; the first ones warm up and are not counted
COUNTED_STEPS = 5  # the last steps of a timing, whose median rate is the stage's
STEADY_SPREAD = 1.5  # slowest / fastest counted step above this: time once more
PROFILE_RES = 128  # masks are profiled at this size before the working size is known


def fit(
    data: str | Path,
    out: str | Path,
    *,
    reading: DataOptions | None = None,
    budget: str | int = "2h",
    resume: bool = False,
    device: str = "auto",
    max_steps: int | None = None,
    short_ok: bool = False,
) -> Path:
    """The whole pipeline on ``data`` (any layout ``synthmed prepare`` reads) into ``out``.

    ``reading`` (:class:`DataOptions`) says how many pairs to hold out (default: a fifth,
    at least 1, the last in name order) for the evaluation, the masks' polarity and kind;
    ``fit`` plans the run for ``budget`` (e.g. "1h", "30m") on this machine, prints
    the plan and writes it to ``out/plan.json``, then trains, generates and evaluates.
    ``max_steps`` caps every network's steps (a quick look, or a smoke test); ``short_ok``
    trains at the smallest size even when a stage gets fewer than its minimum steps (the
    demo: it must finish on a busy machine), where otherwise the budget is refused. Returns
    ``out``; the report is ``out/report/report.html``.
    """
    out = Path(out)
    started = time.perf_counter()
    if (out / "plan.json").is_file():
        if not resume:
            raise UserError(f"{out}: holds a fit run; add --resume to continue it")
        plan = _read_plan(out / "plan.json")
        _say(f"resuming the plan in {out / 'plan.json'}")
    else:
        # What a run killed before its plan was written leaves (made again from scratch).
        leftovers = {"timing", "data"}
        if out.exists() and any(p.name not in leftovers for p in out.iterdir()):
            raise UserError(f"{out}: exists and is not empty; choose a new --out")
        budget_s = parse_duration(budget) if isinstance(budget, str) else int(budget)
        reading = reading or DataOptions()
        limits = (max_steps, short_ok)
        plan = _make_plan(Path(data), out, reading, budget_s, device, started, limits)
    _execute(plan, out, device)
    _say(f"done: {out / 'report' / 'report.html'}")
    return out


def _make_plan(
    data: Path,
    out: Path,
    reading: DataOptions,
    budget_s: int,
    device: str,
    started: float,
    limits: tuple[int | None, bool],
) -> Plan:
    """Read and split the data, time each stage, plan; write the split and plan.json."""
    probe = reading.read(data, PROFILE_RES)
    held = reading.holdout if reading.holdout is not None else max(1, len(probe) // 5)
    train, _ = split_holdout(probe, held)
    kind = mask_kind_of(train, reading.mask_kind)
    summary = DataSummary(
        count=len(train),
        holdout=held,
        native_side=_native_side(probe),
        channels=probe.channels,
        mask_kind=kind["kind"],
        mask_figures=dict(kind.get("figures", {})),
    )
    prepared = detect_layout(data) == "prepared"
    if prepared:  # a prepared folder has one size: plan at it
        summary.native_side = probe.resolution
    _say(
        f"data: {len(probe)} pairs ({summary.count} to train on, {held} held out), "
        f"{summary.channels} channel(s), short side {summary.native_side} px, "
        f"{kind['kind']} masks ({kind.get('reason') or kind.get('source')})"
    )
    timer = _Timer(data, out / "timing", reading, held, device, probe if prepared else None)
    spent = time.perf_counter() - started
    plan = make_plan(summary, budget_s, spent, timer, *limits)
    shutil.rmtree(out / "timing", ignore_errors=True)
    _print_plan(plan)
    source = probe if prepared else reading.read(data, plan.resolution)
    source.meta["mask_kind"] = kind  # the evaluation and Stage I read the kind the plan used
    train, held_out = split_holdout(source, held)
    save_split({"train": train, "holdout": held_out}, out / "data")
    write_json(out / "plan.json", plan.to_json() | {"source": str(data)})
    _add_time(out, "read and plan", time.perf_counter() - started)
    return plan


class _Timer:
    """Seconds per training step of a stage on this machine: a few real steps, timed."""

    def __init__(
        self,
        data: Path,
        folder: Path,
        reading: DataOptions,
        holdout: int,
        device: str,
        fixed: PreparedDataset | None,
    ):
        self.data, self.folder, self.holdout, self.device = data, folder, holdout, device
        self.reading = reading
        self.cache: dict[int, PreparedDataset] = {}
        self.fixed = fixed

    def train_set(self, res: int) -> PreparedDataset:
        if self.fixed is not None:
            return split_holdout(self.fixed, self.holdout)[0]
        if res not in self.cache:
            self.cache[res] = split_holdout(self.reading.read(self.data, res), self.holdout)[0]
        return self.cache[res]

    def __call__(self, stage: str, preset: str, options: dict[str, Any], res: int) -> float:
        """The median seconds per step of a few real steps (timed twice when they vary)."""
        if stage == "segmenter":
            return self.segmenter(res)
        rates = self.rates(stage, preset, options, res)
        if max(rates) > STEADY_SPREAD * min(rates):  # another job shared the cores: again
            rates += self.rates(stage, preset, options, res)
        seconds = statistics.median(rates)
        _say(f"  timed {stage} at {res} px: {seconds:.2f} s per step")
        return seconds

    def rates(self, stage: str, preset: str, options: dict[str, Any], res: int) -> list[float]:
        """Seconds of each counted step of ``TIMED_STEPS`` real training steps."""
        from synthmed.training.api import train

        run = self.folder / f"{stage}-{res}"
        shutil.rmtree(run, ignore_errors=True)
        extra: dict[str, Any] = {}
        if stage == "refiner":
            extra["adapt_geometry"] = str(self.folder / f"geometry-{res}")  # options.json holds it
        quiet = {"log_every": 1, "grid_every": 10**6, "checkpoint_every": 10**6}
        train(
            stage,
            self.train_set(res),
            run,
            preset,
            steps=TIMED_STEPS,
            device=self.device,
            **quiet,
            **options,
            **extra,
        )
        rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
        batch = rows[-1]["images"] / rows[-1]["step"]
        return [batch / r["images_per_s"] for r in rows[-COUNTED_STEPS:]]

    def segmenter(self, res: int) -> float:
        from synthmed.models.segmenter import budget_recipe, train_segmenter

        data = self.train_set(res)
        steps = 10
        t0 = time.perf_counter()
        train_segmenter(
            [data], budget_recipe(steps, data.resolution), device=self.device, progress=False
        )
        seconds = (time.perf_counter() - t0) / steps
        _say(f"  timed the segmenter at {data.resolution} px: {seconds:.3f} s per step")
        return seconds


def _execute(plan: Plan, out: Path, device: str) -> None:
    """Train every stage of the plan, generate, evaluate; skip what is already done."""
    train_set = out / "data" / "train"
    for name, stage in plan.stages.items():
        with _timed(out, name):
            _train(stage, train_set, out / "runs" / name, device, out)
    with _timed(out, "generate"):
        _generate(plan, out, device)
    if not (out / "report" / "metrics.json").is_file():
        with _timed(out, "evaluate"):
            _evaluate(plan, out, device)


@contextmanager
def _timed(out: Path, step: str) -> Iterator[None]:
    """Add the wall-clock seconds of ``step`` to ``RUN/times.json`` (beside the plan's
    expected times; a resumed step adds up over its sessions)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:  # an interrupted step's time counts too (not a SIGKILL's)
        _add_time(out, step, time.perf_counter() - t0)


def _add_time(out: Path, step: str, seconds: float) -> None:
    """Add ``seconds`` to ``step`` and to the run's total in ``RUN/times.json``."""
    path = out / "times.json"
    times = read_json(path) if path.is_file() else {}
    for key in (step, "total"):
        times[key] = round(times.get(key, 0.0) + seconds, 1)
    write_json(path, times)


def _train(stage: StagePlan, data: Path, run: Path, device: str, out: Path) -> None:
    """One planned training run: skipped when finished, resumed when interrupted."""
    from synthmed.training.api import train

    if (run / "done").is_file():
        return
    resume = (run / "checkpoint.safetensors").is_file()
    options = dict(stage.options)
    if stage.stage == "refiner":
        options["adapt_geometry"] = str(out / "runs" / "geometry")
    _say(f"[{stage.stage}] {stage.steps} steps (about {stage.expected_s / 60:.0f} min)")
    if resume:  # a resumed run keeps its own options; only the total steps and device
        train(stage.stage, data, run, stage.preset, True, steps=stage.steps, device=device)
    else:
        shutil.rmtree(run, ignore_errors=True)  # a run killed before its first checkpoint
        train(stage.stage, data, run, stage.preset, steps=stage.steps, device=device, **options)
    (run / "done").write_text("finished\n")


def _generate(plan: Plan, out: Path, device: str) -> None:
    """The synthetic set (and the baseline's), unless already written."""
    from synthmed.generation import generate
    from synthmed.models.tree_repair import TreeRepair
    from synthmed.pipeline import SynthMedPipeline

    runs = out / "runs"
    if not (out / "synthetic").is_dir():
        repair = TreeRepair() if plan.data.mask_kind == "vessel" else None
        refiner = runs / "refiner" if "refiner" in plan.stages else None
        pipe = SynthMedPipeline.from_folders(
            runs / "geometry", runs / "texture", refiner, repair, device=device
        )
        pipe.save(out / "pipeline")
        _say(f"[generate] {plan.synthetic_pairs} pairs")
        generate(pipe, out / "synthetic", plan.synthetic_pairs, command="synthmed fit")
    if "single" in plan.stages and not (out / "synthetic-single").is_dir():
        generate(runs / "single", out / "synthetic-single", plan.synthetic_pairs, device=device)


def _evaluate(plan: Plan, out: Path, device: str) -> None:
    """Utility, fidelity and samples of the synthetic set(s) against the held-out pairs."""
    from synthmed.evaluation.api import FidelitySettings, ReportOptions, evaluate
    from synthmed.evaluation.utility import UtilitySettings

    sets = {"dual GAN": out / "synthetic"}
    if (out / "synthetic-single").is_dir():
        sets["single GAN"] = out / "synthetic-single"
    utility = UtilitySettings(plan.segmenter_steps, seeds=plan.seeds, device=device)
    runs = {name: out / "runs" / name for name in plan.stages}
    _say(f"[evaluate] {len(sets)} set(s), segmenters of {plan.segmenter_steps} steps")
    evaluate(
        sets,
        out / "data" / "train",
        out / "data" / "holdout",
        utility=utility,
        fidelity=FidelitySettings(**_fidelity_steps(plan), device=device),
        res=plan.resolution,
        out=out / "report",
        report=ReportOptions(runs=runs, command="synthmed fit"),
    )


def _fidelity_steps(plan: Plan) -> dict[str, int]:
    """The feature encoder's and the mask critic's steps: their defaults unless capped."""
    if not plan.max_steps:
        return {}
    return {"extractor_steps": plan.max_steps, "critic_steps": plan.max_steps}


def _native_side(data: PreparedDataset) -> int:
    """The smallest image's short side (the field of view's), in native pixels."""
    sides = [min(t["crop"][2:]) for t in data.meta.get("transforms", []) if "crop" in t]
    return min(sides) if sides else data.resolution


def _read_plan(path: Path) -> Plan:
    """``plan.json`` back into a :class:`Plan` (resume finishes the plan it started)."""
    raw = read_json(path)
    try:
        raw.pop("source", None)
        raw["data"] = DataSummary(**raw["data"])
        raw["stages"] = {k: StagePlan(**v) for k, v in raw["stages"].items()}
        raw["seeds"] = tuple(raw["seeds"])
        return Plan(**raw)
    except (KeyError, TypeError) as e:
        raise UserError(f"{path}: not a plan written by synthmed fit ({e})") from None


def _print_plan(plan: Plan) -> None:
    """The plan as a person reads it: one line per stage, then the choices behind it."""
    _say(f"plan for a budget of {plan.budget_s / 60:.0f} min at {plan.resolution} px:")
    for s in plan.stages.values():
        _say(
            f"  {s.stage:9s} {s.steps:6d} steps x {s.seconds_per_step:.2f} s = "
            f"{s.expected_s / 60:5.1f} min  ({s.preset} + {s.options})"
        )
    _say(f"  evaluation: segmenters of {plan.segmenter_steps} steps, seeds {list(plan.seeds)}")
    _say(f"  expected in all: {plan.expected_s / 60:.0f} min")
    for why in plan.choices:
        _say(f"  - {why}")


def _say(text: str) -> None:
    print(f"fit: {text}", file=sys.stderr, flush=True)
