"""``synthmed evaluate utility | fidelity | all``: argument parsing and printing only."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthmed.errors import UserError
from synthmed.files import write_json

if TYPE_CHECKING:  # building the parser must not import the data and model stack
    from synthmed.evaluation.api import FidelitySettings
    from synthmed.evaluation.utility import UtilitySettings
    from synthmed.models.segmenter import SegmentationRecipe

# The arms of synthmed.evaluation.utility.ARMS, spelt out so that building the parser does
# not import torch and MONAI (tests/test_evaluate_cli.py checks that they agree).
ARMS = ("real", "synthetic", "real+synthetic")
MASK_KINDS = ("auto", "vessel", "compact")  # synthmed.data.profile.CHOICES


def _share(text: str) -> float:
    """--synthetic-share: checked while parsing, before minutes of feature training."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text}: need a fraction between 0 and 1 (exclusive)")
    return value


def _common_args(q: argparse.ArgumentParser) -> None:
    """The options every ``evaluate`` sub-command takes."""
    q.add_argument("--synthetic", required=True, help="generated folder (synthmed generate)")
    q.add_argument("--res", type=int, help="working resolution (default: the synthetic set's)")
    q.add_argument("--device", default="auto")
    q.add_argument("--out", help="folder for the JSON results (and the report for 'all')")
    q.add_argument(
        "--mask-kind",
        choices=MASK_KINDS,
        default="auto",
        help="vessel or compact masks: vessel statistics and per-width sensitivity, or "
        "object statistics (default auto: what the real training set's dataset.json "
        "records, else decided from its masks)",
    )


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``evaluate`` and its three sub-commands on the top-level parser."""
    p = sub.add_parser("evaluate", help="utility and fidelity of synthetic data; the report")
    kinds = p.add_subparsers(dest="evaluation", required=True)

    def utility_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--real-train", required=True, help="real training pairs (any layout)")
        q.add_argument("--real-test", required=True, help="held-out real pairs (any layout)")
        q.add_argument("--budget", default="cpu", help="smoke | cpu | full | number of steps")
        q.add_argument("--seeds", type=int, default=3, help="seeds per arm (default 3)")
        q.add_argument(
            "--real-subsets",
            nargs="+",
            type=int,
            default=[],
            metavar="K",
            help="also train on the first K real images, for each K: the real arm's learning "
            "curve (is the segmenter short of data at this budget?)",
        )
        q.add_argument(
            "--synthetic-share",
            type=_share,
            default=0.5,
            metavar="S",
            help="share of the real + synthetic arm's training patches drawn from the "
            "synthetic set (default 0.5: each set equally often)",
        )

    def fidelity_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--inception-weights", help="local InceptionV3 weights for FID/KID")
        q.add_argument(
            "--extractor-steps", type=int, default=300, help="steps of the domain extractor"
        )
        q.add_argument(
            "--critic-steps",
            type=int,
            default=300,
            metavar="N",
            help="steps of each fold's real-vs-synthetic mask critic (5 folds; 0: no critic)",
        )
        q.add_argument(
            "--extractor-data",
            metavar="PATH",
            help="real pairs of the same modality, disjoint from every compared set, to train "
            "the feature encoder on (default: procedural phantoms)",
        )

    q = kinds.add_parser("utility", help="segmenters trained on real / synthetic / both")
    _common_args(q)
    utility_args(q)
    q.add_argument(
        "--arms",
        nargs="+",
        default=list(ARMS),
        choices=ARMS,
        help="training sets to compare (default: all three)",
    )
    q = kinds.add_parser("fidelity", help="KL of histograms, vessel statistics, FID/KID/PRDC")
    _common_args(q)
    q.add_argument("--real", required=True, help="real pairs the generators learnt from")
    fidelity_args(q)
    q = kinds.add_parser("all", help="utility + fidelity + figures -> report.html, metrics.json")
    _common_args(q)
    utility_args(q)
    fidelity_args(q)
    q.add_argument("--baseline", help="a second generated folder (e.g. the single GAN)")
    q.add_argument("--baseline-name", default="single GAN", help="its name in the report")
    q.add_argument("--runs", nargs="*", default=[], help="NAME=RUN_DIR training runs for curves")
    q.add_argument(
        "--compare",
        nargs="*",
        default=[],
        help="NAME=DIR more generated sets, side by side on fidelity and samples (no utility)",
    )


def _load(path: str, res: int, resize: bool = False) -> Any:
    """A dataset at ``res`` (:func:`synthmed.evaluation.api.load_data`)."""
    from synthmed.evaluation.api import load_data

    return load_data(path, res, resize)


def fidelity_settings(args: argparse.Namespace) -> FidelitySettings:
    """The fidelity settings of ``evaluate fidelity`` / ``all`` from their flags
    (``--compare`` is given separately, parsed by :func:`_named_folders`)."""
    from synthmed.evaluation.api import FidelitySettings

    return FidelitySettings(
        inception_weights=args.inception_weights,
        extractor_data=args.extractor_data,
        extractor_steps=args.extractor_steps,
        critic_steps=args.critic_steps,
        device=args.device,
    )


def _critic(args: argparse.Namespace, fidelity: dict, real: Any, sets: dict[str, Any]) -> None:
    """The mask critic of every set (``--critic-steps``, 0 = none), printed as it lands."""
    from synthmed.evaluation.critic import CriticConfig
    from synthmed.evaluation.suite import add_mask_critic

    if args.critic_steps <= 0:
        return
    add_mask_critic(fidelity, real, sets, CriticConfig(steps=args.critic_steps), args.device)
    _print_critic(fidelity, list(sets))


def _print_critic(fidelity: dict[str, Any], names: list[str]) -> None:
    """Each named set's mask critic AUC with its interval (sets without one are skipped)."""
    for name in names:
        c = fidelity["sets"][name].get("mask_critic", {})
        if "auc" in c:
            lo, hi = c["interval"]
            print(f"{name}: mask critic AUC {c['auc']:.3f} ({lo:.3f} … {hi:.3f}; chance 0.5)")


