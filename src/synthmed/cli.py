"""Command line: a thin layer over the Python API. User errors exit 2 with one line."""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from synthmed import __version__
from synthmed.errors import EXIT_USER_ERROR, UserError

if TYPE_CHECKING:  # building the parser imports neither torch nor SciPy
    from synthmed.data.prepared import PreparedDataset

# Choices spelt out so that building the parser imports neither torch nor SciPy (a server
# started with `synthmed serve` needs neither); tests/test_cli_e2e.py checks that they agree
# with synthmed.data.sources.SOURCES, synthmed.device.PRECISIONS and
# synthmed.training.losses.LOSSES.
SOURCES = ("drive", "chase", "bubil", "folder", "phantom")
PRECISIONS = ("auto", "fp32", "bf16")
LOSSES = ("ns", "hinge", "lsgan")
MASK_KINDS = ("auto", "vessel", "compact")  # synthmed.data.profile.CHOICES
FOREGROUNDS = ("white", "black", "auto")  # synthmed.data.prepared.FOREGROUND_SETTINGS


def _add_train_options(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The options every stage shares: the common ones first, the loop's and the networks'
    under "advanced" groups of --help. Returns the networks' group, where each stage adds
    its own."""
    from synthmed.presets import PRESETS
    from synthmed.training.options import TrainOptions

    d = TrainOptions()
    p.add_argument("--data", required=True, help="prepared dataset folder (synthmed prepare)")
    p.add_argument("--out", required=True, help="run folder (options, stats, grids, weights)")
    p.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="networks, batch size and precision: SynthMed's default (the default), the "
        "paper's, or drive512 (full-resolution fundus)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help='options from a JSON file: a run\'s options.json, or {"preset": ..., '
        '"train": {...}, "model": {...}, "stage": {...}} or flat option names; '
        "--preset and the flags given beside it win",
    )
    p.add_argument("--steps", type=int, help=f"total optimisation steps (default {d.steps})")
    p.add_argument("--batch-size", type=int, help="images per step (default: the preset's)")
    p.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    loop = p.add_argument_group("advanced: the training loop")
    loop.add_argument("--lr", type=float, help=f"Adam learning rate (default {d.lr})")
    loop.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="auto: bfloat16 mixed precision where the hardware has it (default: the preset's)",
    )
    loop.add_argument("--log-every", type=int, help=f"steps between stats lines ({d.log_every})")
    loop.add_argument("--grid-every", type=int, help=f"steps between sample grids ({d.grid_every})")
    loop.add_argument(
        "--checkpoint-every", type=int, help=f"steps between checkpoints ({d.checkpoint_every})"
    )
    loop.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    loop.add_argument(
        "--augment",
        help="DiffAugment for the discriminator: comma list of translation, cutout, color, "
        "flip, rot90, brightness, contrast; dihedral: the real samples in all 8 orientations; "
        "microscopy = dihedral,brightness,contrast; auto: microscopy for compact masks, the "
        "preset's for vessels (default: the preset's)",
    )
    loop.add_argument(
        "--ema", type=float, help="decay of the generator weight average sampled from (0 = off)"
    )
    loop.add_argument("--loss", choices=LOSSES, help=f"adversarial loss (default {d.loss})")
    loop.add_argument("--r1", type=float, help="R1 penalty weight on the discriminator (0 = off)")
    nets = p.add_argument_group("advanced: networks and losses")
    nets.add_argument("--ngf", type=int, help="generator width")
    nets.add_argument("--ndf", type=int, help="discriminator width")
    nets.add_argument(
        "--upsample", choices=["transpose", "resize", "bilinear"], help="generator upsampling"
    )
    return nets


def _add_coarse_encoding(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--coarse-kind and --coarse-clip, shared by a coarse geometry run and its refiner (they
    must agree)."""
    p.add_argument(
        "--coarse-kind",
        choices=("soft", "distance"),  # models.refiner.COARSE_KINDS (not imported: slow)
        help="what the coarse masks encode: area-averaged vessels (soft, the default) or a "
        "clipped signed distance to them (distance); the geometry run and its refiner agree",
    )
    p.add_argument(
        "--coarse-clip",
        type=float,
        metavar="PX",
        help="distance maps: how far outside a vessel (full-resolution pixels) the distance "
        "still counts before it is clipped (default 8; the drive512 preset: 12)",
    )


def _add_prepare_parser(sub: argparse._SubParsersAction) -> None:
    """``synthmed prepare``: decode a dataset once, optionally split with roles."""
    p = sub.add_parser("prepare", help="decode a dataset once into a uint8 cache")
    p.add_argument("kind", choices=SOURCES, help="dataset layout (phantom = embedded data)")
    p.add_argument("path", nargs="?", help="dataset folder (not for phantom)")
    p.add_argument(
        "--res", type=int, help="working resolution (default 512, the paper's; phantom 64)"
    )
    p.add_argument("--out", required=True, help="output folder (new, or an empty one)")
    p.add_argument("--split", help="drive: the split under the root (default training)")
    p.add_argument("--n", type=int, help="phantom: number of images (default 64)")
    p.add_argument("--seed", type=int, help="phantom: seed (default 0)")
    p.add_argument(
        "--foreground",
        choices=FOREGROUNDS,
        help="which mask value is the object: white (default; bubil: black, its masks are "
        "inverted) or auto (the minority class over the whole dataset, said and recorded)",
    )
    p.add_argument(
        "--holdout",
        type=int,
        help="also split: OUT/train gets all but the last N (by name), OUT/holdout the last N "
        "(written together: a killed run leaves no half split)",
    )
    p.add_argument(
        "--role",
        choices=("train", "val", "test"),
        help="record an unsplit dataset's role (e.g. --role test for an official test set): "
        "reports say which split each figure comes from",
    )
    p.add_argument(
        "--val",
        type=int,
        metavar="N",
        help="three-way split: OUT/val gets N pairs for every choice (settings, presets), "
        "before the --test ones in name order",
    )
    p.add_argument(
        "--test",
        type=int,
        metavar="M",
        help="three-way split: OUT/test gets the last M pairs by name, to be scored once, at "
        "the end (OUT/train the rest; each part's dataset.json records its role)",
    )
    p.add_argument(
        "--mask-kind",
        choices=MASK_KINDS,
        default="auto",
        help="vessel (thin branching structures) or compact (blob-like objects): which mask "
        "statistics, repairs and augmentations apply; auto (default) decides from the masks "
        "and records the figures in dataset.json",
    )


def _add_mask_gan_parsers(stages: argparse._SubParsersAction) -> None:
    """``train geometry`` and ``train single``: the DCGANs (Stage I and the baseline)."""
    for name, text in (
        ("geometry", "Stage I: DCGAN generating masks"),
        ("single", "baseline: one DCGAN generating image and mask together"),
    ):
        g = _add_train_options(stages.add_parser(name, help=text))
        g.add_argument("--z-dim", type=int, help="latent size")
        g.add_argument(
            "--instance-noise", type=float, help="D input noise std at step 0 (default 0.3)"
        )
        g.add_argument("--no-blur", action="store_true", help="do not blur the D's inputs")
        g.add_argument(
            "--mode-seeking",
            type=float,
            help="weight of MSGAN's mode-seeking term: samples of distant codes must differ "
            "(default 0 = off)",
        )
        g.add_argument(
            "--resolution",
            type=int,
            help="side the DCGAN works at (default: the data's); below it, it learns "
            "area-averaged masks that a refiner (train refiner) brings back to full size",
        )
        if name == "geometry":
            _add_coarse_encoding(g)


def _add_pix2pix_parsers(stages: argparse._SubParsersAction) -> None:
    """``train texture`` (Stage II) and ``train refiner`` (Stage I at full size)."""
    for name, text in (
        ("texture", "Stage II: pix2pix mask -> image"),
        ("refiner", "Stage I at full size: coarse masks (geometry --resolution) -> masks"),
    ):
        t = _add_train_options(stages.add_parser(name, help=text))
        t.add_argument("--l1-weight", type=float, help="lambda of the L1 term (default 100)")
        t.add_argument("--fm-weight", type=float, help="D feature-matching weight (default 0)")
        t.add_argument("--num-d", type=int, help="PatchGANs at falling scales (default 1)")
        t.add_argument("--crop", type=int, help="train on random crops of this side (0 = none)")
        if name == "texture":
            t.add_argument(
                "--style-dim",
                type=int,
                help="per-image style code of this length, encoded from the real image while "
                "training and drawn from a Gaussian fitted to the training images' codes "
                "when sampling (BicycleGAN's cVAE-GAN; "
                "default 0 = off)",
            )
            t.add_argument(
                "--kl-weight", type=float, help="KL weight of the style codes (default 0.01)"
            )
        if name == "refiner":
            _add_coarse_encoding(t)
            t.add_argument(
                "--coarse", type=int, help="side of the geometry run's coarse masks (default 64)"
            )
            t.add_argument(
                "--topology-weight",
                type=float,
                help="weight of a Dice + clDice loss keeping thin vessels unbroken (default 0)",
            )
            t.add_argument(
                "--adapt-geometry",
                help="a trained geometry run whose coarse masks the refiner also learns to "
                "refine, judged unpaired against the real masks (with --adapt-weight)",
            )
            t.add_argument(
                "--adapt-weight",
                type=float,
                help="weight of that unpaired adversarial loss (default 0 = off)",
            )


def _add_generate_parser(sub: argparse._SubParsersAction) -> None:
    """``synthmed generate``: pairs from trained stages, a pipeline or given masks."""
    p = sub.add_parser("generate", help="sample (mask, image) pairs into a dataset folder")
    p.add_argument("--geometry", help="Stage I run folder")
    p.add_argument("--refiner", help="Stage I refiner run folder (for a coarse geometry run)")
    p.add_argument("--texture", help="Stage II run folder")
    p.add_argument("--pipeline", help="pipeline folder (instead of --geometry/--texture)")
    p.add_argument("--single", help="single-GAN run folder (the baseline) instead")
    p.add_argument(
        "--masks",
        help="with --texture only: images for these masks (any dataset layout) instead of Stage I",
    )
    p.add_argument("--n", type=int, default=100, help="number of pairs (default 100)")
    p.add_argument("--out", required=True, help="new output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: bfloat16 where the hardware has it",
    )
    p.add_argument("--save-pipeline", help="also save both stages as one pipeline folder")
    p.add_argument(
        "--repair-tree",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mend Stage I's masks into vessel trees before Stage II (fill pinholes, cut "
        "spurs, join facing dashes, drop specks; synthmed.models.tree_repair); default: what a "
        "--pipeline folder was saved with, else off",
    )
    p.add_argument(
        "--stochastic",
        action="store_true",
        help="keep Stage II's decoder dropout on while sampling (pix2pix's test-time noise): "
        "varied renderings of like masks, still a function of --seed",
    )
    p.add_argument(
        "--tile",
        type=int,
        help="render Stage II in half-overlapping windows of this many px, blended (0: whole "
        "images). Default: the crop Stage II trained on, read from its run folder or "
        "pipeline.json; whole images if unknown. Windows keep the instance-norm statistics "
        "training saw (whole images came out brighter)",
    )
    p.add_argument(
        "--license",
        help="the dataset's license for its card (README.md), e.g. cc-by-4.0; default: "
        "'other', and the card says to set it (the training data's terms may bind it)",
    )


def _add_card_parser(sub: argparse._SubParsersAction) -> None:
    """``synthmed card``: an evaluation's headline figures into a generated dataset's card."""
    p = sub.add_parser(
        "card",
        help="put an evaluation's headline figures into a generated dataset's card (README.md)",
    )
    p.add_argument("folder", help="a folder synthmed generate wrote")
    p.add_argument(
        "--metrics",
        help="metrics.json of synthmed evaluate all (default: FOLDER's); copied into FOLDER",
    )
    p.add_argument(
        "--set",
        default="dual GAN",
        help="the folder's name in those metrics (default 'dual GAN': evaluate all's --synthetic)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``synthmed`` argument parser (one sub-command per step of the pipeline)."""
    parser = argparse.ArgumentParser(
        prog="synthmed",
        description="Synthetic medical images from dual GANs: Stage I masks, Stage II images.",
    )
    parser.add_argument("--version", action="version", version=f"synthmed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_fit_parser(sub)
    _add_prepare_parser(sub)

    p = sub.add_parser("train", help="train one stage")
    stages = p.add_subparsers(dest="stage", required=True)
    _add_mask_gan_parsers(stages)
    _add_pix2pix_parsers(stages)
    _add_generate_parser(sub)
    _add_card_parser(sub)

    from synthmed.evaluation.commands import add_parsers

    add_parsers(sub)

    from synthmed.repository.commands import add_parsers as add_repository_parsers

    add_repository_parsers(sub)

    # add_help=False: "synthmed bench -h" is synthmed.bench's own help, like its other options.
    p = sub.add_parser(
        "bench", add_help=False, help="speed and memory benchmark (synthmed bench -h: options)"
    )
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="options of synthmed.bench")

    p = sub.add_parser("demo", help="everything on the embedded phantom data, in minutes")
    p.add_argument("--out", default="synthmed-demo", help="demo folder (default synthmed-demo)")
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    return parser


def _add_fit_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit",
        help="the whole pipeline on your pairs in one command: plan, train, generate, evaluate",
        description="Read DATA (any layout prepare reads), hold out part of it, time this "
        "machine, plan resolution and steps for --budget, then train Stage I (and its "
        "refiner where the masks need one), Stage II, generate a synthetic set and evaluate "
        "it on the held-out pairs. The plan and every choice go to OUT/plan.json.",
    )
    p.add_argument("data", help="a dataset folder (DRIVE, images/ + masks/, prepared, ...)")
    p.add_argument("--out", required=True, help="run folder (new, or the one to --resume)")
    p.add_argument(
        "--holdout", type=int, help="pairs held out for the evaluation (default: a fifth)"
    )
    p.add_argument("--budget", default="2h", help="time budget, e.g. 30m, 1h, 2h (default 2h)")
    p.add_argument("--resume", action="store_true", help="continue a killed fit run")
    p.add_argument(
        "--foreground",
        choices=FOREGROUNDS,
        help="which mask value is the object (default: the layout's own; auto: the minority)",
    )
    p.add_argument(
        "--mask-kind",
        choices=MASK_KINDS,
        default="auto",
        help="vessel-like or compact masks (default: decided from the masks, and said)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument(
        "--max-steps",
        type=int,
        help="cap every network's steps (a quick look or a smoke test; the figures then say "
        "little)",
    )
    p.add_argument(
        "--allow-short",
        action="store_true",
        help="when the budget gives a stage fewer than its minimum steps even at the smallest "
        "size, train that short run (said in plan.json) instead of refusing the budget",
    )


def _check_prepare_flags(args: argparse.Namespace) -> None:
    """Refuse flags ``prepare`` would otherwise ignore or misread (a typo must not pass)."""
    phantom = args.kind == "phantom"
    if phantom and args.path is not None:
        raise UserError(f"prepare phantom: takes no folder ({args.path}); the data is embedded")
    if phantom and args.foreground is not None:
        raise UserError("prepare phantom: --foreground is for masks read from files")
    for flag, value in (("--n", args.n), ("--seed", args.seed)):
        if value is not None and not phantom:
            raise UserError(f"prepare {args.kind}: {flag} is for the phantom only")
    if args.split is not None and args.kind != "drive":
        raise UserError(f"prepare {args.kind}: --split is for drive only")
    split = [f for f, v in (("--val", args.val), ("--test", args.test)) if v is not None]
    if args.holdout is not None and split:
        raise UserError("prepare: --holdout or --val / --test, not both")
    if args.role and (args.holdout is not None or split):
        raise UserError("prepare: --role names an unsplit dataset; a split names its parts")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"{out}: folder exists and is not empty; choose another --out")


