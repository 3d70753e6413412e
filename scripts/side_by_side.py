"""Real and synthetic pairs side by side, as one PNG (README's figures).

Each set gets two rows: ``--n`` images, then the same images with their masks overlaid, the
figure the evaluation report shows (``synthmed.evaluation.plots.samples_figure``).
Usage: python scripts/side_by_side.py NAME=FOLDER [NAME=FOLDER ...] --out grid.png [--res 128]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synthmed.data.sources import load_any
from synthmed.evaluation.plots import samples_figure
from synthmed.files import atomic_write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", help="NAME=FOLDER (a prepared or generated folder)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--res", type=int, default=128, help="side of the images shown")
    parser.add_argument("--n", type=int, default=5, help="pairs per set")
    args = parser.parse_args()
    sets = {}
    for item in args.sets:
        name, _, folder = item.partition("=")
        sets[name] = load_any(folder, args.res)
    figure = samples_figure(sets, args.n)
    atomic_write(args.out, lambda tmp: tmp.write_bytes(figure))
    print(args.out)


if __name__ == "__main__":
    main()
