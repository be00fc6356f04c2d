"""Bootstrap intervals over students (the unit that was sampled), for mean gains, paired
differences and the share of the oracle's gain, with scipy's bootstrap (percentile method)."""
from __future__ import annotations

import inspect

import numpy as np


def _bootstrap(samples: tuple, statistic, *, paired: bool, n_boot: int, seed: int, level: float):
    from scipy.stats import bootstrap

    rng = np.random.default_rng(seed)
    kw = {"rng": rng} if "rng" in inspect.signature(bootstrap).parameters else {"random_state": rng}
    res = bootstrap(samples, statistic, paired=paired, vectorized=True, n_resamples=n_boot, method="percentile",
                    confidence_level=level, **kw)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mean_interval(x, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Mean of per-student values and its bootstrap interval (resampling students)."""
    x = np.asarray(x, float)
    if len(x) < 2 or np.ptp(x) == 0:
        return {"mean": float(x.mean()), "low": float(x.mean()), "high": float(x.mean())}
    lo, hi = _bootstrap((x,), lambda a, axis: a.mean(axis), paired=False, n_boot=n_boot, seed=seed, level=level)
    return {"mean": float(x.mean()), "low": lo, "high": hi}


def share_interval(num, den, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """mean(num) / mean(den) over the same students (e.g. recommender - random over oracle - random),
    resampling students in pairs. nan when the denominator's mean is not positive."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    if den.mean() <= 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan")}
    ratio = lambda a, b, axis: a.mean(axis) / b.mean(axis)
    lo, hi = _bootstrap((num, den), ratio, paired=True, n_boot=n_boot, seed=seed, level=level)
    return {"mean": float(num.mean() / den.mean()), "low": lo, "high": hi}


def fmt(ci: dict, digits: int = 4) -> str:
    if ci["mean"] != ci["mean"]:
        return "n/a"
    return f"{ci['mean']:+.{digits}f} [{ci['low']:+.{digits}f}, {ci['high']:+.{digits}f}]"