def _prepare(args: argparse.Namespace) -> None:
    """``synthmed prepare KIND PATH``: decode once, write one dataset or a split of it."""
    from synthmed.data.sources import prepare_source, save_split, split_holdout, split_three

    _check_prepare_flags(args)
    # 0 is a resolution to refuse, not a request for the default (as `args.res or` made it).
    res = args.res if args.res is not None else (64 if args.kind == "phantom" else 512)
    n, seed = 64 if args.n is None else args.n, 0 if args.seed is None else args.seed
    data = prepare_source(
        args.kind, args.path, res, args.split or "training", n, seed, args.foreground
    )
    _record_mask_kind(data, args.mask_kind)
    if args.holdout is not None:
        train, holdout = split_holdout(data, args.holdout)
        parts = {"train": train, "holdout": holdout}
    elif args.val is not None or args.test is not None:
        parts = split_three(data, args.val or 0, args.test or 0)
    else:
        if args.role:
            data.meta["split"] = args.role
        data.save(args.out)
        print(f"{len(data)} pairs at {data.resolution}x{data.resolution} written to {args.out}")
        return
    save_split(parts, args.out)
    counts = " + ".join(f"{len(v)} {k}" for k, v in parts.items())
    print(f"{counts} pairs written to {args.out}/{{{','.join(parts)}}}")


