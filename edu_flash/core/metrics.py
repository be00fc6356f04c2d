"""Agreement and fairness metrics shared by tasks, on top of scikit-learn and scipy."""
from __future__ import annotations

import math
from typing import Sequence


def qwk(human: Sequence[int], machine: Sequence[int], lo: int | None = None, hi: int | None = None) -> float:
    """Quadratic weighted kappa on integer scores.

    The full label range must be given to scikit-learn: otherwise it builds the weights from the
    indices of the labels it happens to see, which is wrong when a range has gaps (ASAP prompt 8).
    """
    from sklearn.metrics import cohen_kappa_score

    h = [int(v) for v in human]
    m = [int(v) for v in machine]
    lo = min(h + m) if lo is None else int(lo)
    hi = max(h + m) if hi is None else int(hi)
    if len(set(h)) == 1 and h == m:
        return 1.0
    k = cohen_kappa_score(h, m, weights="quadratic", labels=list(range(lo, hi + 1)))
    return float(k) if math.isfinite(k) else 0.0


def rmse(y_true, y_pred) -> float:
    from sklearn.metrics import root_mean_squared_error

    return float(root_mean_squared_error(y_true, y_pred))


def pearson(x, y) -> float:
    import numpy as np

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    from scipy.stats import pearsonr

    return float(pearsonr(x, y)[0])


def smd(human, machine) -> float:
    """Standardized mean difference, machine minus human, over the human SD (RSMTool's convention)."""
    import numpy as np

    h, m = np.asarray(human, float), np.asarray(machine, float)
    sd = h.std(ddof=1) if len(h) > 1 else 0.0
    return float((m.mean() - h.mean()) / sd) if sd > 0 else float("nan")
