"""Write ``report.html`` + ``metrics.json`` (+ the figures as PNG files) into one folder.

The HTML is self-contained (figures embedded as data URIs, no scripts), so it opens offline
and survives being mailed around; the PNGs are written beside it for slides.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from synthmed.files import atomic_write, write_json

UTILITY_SCORES = ("f1", "auc", "accuracy", "sensitivity", "specificity")
OVERLAP_SCORES = ("dice", "iou", "hd95")  # evaluation.protocol.OVERLAP_SCORES
OVERLAP_LABELS = {"dice": "Dice", "iou": "IoU", "hd95": "HD95 (px)"}

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
code,pre{background:#f6f6f6;padding:2px 4px}pre{padding:8px;white-space:pre-wrap}
img{max-width:100%}.note{color:#555;font-size:.9em}
"""


def fmt(x: Any) -> str:
    """Numbers to 4 significant digits; anything else as text."""
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.4g}"
    return html.escape(str(x))


def table(header: list[str], rows: list[list[Any]]) -> str:
    """An HTML table from a header and rows of cells (numbers formatted)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def mean_std(summary: dict[str, Any], key: str) -> str:
    """'mean ± std' of one score of an arm's summary."""
    return f"{fmt(summary['mean'][key])} ± {fmt(summary['std'][key])}"


def mask_kind_note(record: dict[str, Any] | None) -> str:
    """One line: the masks' kind, where it came from and the figures behind it ('' for
    results written before the kind was recorded)."""
    if not record:
        return ""
    source = "set by the user" if record.get("source") == "user" else "decided from the masks"
    return (
        f"<p class=note>Mask kind: <b>{html.escape(str(record['kind']))}</b> ({source}; "
        f"{html.escape(str(record.get('reason', '')))}).</p>"
    )


OVERLAP_NOTE = (
    "Per test image, inside the field of view: Dice, IoU and the 95 % Hausdorff distance "
    "(MONAI's DiceMetric, MeanIoU, HausdorffDistanceMetric), averaged over the test images; "
    "F1 pools the pixels of all test images instead"
)


def overlap_section(u: dict[str, Any]) -> str:
    """Dice, IoU and HD95 of every arm (mean ± std over seeds), and each one's gain over the
    real arm with its interval; '' for results written before they were scored."""
    first = next(iter(u["arms"].values()))
    if "dice" not in first["mean"]:
        return ""
    gains = u.get("score_gain_over_real") or {}
    rows = []
    for arm, r in u["arms"].items():
        row = [arm] + [mean_std(r, k) for k in OVERLAP_SCORES]
        if gains:
            row += [gain_text(gains.get(k, {}).get(arm)) for k in OVERLAP_SCORES]
        rows.append(row)
    header = ["arm", *(OVERLAP_LABELS[k] for k in OVERLAP_SCORES)]
    if gains:
        header += [f"{OVERLAP_LABELS[k]} − real (95 % interval)" for k in OVERLAP_SCORES]
    return (
        "<h3>Foreground overlap and boundary distance</h3><p class=note>"
        f"{html.escape(u.get('overlap_definition', OVERLAP_NOTE))}. Mean ± std over the seeds; "
        "intervals: the two-level bootstrap of the F1 gain, over the per-image scores. A lower "
        "HD95 is better, so there a negative gain favours the arm.</p>" + table(header, rows)
    )


