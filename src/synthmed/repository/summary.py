"""The few evaluation figures a dataset page leads with, read from ``synthmed evaluate all``'s
``metrics.json`` (any missing part is skipped: the full file stays downloadable)."""

from __future__ import annotations

from typing import Any


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def metrics_summary(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Rows for the page: segmentation utility per training arm, fidelity per set.

    ``utility``: arm, F1 mean, F1 std, F1 relative to real; ``fidelity``: set, intensity KL,
    FID, KID; ``kl_floor``: the real-vs-real KL; ``headline``: the synthetic-only F1 relative
    to real, for the catalogue's cards.
    """
    out: dict[str, Any] = {"utility": [], "fidelity": [], "kl_floor": None, "headline": None}
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
    out["kl_floor"] = _num((fidelity.get("kl_real_floor") or {}).get("mean"))
    for name, s in (fidelity.get("sets") or {}).items():
        if not isinstance(s, dict):
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