def _print_references(result: dict[str, Any], name: str) -> None:
    """Each headline figure of one set: synthetic median [5-95 %] beside real vs real at the
    same sizes, with the verdict."""
    from synthmed.evaluation.fidelity import HEADLINE

    s = result["sets"][name]
    z = s["sizes"]
    print(
        f"{name}: median [5-95 %] over {z['splits']} splits of the real set; each sets A "
        f"({z['a']} real) against {z['compared']} of the {z['m_synthetic']} synthetic images "
        f"and against {z['compared']} real images of B"
    )
    for family, metric in HEADLINE:
        v = s["matched"].get(family, {}).get(metric)
        if v is None:
            continue
        syn, ref = v["synthetic"], v["real_vs_real"]
        print(
            f"{family + ' ' + metric:>20}: synthetic {syn['median']:.4g} "
            f"[{syn['p5']:.4g} - {syn['p95']:.4g}]   real vs real {ref['median']:.4g} "
            f"[{ref['p5']:.4g} - {ref['p95']:.4g}]   {v['verdict']}"
        )


def _gain_suffix(utility: dict[str, Any], arm: str) -> str:
    """An arm's F1 gain over real with its interval, for the printed summary ('' without)."""
    from synthmed.evaluation.report import gain_text

    gain = gain_text(utility.get("f1_gain_over_real", {}).get(arm))
    return f"   F1 - real {gain} (95 % interval over test images and seeds)" if gain else ""


def _overlap_text(arm: dict[str, Any]) -> str:
    """An arm's Dice, IoU and HD95 (mean ± std over seeds) for the printed summary."""
    m, s = arm["mean"], arm["std"]
    if "dice" not in m:
        return ""
    return (
        f"Dice {m['dice']:.4f} ± {s['dice']:.4f}   IoU {m['iou']:.4f} ± {s['iou']:.4f}   "
        f"HD95 {m['hd95']:.2f} ± {s['hd95']:.2f} px (means over the test images)"
    )


def utility_settings(args: argparse.Namespace, recipe: SegmentationRecipe) -> UtilitySettings:
    """The segmenters' settings of ``evaluate utility`` / ``all`` from their flags."""
    from synthmed.evaluation.utility import UtilitySettings

    return UtilitySettings(
        budget=recipe,
        seeds=tuple(range(args.seeds)),
        synthetic_share=args.synthetic_share,
        real_subsets=tuple(args.real_subsets),
        device=args.device,
        mask_kind=args.mask_kind,
    )


def _resolution(args: argparse.Namespace) -> int:
    """The working resolution: --res, else the synthetic set's own (a generated folder's
    manifest.json or a prepared folder's dataset.json)."""
    from synthmed.evaluation.api import folder_resolution

    res = args.res or folder_resolution(args.synthetic)
    if res is None:
        raise UserError(
            f"{args.synthetic}: no manifest.json or dataset.json to take the resolution from; "
            "pass --res"
        )
    return res


