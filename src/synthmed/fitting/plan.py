"""The plan of a ``fit`` run: resolution, each stage's options, steps and expected time.

Pure functions of what was measured (the data's profile, the seconds per training step of
each stage on this machine) and the budget, so that the plan is testable without training
and the same inputs give the same plan. Why each number is what it is goes into
``plan.json`` as a sentence (``choices``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from synthmed.errors import UserError
from synthmed.training.augment import MICROSCOPY

PLAN_VERSION = 1
# Shares of the training time (what is left of the budget after preparing, timing,
# generating and evaluating). Stage II sets what the images look like and is the slowest
# per step, so it gets the most; Stage I's DCGAN converges on layouts sooner.
# With a refiner, Stage I's DCGAN works on 128 px distance maps (cheap per step) while the
# refiner's step at 512 px costs about twice Stage I's on a CPU (docs/fit.md, DRIVE timings),
# so the refiner's share is set to give it its minimum steps whenever Stage I gets its own.
SHARES = {
    "with refiner": {"geometry": 0.25, "refiner": 0.20, "texture": 0.55},
    "plain": {"geometry": 0.35, "texture": 0.65},
}
SINGLE_SHARE = 0.10  # the single-GAN baseline, when the budget allows it
SINGLE_FROM_SECONDS = 90 * 60  # budgets from here on train the baseline too
EVALUATION_SHARE = 0.25  # of the budget: segmenters (3 or 5 arms x seeds), fidelity, report
GENERATION_SHARE = 0.03
# Kept in reserve: step times timed over a few steps vary by several percent, and a plan that
# fills the budget exactly overruns it about half the time.
RESERVE_SHARE = 0.06
# A whole run's step is slower than a timed one (sample grids, checkpoints, the data's epoch
# turns): BU-BIL's 1 h run took 1.34 s per Stage I step timed at 1.26, 0.352 s per Stage II
# step timed at 0.31 (docs/fit.md).
RUN_OVERHEAD = 1.10
# The refiner is trained supervised (L1 + Dice + clDice on real mask crops) besides its
# unpaired term, so it needs fewer steps than the GANs; 200 is a floor chosen, not measured
# (drive512 trains it 1,500 steps).
MIN_STEPS = {"geometry": 600, "refiner": 200, "texture": 800, "single": 300}
# The drive512 recipe's steps: fit never plans more (more did not help on DRIVE).
MAX_STEPS = {"geometry": 4000, "refiner": 1500, "texture": 9000, "single": 1000}
SYNTHETIC_PAIRS = 200
EVALUATION_SEEDS = (0, 1, 2, 3)  # the brief: small held-out sets are read over >= 4 seeds


def parse_duration(text: str) -> int:
    """``"1h"``, ``"90m"``, ``"1h30m"``, ``"45s"`` or plain seconds -> seconds (> 0)."""
    text = str(text).strip().lower()
    if text.isdigit():
        seconds = int(text)
    else:
        parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?:in)?)?(?:(\d+)s)?", text)
        if not parts or not any(parts.groups()):
            raise UserError(f"--budget {text!r}: give a duration such as 1h, 90m, 1h30m or 600s")
        h, m, s = (int(g or 0) for g in parts.groups())
        seconds = 3600 * h + 60 * m + s
    if seconds <= 0:
        raise UserError(f"--budget {text!r}: must be longer than zero")
    return seconds


@dataclass
class DataSummary:
    """What ``fit`` read from the data before planning."""

    count: int  # training pairs (after the hold-out)
    holdout: int
    native_side: int  # the smaller side of the smallest image, in pixels
    channels: int
    mask_kind: str  # "vessel" (thin branching) or "compact" (blob-like objects)
    mask_figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class StagePlan:
    """One training run of the plan: its ``synthmed.train`` options and expected time."""

    stage: str
    preset: str
    options: dict[str, Any]
    seconds_per_step: float
    steps: int
    expected_s: float


@dataclass
class Plan:
    """Everything ``fit`` will do, written to ``RUN/plan.json`` before it starts."""

    budget_s: int
    resolution: int
    data: DataSummary
    stages: dict[str, StagePlan]
    segmenter_steps: int
    seeds: tuple[int, ...]
    max_steps: int | None
    synthetic_pairs: int
    expected_s: float
    choices: list[str]
    version: int = PLAN_VERSION

    def to_json(self) -> dict[str, Any]:
        """The plan as ``plan.json`` holds it."""
        return asdict(self)


def candidate_resolutions(summary: DataSummary) -> list[int]:
    """Working resolutions worth trying, largest first: vessel trees need pixels for their
    thinnest branches (up to 512); compact objects keep their shape at 256.

    Vessel data of 256 px or more is never planned below 256 px, where Stage I would draw
    the masks without distance maps and a refiner: on DRIVE at 128 px such a Stage I drew
    speckle, not trees, after 661 steps (docs/fit.md), so a budget too short for the refiner
    layout is refused rather than spent on that.
    """
    top = 512 if summary.mask_kind == "vessel" else 256
    side = 2 ** int(math.log2(max(summary.native_side, 32)))
    sizes = [r for r in (512, 256, 128, 64, 32) if r <= min(top, side)] or [32]
    if summary.mask_kind == "vessel" and side >= 256:
        sizes = [r for r in sizes if r >= 256]
    return sizes


def stage_options(summary: DataSummary, res: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each stage's (preset, options) at working resolution ``res``, before steps are set.

    Vessel masks follow the drive512 recipe: Stage I at 128 px as distance maps, a refiner
    to full size (it mends thin branches), Stage II on 256 px crops. Compact objects need
    no refiner: Stage I draws them at the working size, up to 256 px, where a blob's outline
    is still smooth; Stage II sees whole images.
    """
    if summary.mask_kind == "vessel":
        # At or below 128 px Stage I draws the masks themselves: no distance maps.
        plain = {"resolution": res, "coarse_kind": "soft", "coarse_clip": 8.0}
        geometry = {"resolution": 128} if res > 128 else plain
        stages = {"geometry": ("drive512", geometry)}
        if res > 128:
            stages["refiner"] = ("drive512", {"crop": min(256, res)})
        texture: dict[str, Any] = {"crop": min(256, res) if res > 256 else 0}
        if res < 64:  # drive512's second discriminator scale would be too small to judge
            texture["num_d"] = 1
        stages["texture"] = ("drive512", texture)
        stages["single"] = ("drive512", {"resolution": min(res, 128)})
        return stages
    # Microscopy has no up or left: every training pair in any of the square's 8 orientations
    # (dihedral), brightness and contrast for the discriminator; no colour jitter on
    # grayscale (a hue shift on one channel is meaningless).
    colour = ",color" if summary.channels == 3 else ""
    masks = "translation,cutout"
    return {
        "geometry": ("default", {"resolution": res, "augment": f"dihedral,{masks}", "ema": 0.999}),
        "texture": ("default", {"augment": f"{MICROSCOPY},translation{colour}", "ema": 0.999}),
        "single": ("default", {"resolution": min(res, 128), "ema": 0.999}),
    }


