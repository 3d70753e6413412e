"""The few evaluation figures a dataset page leads with, read from ``synthmed evaluate all``'s
``metrics.json`` (any missing part is skipped: the full file stays downloadable)."""

from __future__ import annotations

from typing import Any


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def metrics_summary(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Rows for the page: segmentation utility per training arm, fidelity per set.

    ``utility``: arm, F1 mean, F1 std, F1 relative to real; ``fidelity``: set, intensity KL,
    FID, KID (medians over the matched real splits where the file has them); ``kl_floor``: the
    real-vs-real KL (at the same sizes); ``extractor``: the feature network behind FID / KID
    (numbers from different ones are not comparable); ``headline``: the synthetic-only F1
    relative to real, for the catalogue's cards.
    """
    out: dict[str, Any] = {"utility": [], "fidelity": [], "kl_floor": None, "headline": None}
    out["extractor"] = None
    if not isinstance(metrics, dict):
        return out
    utility = metrics.get("utility") or {}
    relative = utility.get("f1_relative_to_real") or {}
    for arm, r in (utility.get("arms") or {}).items():
        if not isinstance(r, dict):
            continue
        mean, std = (r.get("mean") or {}).get("f1"), (r.get("std") or {}).get("f1")
        out["utility"].append(
            {"arm": arm, "f1": _num(mean), "std": _num(std), "relative": _num(relative.get(arm))}
        )
        if arm != "real" and "+" not in arm and out["headline"] is None:
            out["headline"] = _num(relative.get(arm))
    fidelity = metrics.get("fidelity") or {}
    extractor = fidelity.get("extractor") if isinstance(fidelity, dict) else None
    out["extractor"] = extractor if isinstance(extractor, str) else None
    out["kl_floor"] = _num((fidelity.get("kl_real_floor") or {}).get("mean"))  # older files
    for name, s in (fidelity.get("sets") or {}).items():
        if not isinstance(s, dict):
            continue
        if isinstance(s.get("matched"), dict):
            row = _matched_row(s)
            floor = row.pop("kl_floor")  # one per set; the first set's is shown
            if out["kl_floor"] is None:
                out["kl_floor"] = floor
            out["fidelity"].append({"set": name, **row})
            continue
        features = s.get("features") or {}
        out["fidelity"].append(
            {
                "set": name,
                "count": s.get("count"),
                "kl": _num((s.get("kl") or {}).get("mean")),
                "fid": _num(features.get("fid")),
                "kid": _num(features.get("kid_mean")),
            }
        )
    return out


def _matched_row(s: dict[str, Any]) -> dict[str, Any]:
    """A set's medians over the matched real splits (fidelity.matched_fidelity), and the
    real-vs-real KL median at the same sizes as ``kl_floor``."""
    matched = s["matched"]

    def median(family: str, metric: str, side: str = "synthetic") -> float | None:
        summary = (matched.get(family) or {}).get(metric) or {}
        return _num((summary.get(side) or {}).get("median"))

    return {
        "count": s.get("count"),
        "kl": median("kl", "mean"),
        "fid": median("features", "fid"),
        "kid": median("features", "kid_mean"),
        "kl_floor": median("kl", "mean", "real_vs_real"),
    }