def run(args: argparse.Namespace) -> None:
    """Run one ``evaluate`` sub-command and print its headline numbers."""
    from synthmed.evaluation.api import extractor_for, provenance_of
    from synthmed.evaluation.utility import budget_recipe

    res = _resolution(args)
    # The command as given to synthmed.cli.main (also when called from Python, not a shell).
    command = shlex.join(["synthmed", *getattr(args, "argv", sys.argv[1:])])
    if args.evaluation == "all":
        _run_all(args, res, command)  # writes report.html and metrics.json itself
        return
    synthetic = _load(args.synthetic, res, resize=True)
    if args.evaluation == "utility":
        from synthmed.evaluation.utility import evaluate_utility

        real_train, real_test = _load(args.real_train, res), _load(args.real_test, res)
        checked = provenance_of(real_train, real_test, {"synthetic": (args.synthetic, synthetic)})
        settings = utility_settings(args, budget_recipe(args.budget, res))
        result = evaluate_utility(real_train, synthetic, real_test, settings, arms=args.arms)
        result["provenance"] = checked
        for arm, r in result["arms"].items():
            m, s = r["mean"], r["std"]
            gain = _gain_suffix(result, arm)
            print(f"{arm:>20}: F1 {m['f1']:.4f} ± {s['f1']:.4f}   AUC {m['auc']:.4f}{gain}")
            print(f"{'':>20}  {_overlap_text(r)}")
    else:
        from synthmed.evaluation.suite import evaluate_fidelity

        real = _load(args.real, res)
        compared = {"the real set": real, "the synthetic set": synthetic}
        extractor = extractor_for(fidelity_settings(args), res, compared)
        result = evaluate_fidelity(
            real, {"synthetic": synthetic}, extractor, mask_kind=args.mask_kind
        )
        _critic(args, result, real, {"synthetic": synthetic})
        _print_fidelity(result, "synthetic")
    if args.out:
        from synthmed.evaluation.suite import machine

        result["context"] = {"command": command, "machine": machine(), "resolution": res}
        write_json(Path(args.out) / f"{args.evaluation}.json", result)
        print(f"results in {args.out}")


def _print_fidelity(result: dict[str, Any], name: str) -> None:
    """``evaluate fidelity``'s summary of one set: headline figures beside their references,
    vessel statistics, mask nearest neighbours and the feature network."""
    s = result["sets"][name]
    _print_references(result, name)
    print(f"mask kind: {result['mask_kind']['kind']} ({result['mask_kind']['source']})")
    family = "vessels" if "vessels" in s["matched"] else "objects"
    for stat, v in s["matched"].get(family, {}).items():
        syn, ref = v["synthetic"], v["real_vs_real"]
        print(f"{stat:>24}: relative difference of means {syn['median']:+.1%} "
              f"(real vs real {ref['p5']:+.1%} ... {ref['p95']:+.1%})")  # fmt: skip
    nn = s["mask_nearest_neighbours"]
    line = "mask nearest-neighbour Dice: to train median {median:.3f} max {max:.3f}"
    print(line.format(**nn["generated_to_train"]), end="")
    if "generated_to_generated" in nn:
        print(", to each other max {max:.3f}".format(**nn["generated_to_generated"]), end="")
    print()
    print(f"features: {result['extractor']}")


def _run_all(args: argparse.Namespace, res: int, command: str) -> None:
    """``evaluate all``: :func:`synthmed.evaluate` with the flags' settings, then the
    headline numbers."""
    from dataclasses import replace

    from synthmed.evaluation.api import MAIN_SET, ReportOptions, evaluate
    from synthmed.evaluation.utility import budget_recipe

    if not args.out:
        raise UserError("evaluate all: --out is required (the report folder)")
    synthetic = {MAIN_SET: args.synthetic}
    if args.baseline:
        synthetic[args.baseline_name] = args.baseline
    runs = _named_folders(args.runs, "--runs")
    compare = _named_folders(args.compare, "--compare")
    metrics = evaluate(
        synthetic,
        args.real_train,
        args.real_test,
        # The recipe is made here, before any data is read: a bad --budget fails at once.
        utility=utility_settings(args, budget_recipe(args.budget, res)),
        fidelity=replace(fidelity_settings(args), compare=compare),
        res=res,
        out=args.out,
        report=ReportOptions(runs=runs, command=command),
    )
    _print_critic(metrics["fidelity"], list(metrics["fidelity"]["sets"]))
    for arm, r in metrics["utility"]["arms"].items():
        gain = _gain_suffix(metrics["utility"], arm)
        print(f"{arm:>28}: F1 {r['mean']['f1']:.4f} ± {r['std']['f1']:.4f}{gain}")
        print(f"{'':>28}  {_overlap_text(r)}")
    print(f"report: {Path(args.out) / 'report.html'}")


def _named_folders(items: list[str], flag: str) -> dict[str, Path]:
    """Parse NAME=DIR arguments; each DIR must exist."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not Path(path).is_dir():
            raise UserError(f"{flag} {item}: expected NAME=DIR with an existing folder")
        out[name] = Path(path)
    return out