def make_plan(
    summary: DataSummary,
    budget_s: int,
    spent_s: float,
    timing: Callable[[str, str, dict[str, Any], int], float],
    max_steps: int | None = None,
    short_ok: bool = False,
) -> Plan:
    """The largest resolution at which every stage gets its minimum steps in the budget.

    ``timing(stage, preset, options, res)`` returns seconds per step at working resolution
    ``res`` (the caller times a few real steps, or a test passes a formula; stage
    "segmenter" is one step of the evaluation's segmenter); ``spent_s`` is what preparing and timing
    already took. Steps are the share of the training time over the step time, capped at
    the drive512 recipe's, or at ``max_steps`` (a quick look or a smoke test: it also caps
    the evaluation's networks, and the minimum steps no longer apply).
    """
    choices: list[str] = []
    evaluation_s = EVALUATION_SHARE * budget_s
    generation_s = GENERATION_SHARE * budget_s
    train_s = budget_s * (1 - RESERVE_SHARE) - spent_s - evaluation_s - generation_s
    with_single = budget_s >= SINGLE_FROM_SECONDS
    for res in candidate_resolutions(summary):
        stages = _stages_at(summary, res, train_s, with_single, timing, max_steps)
        floor = {k: min(v, max_steps or v) for k, v in MIN_STEPS.items()}
        short = [s for s in stages.values() if s.steps < floor[s.stage]]
        if not short or res == candidate_resolutions(summary)[-1]:
            break
        choices.append(
            f"{res} px: {short[0].stage} would get {short[0].steps} steps "
            f"(< {MIN_STEPS[short[0].stage]}) in the budget; trying a smaller size"
        )
    if short and short_ok:  # the demo, or --allow-short: a weaker model, not an error
        choices.append(
            f"{short[0].stage} gets {short[0].steps} steps, below its minimum "
            f"{MIN_STEPS[short[0].stage]}: the budget is short for this machine (allowed)"
        )
    elif short:
        raise UserError(
            f"--budget {budget_s // 60} min: too short for this machine even at {res} px "
            f"({short[0].stage} would get {short[0].steps} of its minimum "
            f"{MIN_STEPS[short[0].stage]} steps); give a longer --budget (or --allow-short)"
        )
    choices.insert(0, _kind_choice(summary, "refiner" in stages))
    choices.append(f"working resolution {res} px (data {summary.native_side} px on its short side)")
    if not with_single:
        choices.append(
            f"single-GAN baseline left out: budgets from {SINGLE_FROM_SECONDS // 60} min train it"
        )
    arms = 5 if with_single else 3
    segmenter_steps = _segmenter_steps(evaluation_s, timing("segmenter", "", {}, res), arms)
    if max_steps:
        segmenter_steps = min(segmenter_steps, max_steps)
        choices.append(f"every network capped at {max_steps} steps (--max-steps)")
    choices.append(
        f"segmenters: {segmenter_steps} steps x {len(EVALUATION_SEEDS)} seeds x {arms} arms "
        f"(about {EVALUATION_SHARE:.0%} of the budget for the evaluation)"
    )
    expected = spent_s + sum(s.expected_s for s in stages.values()) + generation_s + evaluation_s
    pairs = SYNTHETIC_PAIRS if not max_steps else min(SYNTHETIC_PAIRS, 4 * max_steps)
    return Plan(
        budget_s=budget_s,
        resolution=res,
        data=summary,
        stages=stages,
        segmenter_steps=segmenter_steps,
        seeds=EVALUATION_SEEDS,
        max_steps=max_steps,
        synthetic_pairs=pairs,
        expected_s=round(expected, 1),
        choices=choices,
    )


