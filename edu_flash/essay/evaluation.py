"""Essay-scoring metrics in the form ASAP papers and RSMTool report them, on each prompt's score grid.

Machine scores are rounded to the grid (halves upward) for QWK, RMSE and SMD; Pearson uses the
unrounded scores. QWK and SMD carry bootstrap 95% intervals (resampled within each prompt), and
subgroups smaller than `min_group_size` are listed with their size only.
"""
from __future__ import annotations

import numpy as np

from ..core import metrics as M
from ..core.data import label_str
from .grid import Grid, common_grid

MISSING = "missing"


def prompt_order(prompts) -> list[str]:
    """Prompt ids in reading order: 2 before 10, then names."""
    return sorted(set(prompts), key=lambda x: (len(x), x))


def group_label(v) -> str:
    """A subgroup value as a label; None, NaN and blank cells are the group "missing"."""
    if v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip()):
        return MISSING
    try:
        import pandas as pd

        if pd.isna(v):
            return MISSING
    except (TypeError, ValueError):
        pass
    return label_str(v)


def sort_groups(labels) -> list[str]:
    """Numbers (grades, ages) sort as numbers, other labels as text; "missing" comes last."""
    present = [g for g in set(labels) if g != MISSING]
    try:
        present.sort(key=float)
    except ValueError:
        present.sort()
    return present + ([MISSING] if MISSING in set(labels) else [])


def _smd_scale(h, m, prompts, grids):
    """Scores for SMD: as they are for one prompt, else each on its prompt's range scaled to [0, 1]."""
    if len(set(prompts)) == 1:
        return h, m
    lo = np.array([grids[p].lo for p in prompts])
    span = np.array([grids[p].hi - grids[p].lo for p in prompts])
    return (h - lo) / span, (m - lo) / span


class _Bootstrap:
    """Percentile intervals of QWK / SMD over resamples drawn within each prompt."""

    def __init__(self, n_samples: int, seed: int):
        self.n, self.seed = n_samples, seed

    def intervals(self, h, m, prompts, grids, *, per_prompt_avg: bool = True) -> dict:
        """qwk_ci, smd_ci and (per_prompt_avg) qwk_avg_ci, the mean of per-prompt QWKs per resample."""
        blocks = list(dict.fromkeys(prompts))
        sizes = [sum(1 for q in prompts if q == p) for p in blocks]
        hs, ms = _smd_scale(h, m, prompts, grids)
        cuts = np.cumsum([0] + sizes)
        pooled, per_prompt, smd = [], [], []
        for s in M.bootstrap_indices(prompts, self.n, self.seed):  # column blocks follow `blocks`
            pooled.append(M.qwk_samples(h[s], m[s]))
            smd.append(M.smd_samples(hs[s], ms[s]))
            if per_prompt_avg:
                per_prompt.append(np.mean([M.qwk_samples(h[s[:, a:b]], m[s[:, a:b]])
                                           for a, b in zip(cuts, cuts[1:])], axis=0))
        avg = {"qwk_avg_ci": M.interval(np.concatenate(per_prompt))} if per_prompt_avg else {}
        return {"qwk_ci": M.interval(np.concatenate(pooled)), **avg, "smd_ci": M.interval(np.concatenate(smd))}