def utility_section(u: dict[str, Any]) -> str:
    """Table of the segmentation scores of every arm, mean ± std over seeds."""
    gains = u.get("f1_gain_over_real") or {}  # reports before the intervals have none
    rows = [
        [arm]
        + [mean_std(r, k) for k in UTILITY_SCORES]
        + [u["f1_relative_to_real"].get(arm)]
        + ([gain_text(gains.get(arm)), components_text(gains.get(arm))] if gains else [])
        for arm, r in u["arms"].items()
    ]
    header = ["arm", *UTILITY_SCORES, "F1 / real F1"]
    if gains:
        header.append("F1 − real F1 (95 % interval: test images and seeds)")
        header.append("interval, test images only / seeds only")
    recipe = ", ".join(f"{k}={v}" for k, v in u["recipe"].items())
    curve = ""
    if any(arm.startswith("real (") for arm in u["arms"]):
        curve = (
            '<p class=note>Arms "real (K of N)" train on the first K real images: the real '
            "arm's learning curve. Where K images score about as well as all N, the segmenter "
            "is not short of data at this budget, and no added data, real or synthetic, can "
            "raise its score: compare real + synthetic with real only at a budget where the "
            "curve still rises.</p>"
        )
    widths = ""
    first = next(iter(u["arms"].values()))
    if "sensitivity_thin" in first["mean"]:  # reports before issue 30 have none
        keys = ("sensitivity_thin", "sensitivity_medium", "sensitivity_thick")
        width_rows = [[arm] + [mean_std(r, k) for k in keys] for arm, r in u["arms"].items()]
        widths = (
            "<h3>Sensitivity by vessel width</h3><p class=note>Share of the true vessel pixels "
            "found, by the width of their vessel at the scoring size: thin ≤ 2.5 px, medium "
            "≤ 4.5 px, thick above (width on the annotation's centre line, given to each "
            "vessel pixel from its nearest centre-line pixel). A synthetic arm short on thin "
            "vessels learnt fainter capillaries than the photographs show.</p>"
            + table(["arm", "thin", "medium", "thick"], width_rows)
        )
    share = u.get("synthetic_share", 0.5)  # reports written before the option: equal shares
    mix = (
        f"<p class=note>Real + synthetic arms draw {share:.0%} of their training patches from "
        f"the synthetic set and {1 - share:.0%} from the real one.</p>"
    )
    scored = {r.get("scored_at", "native") for r in u["arms"].values()}
    where = {
        frozenset({"native"}): "at native size (predictions mapped back to the original files)",
        frozenset({"working"}): "at the working resolution (the test set records no original "
        "files, e.g. phantoms)",
    }.get(frozenset(scored), "partly at native size, partly at the working resolution")
    return (
        "<h2>Utility: train on synthetic, test on real</h2>"
        f"<p class=note>Same segmentation recipe and step budget for every arm ({recipe}); "
        f"seeds {u['seeds']}; scores on the held-out real images {where}, pixels inside "
        "the field-of-view mask only, threshold 0.5; F1 = Dice of the foreground (the vessel "
        "class), its pixels pooled over the test images.</p>"
        + mask_kind_note(u.get("mask_kind"))
        + table(header, rows)
        + (gain_note(gains) if gains else "")
        + overlap_section(u)
        + curve
        + mix
        + widths
    )


def gain_note(gains: dict[str, Any]) -> str:
    """The definition of the gain interval, as the results state it (older results: the
    single-level bootstrap over the test images they were computed with)."""
    definition = next((g.get("definition") for g in gains.values() if g), None)
    if definition is None:
        definition = (
            "(older result) a paired bootstrap over the held-out images only, seeds fixed: "
            "narrower than the truth"
        )
    return (
        f"<p class=note>{html.escape(definition)} The ± columns show only the seeds' spread of "
        "each arm's own score. 'Share of draws with gain > 0' describes the bootstrap draws; "
        "it is not a p-value.</p>"
    )


def _interval(values: list[float]) -> str:
    return f"{values[0]:+.4f} … {values[1]:+.4f}"


def gain_text(gain: dict[str, Any] | None) -> str:
    """'+0.0094 (+0.0021 … +0.0160)' for an arm's F1 gain over real, '' without one."""
    if not gain:
        return ""
    return f"{gain['gain']:+.4f} ({_interval(gain['interval'])})"


def components_text(gain: dict[str, Any] | None) -> str:
    """The interval with one source of noise held fixed, and the share of draws above 0."""
    if not gain or "components" not in gain:
        return ""
    c = gain["components"]
    share = gain["share_of_bootstrap_draws_with_gain_above_0"]
    return (
        f"{_interval(c['test_images_only'])} / {_interval(c['seeds_only'])}; "
        f"share of draws with gain > 0: {share:.0%}"
    )


ROLE_NOTES = {
    "test": "the test split: no choice of this evaluation's recipe was made on it",
    "val": "a validation split: settings may have been chosen on it, so its figures are "
    "after selection and optimistic",
    "holdout": "held out from training; whether choices were made on it is not recorded "
    "(prepare --val / --test record the role)",
}


