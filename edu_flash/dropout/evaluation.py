"""Early-warning metrics: ranking (ROC-AUC, PR-AUC, precision@k), the decision at a threshold (F1),
probabilities (Brier, calibration), and fairness (AUC per subgroup, ABROCA), plus the by-week plot.

ABROCA (Gardner, Brooks & Baker 2019) is the area between two groups' ROC curves; for a column with
more than two groups each group is compared with the largest one and the column reports the max.
"""
from __future__ import annotations

import math

import numpy as np


def _auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def abroca(y_a, p_a, y_b, p_b, grid: int = 10001) -> float:
    from sklearn.metrics import roc_curve

    if not (0 < y_a.sum() < len(y_a) and 0 < y_b.sum() < len(y_b)):
        return float("nan")
    x = np.linspace(0, 1, grid)
    curves = []
    for y, p in ((y_a, p_a), (y_b, p_b)):
        fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
        curves.append(np.interp(x, fpr, tpr))
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 names it trapz
    return float(trapezoid(np.abs(curves[0] - curves[1]), x))


def calibration(y, p, bins: int = 10) -> tuple[float, list[dict]]:
    """Expected calibration error over equal-width risk bins, and the bins."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            rows.append({"risk bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int(m.sum()),
                         "mean risk": float(p[m].mean()), "observed rate": float(y[m].mean())})
            ece += m.sum() / len(y) * abs(p[m].mean() - y[m].mean())
    return float(ece), rows


def best_f1_threshold(y, p) -> float:
    from sklearn.metrics import precision_recall_curve

    if not 0 < y.sum() < len(y):
        return 0.5
    prec, rec, thr = precision_recall_curve(y, p)
    f1 = 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12)
    return float(thr[int(np.argmax(f1))])


def binary_metrics(y, p, *, threshold: float, k: int, groups: dict[str, list[str]] | None = None) -> dict:
    """y: 0/1, p: calibrated risk, both over the at-risk population at one week."""
    from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, precision_score, recall_score

    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    both = 0 < y.sum() < len(y)
    flag = (p >= threshold).astype(int)
    k = int(min(k, len(y)))
    top = np.argsort(-p, kind="stable")[:k]
    ece, bins = calibration(y, p) if len(y) else (float("nan"), [])
    out = {"n": int(len(y)), "positives": int(y.sum()), "prevalence": float(y.mean()) if len(y) else float("nan"),
           "roc_auc": _auc(y, p), "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
           "threshold": float(threshold), "f1": float(f1_score(y, flag, zero_division=0)),
           "precision": float(precision_score(y, flag, zero_division=0)),
           "recall": float(recall_score(y, flag, zero_division=0)), "flagged": int(flag.sum()),
           "flagged_share": float(flag.mean()) if len(y) else float("nan"),
           "k": k, "precision_at_k": float(y[top].mean()) if k else float("nan"),
           "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"), "ece": ece, "calibration": bins}
    if groups:
        out["subgroups"], out["abroca"] = {}, {}
        for col, labels in groups.items():
            labels = np.asarray(labels)
            names = sorted(set(labels.tolist()), key=lambda g: (-int((labels == g).sum()), g))
            out["subgroups"][col] = {g: {"n": int((labels == g).sum()), "positives": int(y[labels == g].sum()),
                                         "roc_auc": _auc(y[labels == g], p[labels == g])} for g in names}
            ref = names[0]
            gaps = {g: abroca(y[labels == ref], p[labels == ref], y[labels == g], p[labels == g]) for g in names[1:]}
            finite = [v for v in gaps.values() if not math.isnan(v)]
            out["abroca"][col] = {"reference": ref, "max": max(finite) if finite else float("nan"), "vs": gaps}
    return out


def card_view(m: dict, week: int) -> tuple[dict, dict]:
    """(scalar metrics, tables) for the model card."""
    scalars = {"week": week, **{k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}}
    tables = {}
    for col, groups in m.get("subgroups", {}).items():
        ab = m["abroca"][col]
        tables[f"By subgroup: {col} (ABROCA vs {ab['reference']})"] = [
            {col: g, **v, "abroca": ab["vs"].get(g, float("nan")) if g != ab["reference"] else 0.0}
            for g, v in groups.items()]
    if m.get("calibration"):
        tables["Calibration (risk bins)"] = m["calibration"]
    return scalars, tables


def plot_by_week(table, path, title: str) -> None:
    """AUC by week, one line per backbone, as a PNG (matplotlib's Agg canvas; no display needed)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("early_warning's plot needs matplotlib: pip install matplotlib "
                          "(or pass png=None for the table only)") from e
    fig = Figure(figsize=(8, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name, rows in table.groupby("backbone", sort=False):
        ax.plot(rows["week"], rows["roc_auc"], marker="o", ms=3, label=name)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("course week (features known by the end of the week)")
    ax.set_ylabel("ROC-AUC")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(str(path))