def essay_metrics(human, machine_raw, prompts, grids: dict, groups: dict | None = None, *,
                  min_group_size: int = 30, bootstrap: int = 1000, seed: int = 0) -> dict:
    """human: true scores (on the grids); machine_raw: unrounded predictions on the score scale.

    grids: prompt -> Grid (or (lo, hi[, step])); groups: column -> one value per essay.
    """
    grids = {p: Grid.parse(g) for p, g in grids.items()}
    prompts = [str(p) for p in prompts]
    h = np.asarray(human, dtype=np.float64)
    raw = np.asarray(machine_raw, dtype=np.float64)
    m = np.array([grids[p].round(v) for v, p in zip(raw, prompts)], dtype=np.float64)
    per_prompt = {}
    for p in prompt_order(prompts):
        idx = [i for i, q in enumerate(prompts) if q == p]
        g = grids[p]
        per_prompt[p] = M.qwk(h[idx], m[idx], g.lo, g.hi, g.step)
    pooled = common_grid(grids.values())
    hs, ms = _smd_scale(h, m, prompts, grids)
    out = {"n": len(h), "qwk": M.qwk(h, m, pooled.lo, pooled.hi, pooled.step),
           "qwk_avg": float(np.mean(list(per_prompt.values()))), "qwk_per_prompt": per_prompt,
           "rmse": M.rmse(h, m), "pearson": M.pearson(h, raw), "smd": M.smd(hs, ms)}
    boot = _Bootstrap(bootstrap, seed) if bootstrap else None
    if boot:
        out.update(boot.intervals(h, m, prompts, grids))
    if groups:
        out["subgroups"] = {}
        for col, values in groups.items():
            labels = [group_label(v) for v in values]
            out["subgroups"][col] = {}
            for g in sort_groups(labels):
                idx = [i for i, v in enumerate(labels) if v == g]
                if len(idx) < min_group_size:
                    out["subgroups"][col][g] = {"n": len(idx), "qwk": None, "smd": None,
                                                "note": f"too few to report (fewer than {min_group_size} essays)"}
                    continue
                gp = [prompts[i] for i in idx]
                gh, gm = _smd_scale(h[idx], m[idx], gp, grids)
                res = {"n": len(idx), "qwk": M.qwk(h[idx], m[idx], pooled.lo, pooled.hi, pooled.step),
                       "smd": M.smd(gh, gm)}
                if boot:
                    res.update(boot.intervals(h[idx], m[idx], gp, grids, per_prompt_avg=False))
                out["subgroups"][col][g] = res
    return out


def traits_summary(per_trait: dict) -> dict:
    """Several traits: every metric per trait under "traits", and the mean over traits at the top."""
    keys = [k for k, v in next(iter(per_trait.values())).items() if isinstance(v, (int, float))]
    out = {k: float(np.mean([t[k] for t in per_trait.values()])) for k in keys}
    out["n"] = next(iter(per_trait.values()))["n"]
    out["traits"] = per_trait
    return out


def _ci(v) -> str:
    return "n/a" if not v or any(x != x for x in v) else f"{v[0]:.3f} to {v[1]:.3f}"


def _trait_tables(metrics: dict, grids: dict, prefix: str = "") -> dict:
    tables = {f"{prefix}QWK per prompt": [
        {"prompt": p, "score range": str(Grid.parse(grids[p])), "qwk": q} for p, q in metrics["qwk_per_prompt"].items()]}
    if "qwk_ci" in metrics:
        tables[f"{prefix}Bootstrap 95% intervals (resampled within prompts)"] = [
            {"metric": k, "value": metrics[k], "95% interval": _ci(metrics[f"{k}_ci"])}
            for k in ("qwk", "qwk_avg", "smd")]
    for col, groups in metrics.get("subgroups", {}).items():
        rows = []
        for g, v in groups.items():
            if v.get("qwk") is None:
                rows.append({col: g, "n": v["n"], "qwk": "too few to report", "qwk 95% interval": "",
                             "smd": "", "smd 95% interval": ""})
            else:
                rows.append({col: g, "n": v["n"], "qwk": v["qwk"], "qwk 95% interval": _ci(v.get("qwk_ci")),
                             "smd": v["smd"], "smd 95% interval": _ci(v.get("smd_ci"))})
        tables[f"{prefix}By subgroup: {col}"] = rows
    return tables


def card_view(metrics: dict, grids: dict) -> tuple[dict, dict]:
    """(scalar metrics, tables) for the model card; grids: trait -> prompt -> grid."""
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if "traits" not in metrics:
        return scalars, _trait_tables(metrics, next(iter(grids.values())))
    tables = {"Per trait": [{"trait": t, **{k: v[k] for k in ("qwk_avg", "qwk", "rmse", "pearson", "smd")}}
                            for t, v in metrics["traits"].items()]}
    for t, v in metrics["traits"].items():
        tables.update(_trait_tables(v, grids[t], prefix=f"{t}: "))
    return scalars, tables
