"""Agreement and fairness metrics shared by tasks, on top of scikit-learn and scipy."""
from __future__ import annotations

import math
from typing import Sequence


def qwk(human: Sequence[float], machine: Sequence[float], lo: float | None = None, hi: float | None = None,
        step: float = 1.0) -> float:
    """Quadratic weighted kappa on the levels lo, lo + step, ..., hi (whole points by default).

    The full set of levels must be given to scikit-learn: otherwise it builds the weights from the
    indices of the labels it happens to see, which is wrong when a range has gaps (ASAP prompt 8).
    Scores are mapped to level numbers, so half-point rubrics get all of their levels too.
    """
    from sklearn.metrics import cohen_kappa_score

    lo = min(list(human) + list(machine)) if lo is None else lo
    hi = max(list(human) + list(machine)) if hi is None else hi
    h = [int(round((v - lo) / step)) for v in human]
    m = [int(round((v - lo) / step)) for v in machine]
    if len(set(h)) == 1 and h == m:
        return 1.0
    k = cohen_kappa_score(h, m, weights="quadratic", labels=list(range(int(round((hi - lo) / step)) + 1)))
    return float(k) if math.isfinite(k) else 0.0


def qwk_samples(human, machine):
    """QWK of many samples at once (rows of 2-D arrays of scores), in closed form.

    With quadratic weights the kappa of a confusion matrix reduces to
    1 - sum (h - m)^2 / (sum h^2 + sum m^2 - 2 sum h sum m / n), which equals scikit-learn's on
    evenly spaced levels; the bootstrap uses it because it needs no matrix per sample.
    """
    import numpy as np

    h, m = np.atleast_2d(np.asarray(human, float)), np.atleast_2d(np.asarray(machine, float))
    n = h.shape[1]
    num = ((h - m) ** 2).sum(1)
    den = (h ** 2).sum(1) + (m ** 2).sum(1) - 2 * h.sum(1) * m.sum(1) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        k = 1 - num / den
    return np.where(den > 1e-12, k, np.where(num < 1e-12, 1.0, 0.0))


def smd_samples(human, machine):
    """SMD (machine minus human over the human SD) of many samples at once; NaN where SD is 0."""
    import numpy as np

    h, m = np.atleast_2d(np.asarray(human, float)), np.atleast_2d(np.asarray(machine, float))
    sd = h.std(1, ddof=1) if h.shape[1] > 1 else np.zeros(len(h))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, (m.mean(1) - h.mean(1)) / sd, np.nan)


def bootstrap_indices(strata: Sequence, n_samples: int, seed: int = 0, chunk: int = 250):
    """Chunks of bootstrap resamples (2-D arrays of row indices), drawn within each stratum so every
    resample keeps the strata's sizes (a prompt's essays stay that prompt's)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    groups: dict = {}
    for i, s in enumerate(strata):
        groups.setdefault(s, []).append(i)
    parts = [np.asarray(v, dtype=np.int64) for v in groups.values()]
    for start in range(0, n_samples, chunk):
        b = min(chunk, n_samples - start)
        yield np.concatenate([idx[rng.integers(0, len(idx), size=(b, len(idx)))] for idx in parts], axis=1)


def interval(values, level: float = 0.95) -> list[float]:
    """The percentile interval of bootstrap values (NaNs ignored)."""
    import numpy as np

    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return [float("nan"), float("nan")]
    a = (1 - level) / 2 * 100
    return [float(np.percentile(v, a)), float(np.percentile(v, 100 - a))]


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