def _train(args: argparse.Namespace) -> None:
    """``synthmed train STAGE``: the flags as keyword arguments of :func:`synthmed.train`."""
    from synthmed.training.api import train

    options = {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "device": args.device,
        "precision": args.precision,
        "augment": args.augment,
        "ema": args.ema,
        "log_every": args.log_every,
        "grid_every": args.grid_every,
        "checkpoint_every": args.checkpoint_every,
        "loss": args.loss,
        "r1": args.r1,
        "flip": False if args.no_flip else None,
        "ngf": args.ngf,
        "ndf": args.ndf,
        "upsample": args.upsample,
        "coarse_kind": getattr(args, "coarse_kind", None),
        "coarse_clip": getattr(args, "coarse_clip", None),
    }
    if args.stage in ("texture", "refiner"):
        options |= {"crop": args.crop, "num_d": args.num_d}
        options |= {"l1_weight": args.l1_weight, "fm_weight": args.fm_weight}
        if args.stage == "refiner":
            options |= {"coarse": args.coarse, "topology_weight": args.topology_weight}
            options["adapt_weight"] = args.adapt_weight
            options["adapt_geometry"] = args.adapt_geometry
        else:
            options |= {"style_dim": args.style_dim, "kl_weight": args.kl_weight}
    else:
        options |= {"z_dim": args.z_dim, "resolution": args.resolution}
        options |= {"instance_noise": args.instance_noise, "mode_seeking": args.mode_seeking}
        options["blur"] = False if args.no_blur else None
    preset = args.preset
    if args.config:
        from synthmed.training.api import read_config

        saved_preset, saved = read_config(args.config, args.stage)
        options = saved | {k: v for k, v in options.items() if v is not None}
        preset = preset or saved_preset
    preset = preset or "default"
    folder = train(args.stage, args.data, args.out, preset, args.resume, **options)
    print(f"generator saved in {folder}")