def _stages_at(
    summary: DataSummary,
    res: int,
    train_s: float,
    with_single: bool,
    timing: Callable[[str, str, dict[str, Any], int], float],
    max_steps: int | None,
) -> dict[str, StagePlan]:
    """Every stage's plan at ``res``: its share of ``train_s`` over its measured step time."""
    options = stage_options(summary, res)
    shares = dict(SHARES["with refiner" if "refiner" in options else "plain"])
    if with_single:
        shares = {k: v * (1 - SINGLE_SHARE) for k, v in shares.items()} | {"single": SINGLE_SHARE}
    plans = {}
    for stage, share in shares.items():
        preset, opts = options[stage]
        per_step = RUN_OVERHEAD * timing(stage, preset, opts, res)
        steps = min(MAX_STEPS[stage], max_steps or MAX_STEPS[stage])
        steps = min(steps, int(share * max(train_s, 0) / per_step))
        plans[stage] = StagePlan(stage, preset, opts, round(per_step, 4), steps, steps * per_step)
    return plans


def _segmenter_steps(evaluation_s: float, seconds_per_step: float, arms: int) -> int:
    """Segmenter steps so that ``arms`` x seeds take 70 % of the evaluation's time (the rest:
    fidelity and the report), between 200 and the "cpu" recipe's 3,000.

    The arms are real, synthetic and real + synthetic, and with the single GAN its two more:
    DRIVE's 2-hour run, planned for 3 arms, trained 5 and overran the evaluation's share by
    14 minutes (docs/fit.md).
    """
    runs = arms * len(EVALUATION_SEEDS)
    return int(min(3000, max(200, 0.7 * evaluation_s / seconds_per_step / runs)))


def _kind_choice(summary: DataSummary, refiner: bool) -> str:
    """Why Stage I is built as it is, in one sentence."""
    figures = _figures(summary.mask_figures)
    if summary.mask_kind == "compact":
        return (
            f"masks are compact objects ({figures}): Stage I at the working size, no refiner, "
            "no vessel statistics or tree repair"
        )
    how = "at 128 px as distance maps, a refiner to full size" if refiner else "at full size"
    return f"masks are vessel-like ({figures}): Stage I {how}, tree repair on (as drive512)"


def _figures(figures: dict[str, Any]) -> str:
    shown = [f"{k} {v:.3g}" for k, v in figures.items() if isinstance(v, int | float)]
    return ", ".join(shown[:4]) or "no figures"