def provenance_section(p: dict[str, Any]) -> str:
    """Which images trained what: each split's size and content digest, and the test's role."""
    role = p.get("test_role")
    note = ROLE_NOTES.get(role, "its role (validation or test) is not recorded")
    rows = [
        [name, entry.get("count"), str(entry.get("digest", ""))[:16], entry.get("source") or ""]
        for name, entry in p["splits"].items()
    ]
    return (
        "<h2>Data provenance</h2><p class=note>Every image is identified by the SHA-256 of its "
        "decoded pixels; a split's digest is the SHA-256 of its sorted image hashes. The "
        "evaluation checked that no test image is among the images that trained any "
        f"segmenter or generator listed here. The utility scores come from {html.escape(note)}."
        "</p>" + table(["split", "images", "digest (first 16 hex)", "source"], rows)
    )


REFERENCE_HEADER = [
    "set",
    "{what}",
    "sizes (A vs compared)",
    "synthetic median [5–95 %]",
    "real vs real median [5–95 %]",
    "share of splits synthetic further",
    "verdict",
]


def _spread_text(spread: dict[str, float]) -> str:
    """'0.0123 [0.0081 – 0.0190]': a median with its 5-95 % range over the splits."""
    return f"{fmt(spread['median'])} [{fmt(spread['p5'])} – {fmt(spread['p95'])}]"


def reference_table(sets: dict[str, Any], family: str, what: str) -> str:
    """One table of a metric family: per set and metric, the synthetic figure and the
    real-vs-real one at the same sizes, the share of splits where the synthetic one is
    further from ideal, and the verdict."""
    rows = []
    for name, s in sets.items():
        z = s["sizes"]
        sizes = f"{z['a']} vs {z['compared']} (of {z['m_synthetic']})"
        for metric, v in s["matched"].get(family, {}).items():
            rows.append(
                [
                    name,
                    metric,
                    sizes,
                    _spread_text(v["synthetic"]),
                    _spread_text(v["real_vs_real"]),
                    v["share_of_splits_synthetic_further"],
                    v["verdict"],
                ]
            )
    return table([h.format(what=what) for h in REFERENCE_HEADER], rows)


def mask_statistics(f: dict[str, Any], sets: dict[str, Any]) -> list[str]:
    """The table of the mask statistics that apply: vessel statistics for vessel masks,
    object statistics for compact ones (whichever family the results hold)."""
    out = []
    if any("vessels" in s["matched"] for s in sets.values()):
        out.append(
            "<h3>Vessel statistics (Stage I on its own)</h3><p class=note>Relative difference "
            "of the means of each per-image statistic, (compared − A) / |A|.</p>"
        )
        out.append(reference_table(sets, "vessels", "statistic"))
    if any("objects" in s["matched"] for s in sets.values()):
        definition = html.escape(f.get("objects_definition", ""))
        out.append(
            "<h3>Object statistics (Stage I on its own)</h3>"
            f"<p class=note>Compact objects, {definition}.</p>"
        )
        out.append(reference_table(sets, "objects", "statistic"))
    return out


