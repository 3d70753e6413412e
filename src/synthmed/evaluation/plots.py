"""Figures for the evaluation report (matplotlib, headless), returned as PNG bytes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from synthmed.data.prepared import PreparedDataset  # noqa: E402
from synthmed.evaluation.fidelity import (  # noqa: E402
    HEADLINE,
    channel_names,
    intensity_histograms,
)
from synthmed.evaluation.vessels import width_histograms  # noqa: E402


def png_bytes(fig: plt.Figure) -> bytes:
    """Render a figure to PNG bytes and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image with its vessel mask drawn in green at half opacity: (H, W, 3) uint8."""
    rgb = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
    out = rgb.astype(np.float32)
    m = mask.astype(bool)
    out[m] = 0.5 * out[m] + 0.5 * np.array([0, 255, 0], np.float32)
    return out.round().astype(np.uint8)


def samples_figure(sets: dict[str, PreparedDataset], n: int = 6) -> bytes:
    """One row per set: ``n`` images, then the same with their masks overlaid."""
    fig, axes = plt.subplots(2 * len(sets), n, figsize=(1.6 * n, 3.3 * len(sets)), squeeze=False)
    for r, (name, data) in enumerate(sets.items()):
        for c in range(n):
            for k, ax in enumerate((axes[2 * r, c], axes[2 * r + 1, c])):
                ax.axis("off")
                if c >= len(data):
                    continue
                img = data.images[c]
                shown = overlay(img, data.masks[c]) if k else img
                # vmin / vmax: grayscale shown as stored, not stretched to its own range
                # (the overlaid RGB copy below it is never stretched either).
                gray = shown[..., 0] if shown.shape[-1] == 1 else shown
                ax.imshow(gray, cmap="gray", vmin=0, vmax=255)
            axes[2 * r, 0].set_title(name, loc="left", fontsize=9)
            axes[2 * r + 1, 0].set_title(f"{name}: masks overlaid", loc="left", fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


def loss_curves_figure(runs: dict[str, Path]) -> bytes | None:
    """Losses from each run's ``stats.jsonl`` against images seen; None without runs."""
    runs = {
        k: Path(v) / "stats.jsonl" for k, v in runs.items() if (Path(v) / "stats.jsonl").is_file()
    }
    if not runs:
        return None
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3), squeeze=False)
    for ax, (name, path) in zip(axes[0], runs.items(), strict=True):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line]
        x = [r["images"] for r in rows]
        for key in sorted(k for k in rows[0] if k.startswith("loss")):
            ax.plot(x, [r[key] for r in rows], label=key, lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("images seen")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return png_bytes(fig)


def histograms_figure(sets: dict[str, PreparedDataset], bins: int = 64) -> bytes:
    """Intensity histograms inside the field of view, one panel per channel."""
    first = next(iter(sets.values()))
    names = channel_names(first.channels)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 2.8), squeeze=False)
    centres = (np.arange(bins) + 0.5) * 256 / bins
    for name, data in sets.items():
        h = intensity_histograms(data.images, data.fov, bins)
        for c, ax in enumerate(axes[0]):
            ax.plot(centres, h[c], label=name, lw=1)
    for c, ax in enumerate(axes[0]):
        ax.set_title(f"{names[c]} inside the FOV", fontsize=9)
        ax.set_xlabel("intensity")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return png_bytes(fig)


def widths_figure(sets: dict[str, PreparedDataset], bins: int = 20) -> bytes:
    """Distribution of vessel widths (pixels at 512 px) along the skeleton."""
    fig, ax = plt.subplots(figsize=(5, 3))
    for name, data in sets.items():
        hist, edges = width_histograms(data.masks, data.fov, bins)
        ax.step(edges[:-1], hist, where="post", label=name)
    ax.set_xlabel("vessel width (px at 512)")
    ax.set_ylabel("fraction of skeleton")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return png_bytes(fig)


def object_sizes_figure(sets: dict[str, PreparedDataset], bins: int = 20) -> bytes:
    """Distribution of the compact objects' areas (pixels at 512 px, log scale), pooled over
    each set's masks: the object counterpart of :func:`widths_figure`."""
    areas = {}
    for name, data in sets.items():
        inside = data.masks.astype(bool) & data.fov.astype(bool)
        scale = (512 / data.resolution) ** 2
        found = [ndimage.label(m, structure=np.ones((3, 3)))[0] for m in inside]
        sizes = [np.bincount(labels.ravel())[1:] * scale for labels in found]
        areas[name] = np.concatenate(sizes) if sizes else np.zeros(0)
    everything = np.concatenate(list(areas.values()))
    fig, ax = plt.subplots(figsize=(5, 3))
    if everything.size:
        edges = np.geomspace(max(everything.min(), 1.0), everything.max() + 1, bins + 1)
        for name, values in areas.items():
            hist, _ = np.histogram(values, bins=edges)
            total = hist.sum()
            ax.step(edges[:-1], hist / total if total else hist, where="post", label=name)
        ax.set_xscale("log")
        ax.legend(fontsize=7)
    ax.set_xlabel("object area (px at 512)")
    ax.set_ylabel("fraction of objects")
    fig.tight_layout()
    return png_bytes(fig)


def references_figure(fidelity: dict[str, Any]) -> bytes | None:
    """Each headline fidelity figure over the matched splits: the real-vs-real spread beside
    each synthetic set's, one panel per figure (box: quartiles, whiskers: 5-95 %).

    The real-vs-real boxes of sets compared at the same sizes are the same splits, so each is
    drawn once per size. None for results without the matched splits (older reports).
    """
    sets = {k: v for k, v in fidelity.get("sets", {}).items() if "matched" in v}
    if not sets:
        return None
    rows = (len(HEADLINE) + 2) // 3
    fig, axes = plt.subplots(rows, 3, figsize=(11, 3.8 * rows), squeeze=False)
    for ax in axes.flat[len(HEADLINE) :]:
        ax.axis("off")
    for ax, (family, metric) in zip(axes.flat, HEADLINE, strict=False):
        labels, values, colours = [], [], []
        for name, s in sets.items():
            v = s["matched"].get(family, {}).get(metric)
            if v is None:
                continue
            size = f"real vs real\n{s['sizes']['a']} vs {s['sizes']['compared']}"
            if size not in labels:
                labels.append(size)
                values.append(v["per_split"]["real_vs_real"])
                colours.append("#bbbbbb")
            labels.append(f"{name}\n{s['sizes']['a']} vs {s['sizes']['compared']}")
            values.append(v["per_split"]["synthetic"])
            colours.append("#6a9fd4")
        finite = [[x for x in vals if np.isfinite(x)] for vals in values]
        if not any(finite):
            ax.set_title(f"{family} {metric}: not computed", fontsize=9)
            continue
        boxes = ax.boxplot(finite, whis=(5, 95), patch_artist=True, showfliers=False)
        for patch, colour in zip(boxes["boxes"], colours, strict=True):
            patch.set_facecolor(colour)
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7, rotation=30, ha="right")
        ax.set_title(f"{family} {metric}", fontsize=9)
    fig.suptitle("Fidelity over the matched splits: real vs real (grey) and each set", fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)