def _generate(args: argparse.Namespace) -> None:
    from synthmed.generation import generate
    from synthmed.models.tree_repair import TreeRepair
    from synthmed.pipeline import SingleGANPipeline, SynthMedPipeline, TextureModel

    sampling = {"device": args.device, "precision": args.precision, "tile": args.tile}
    sampling["stochastic"] = args.stochastic
    repair = TreeRepair() if args.repair_tree else None
    if args.masks:
        if not args.texture or args.geometry or args.pipeline or args.single or args.repair_tree:
            raise UserError("generate --masks: give --texture only (Stage I is not used)")
        model = TextureModel.load(args.texture, **sampling)
    elif args.single:
        if args.repair_tree:
            raise UserError("generate --repair-tree: the single GAN's masks are not repaired")
        model = SingleGANPipeline.load(args.single, **_single_sampling(sampling))
    elif args.pipeline:
        keep = True if args.repair_tree is None else repair
        model = SynthMedPipeline.load(args.pipeline, keep, **sampling)
    elif args.geometry and args.texture:
        model = SynthMedPipeline.from_folders(
            args.geometry, args.texture, args.refiner, repair, **sampling
        )
    else:
        raise UserError("generate: give --pipeline, --single, or both --geometry and --texture")
    if args.save_pipeline and isinstance(model, SynthMedPipeline):
        model.save(args.save_pipeline)
    masks, n = (args.masks, None) if args.masks else (None, args.n)
    out = generate(
        model,
        args.out,
        n,
        seed=args.seed,
        masks=masks,
        license=args.license,
        command=_command_line(args),
    )
    if masks:
        print(f"images for the masks of {masks} written to {out}")
    else:
        print(f"{n} pairs written to {out}")