def fidelity_section(f: dict[str, Any]) -> str:
    """Intensity KL, sharpness, vessel statistics and feature metrics of every synthetic set,
    each beside its real-vs-real reference at the same sample sizes; the mask memorisation
    table."""
    sets = {name: s for name, s in f["sets"].items() if "matched" in s}
    ref = f["reference"]
    directions = "; ".join(f"{k}: {v}" for k, v in ref["distance_from_ideal"].items())
    out = [
        "<h2>Fidelity: how close are the distributions</h2>",
        mask_kind_note(f.get("mask_kind")),
        f"<p class=note>Every figure is read against a real-vs-real reference taken at the same "
        f"sample sizes, since KL, FID and the rest all move with the number of images: "
        f'{html.escape(ref["definition"])}. "Share of splits synthetic further": the share of '
        f"splits in which the synthetic figure is further from ideal than the real-vs-real one "
        f"({html.escape(directions)}). The verdict says whether the synthetic median lies "
        "within the real-vs-real 5–95 % range.</p>",
        f"<h3>Intensity histograms</h3><p class=note>{html.escape(f['kl_definition'])}; "
        "A is P_real.</p>",
        reference_table(sets, "kl", "channel"),
        f"<h3>Sharpness</h3><p class=note>{html.escape(f['sharpness_definition'])}; here the "
        "ratio of the compared images' median to A's.</p>",
        reference_table(sets, "sharpness", "figure"),
        *mask_statistics(f, sets),
    ]
    critics = {
        n: s["mask_critic"] for n, s in f["sets"].items() if "auc" in s.get("mask_critic", {})
    }
    if critics:
        first = next(iter(critics.values()))
        rows = [
            [n, c["auc"], f"{c['interval'][0]:.3f} … {c['interval'][1]:.3f}", c["n_real"],
             c["n_synthetic"]]
            for n, c in critics.items()
        ]  # fmt: skip
        out.append(
            f"<h3>Mask critic</h3><p class=note>{html.escape(first['definition'])} Its "
            "reference is chance, 0.5: a critic that cannot tell two real halves apart scores "
            "there by construction; with few masks the interval is wide.</p>"
            + table(["set", "AUC", "95 % interval", "real masks", "generated masks"], rows)
        )
    out.append(
        "<h3>Diversity and memorisation of the masks</h3><p class=note>For each mask, the Dice "
        "of its nearest neighbour among the real training masks (as given and mirrored) and "
        "among the other masks of its set, at 128 px. Near 1 = a copy / a collapse; held-out "
        "real masks show what new but realistic looks like.</p>"
    )
    nn_rows = []
    for name, s in f["sets"].items():
        nn = s.get("mask_nearest_neighbours", {})
        for key, label in (("generated_to_train", "train"), ("generated_to_generated", "own set")):
            if key in nn:
                v = nn[key]
                nn_rows.append([name, label] + [v[k] for k in ("median", "p95", "max")])
                nn_rows[-1].append(v["fraction_above_0.9"])
    out.append(table(["set", "nearest", "median", "p95", "max", "share > 0.9"], nn_rows))
    # Measured on DRIVE (docs/drive512.md, "Rendering in windows"): the domain encoder's FID
    # barely moves when the photos are blurred, so the report says what it can vouch for.
    domain = f["extractor"].startswith("synthmed-domain-encoder")
    caveat = (
        " The domain encoder (no Inception weights given) reads colour and layout far more "
        "than sharpness: on DRIVE a 9 px blur of the held-out photos moved their FID by 3 % "
        "(measured with the encoder's earlier training on the real images). "
        "Judge sharpness by the sharpness table and the sample grid."
        if domain
        else ""
    )
    trained_on = f.get("extractor_training_data", "unknown data")
    out.append(
        f"<h3>Feature metrics</h3><p class=note>Feature extractor: <b>{html.escape(f['extractor'])}"
        f"</b>, trained on {html.escape(trained_on)}: it saw none of the compared images. "
        "Numbers from different extractors are not comparable, nor with published FIDs. With "
        "this few images FID is biased upwards: read it against the real-vs-real column at the "
        f"same sizes, not against zero.{caveat}</p>"
    )
    out.append(reference_table(sets, "features", "metric"))
    return "".join(out)


def write_report(
    out: str | Path,
    metrics: dict[str, Any],
    figures: dict[str, bytes | None],
    title: str = "SynthMed evaluation",
) -> Path:
    """Write ``metrics.json``, ``figures/*.png`` and ``report.html``; return the HTML path."""
    out = Path(out)
    parts = [f"<!doctype html><meta charset=utf-8><title>{title}</title><style>{CSS}</style>"]
    parts.append(f"<h1>{html.escape(title)}</h1>")
    ctx = metrics.get("context", {})
    if ctx:
        parts.append(f"<p>Command:</p><pre>{html.escape(ctx.get('command', ''))}</pre>")
        parts.append(
            f"<p class=note>Machine: {html.escape(json.dumps(ctx.get('machine', {})))}</p>"
        )
    for name, png in figures.items():
        if png is None:
            continue
        atomic_write(out / "figures" / f"{name}.png", lambda p, b=png: p.write_bytes(b))
        uri = "data:image/png;base64," + base64.b64encode(png).decode()
        parts.append(f"<h2>{html.escape(name.replace('_', ' ').capitalize())}</h2>")
        parts.append(f'<img alt="{html.escape(name)}" src="{uri}">')
    if "provenance" in metrics:
        parts.append(provenance_section(metrics["provenance"]))
    if "utility" in metrics:
        parts.append(utility_section(metrics["utility"]))
    if "fidelity" in metrics:
        parts.append(fidelity_section(metrics["fidelity"]))
    write_json(out / "metrics.json", metrics)
    text = "\n".join(parts)
    atomic_write(out / "report.html", lambda p: p.write_text(text, encoding="utf-8"))
    return out / "report.html"
