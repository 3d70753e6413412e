"""Utility against training time over several ``synthmed fit`` runs of one dataset.

Reads each run's ``plan.json`` (budget, resolution), ``times.json`` (wall-clock seconds of
each stage) and ``report/metrics.json`` (F1 per arm and seed) and draws the synthetic-only
and real-only F1 (mean and the range over seeds) against the minutes spent training.
Usage: python scripts/budget_curve.py RUN [RUN ...] --out budget.png [--table budget.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TRAINING = ("geometry", "refiner", "texture", "single")


def run_point(run: Path) -> dict:
    """One run's budget, training minutes and F1 per arm (mean, min, max over seeds)."""
    plan = json.loads((run / "plan.json").read_text())
    times = json.loads((run / "times.json").read_text())
    arms = json.loads((run / "report" / "metrics.json").read_text())["utility"]["arms"]
    f1 = {}
    for arm in ("real", "dual GAN", "real+dual GAN"):
        seeds = [s["f1"] for s in arms[arm]["per_seed"]]
        f1[arm] = (sum(seeds) / len(seeds), min(seeds), max(seeds))
    minutes = sum(times.get(k, 0.0) for k in TRAINING) / 60
    return {"run": str(run), "budget_min": plan["budget_s"] / 60, "res": plan["resolution"],
            "training_min": minutes, "f1": f1}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--table", type=Path)
    args = parser.parse_args()
    points = sorted((run_point(r) for r in args.runs), key=lambda p: p["training_min"])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for arm, colour in (("dual GAN", "tab:orange"), ("real", "tab:blue")):
        x = [p["training_min"] for p in points]
        mean = [p["f1"][arm][0] for p in points]
        low = [p["f1"][arm][0] - p["f1"][arm][1] for p in points]
        high = [p["f1"][arm][2] - p["f1"][arm][0] for p in points]
        label = "synthetic only" if arm == "dual GAN" else "real only"
        ax.errorbar(x, mean, yerr=[low, high], marker="o", capsize=3, color=colour, label=label)
    ax.set_xlabel("training time of the stages (min)")
    ax.set_ylabel("F1 on the held-out pairs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    rows = ["| budget | resolution | training (min) | real | synthetic | real + synthetic |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for p in points:
        cells = [f"{p['f1'][a][0]:.4f} ({p['f1'][a][1]:.4f}-{p['f1'][a][2]:.4f})"
                 for a in ("real", "dual GAN", "real+dual GAN")]  # fmt: skip
        rows.append(f"| {p['budget_min']:.0f} min | {p['res']} px | {p['training_min']:.0f} | "
                    + " | ".join(cells) + " |")  # fmt: skip
    text = "\n".join(rows)
    print(text)
    if args.table:
        args.table.write_text(text + "\n")


if __name__ == "__main__":
    main()