def _single_sampling(sampling: dict) -> dict:
    """The single GAN samples in float32: its ``--precision`` is the device's default, not an
    error (``generate`` has always accepted it); stochastic and tile are refused by it."""
    return {k: v for k, v in sampling.items() if k != "precision"}


def _command_line(args: argparse.Namespace) -> str | None:
    """The command as typed (for the manifest and the dataset card), when main() saw it."""
    argv = getattr(args, "argv", None)
    return None if argv is None else shlex.join(["synthmed", *argv])


def _record_mask_kind(data: PreparedDataset, choice: str) -> None:
    """Decide (or take) the masks' kind, record it in ``data``'s metadata (every split part
    inherits it) and say so in one line."""
    from synthmed.data.profile import record_mask_kind

    record = record_mask_kind(data, choice)
    how = "set by --mask-kind" if record["source"] == "user" else "from the masks"
    print(f"mask kind: {record['kind']} ({how}; dataset.json mask_kind has the figures)")


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed command line to the Python API; returns the exit code."""
    if args.command == "prepare":
        _prepare(args)
    elif args.command == "fit":
        from synthmed.fitting.run import DataOptions, fit

        reading = DataOptions(args.holdout, args.foreground, args.mask_kind)
        options = {"budget": args.budget, "resume": args.resume, "max_steps": args.max_steps}
        options["short_ok"] = args.allow_short
        fit(args.data, args.out, reading=reading, device=args.device, **options)
    elif args.command == "train":
        _train(args)
    elif args.command == "generate":
        _generate(args)
    elif args.command == "card":
        from synthmed.dataset_card import add_evaluation

        card = add_evaluation(args.folder, args.metrics, args.set)
        print(f"{card}: the figures of {args.set!r} from {args.metrics or 'its metrics.json'}")
    elif args.command == "evaluate":
        from synthmed.evaluation.commands import run as run_evaluation

        run_evaluation(args)
    elif args.command in ("serve", "publish", "token"):
        from synthmed.repository.commands import run as run_repository

        run_repository(args)
    elif args.command == "bench":
        from synthmed.bench import main as bench_main

        return bench_main(args.bench_args)
    elif args.command == "demo":
        from synthmed.demo import run_demo

        run_demo(Path(args.out), device=args.device, quick=args.quick)
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"synthmed: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``synthmed`` command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command == "bench":  # all that follows is synthmed.bench's, options included
        args.bench_args = argv[argv.index("bench") + 1 :]
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.argv = argv  # recorded by generate in the dataset's manifest and card
    warnings.showwarning = _one_line_warning
    try:
        return run(args)
    except UserError as e:
        print(f"synthmed: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("synthmed: interrupted (checkpoints saved so far are intact; use --resume)")
        return 130
