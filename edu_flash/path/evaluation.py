"""Next-response metrics and the target-zone argument shared by recommend, plan_path and evaluate_paths."""
from __future__ import annotations

from ..core.errors import ConfigError


def zone(target) -> tuple[float, float]:
    """(low, high) bounds on predicted P(correct): the "desirable difficulty" band."""
    try:
        lo, hi = (float(x) for x in target)
    except (TypeError, ValueError):
        lo, hi = -1.0, -1.0
    if not 0 <= lo <= hi <= 1:
        raise ConfigError(f"target must be (low, high) with 0 <= low <= high <= 1, got {target!r}")
    return lo, hi


def metrics(y, p) -> dict:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    y, p = np.asarray(y, float), np.asarray(p, float)
    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
    return {"auc": auc, "acc": float(((p >= 0.5) == (y == 1)).mean()), "rmse": float(np.sqrt(((p - y) ** 2).mean())),
            "responses": int(len(y))}
