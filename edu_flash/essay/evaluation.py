"""Essay-scoring metrics in the form ASAP papers and RSMTool report them."""
from __future__ import annotations

from ..core import metrics as M


def essay_metrics(human, machine_raw, prompts, ranges: dict, groups: dict | None = None) -> dict:
    """human: true scores; machine_raw: unrounded predictions on the score scale (rounded here)."""
    machine = [round(v) for v in machine_raw]
    per_prompt = {}
    for p in sorted(set(prompts), key=lambda x: (len(x), x)):
        idx = [i for i, q in enumerate(prompts) if q == p]
        lo, hi = ranges[p]
        per_prompt[p] = M.qwk([human[i] for i in idx], [machine[i] for i in idx], lo, hi)
    lo = min(r[0] for r in ranges.values())
    hi = max(r[1] for r in ranges.values())
    out = {"n": len(human), "qwk": M.qwk(human, machine, lo, hi),
           "qwk_avg": sum(per_prompt.values()) / len(per_prompt), "qwk_per_prompt": per_prompt,
           "rmse": M.rmse(human, machine), "pearson": M.pearson(human, machine_raw)}
    if groups:
        out["subgroups"] = {}
        for col, values in groups.items():
            out["subgroups"][col] = {}
            for g in sorted(set(values)):
                idx = [i for i, v in enumerate(values) if v == g]
                h, m = [human[i] for i in idx], [machine[i] for i in idx]
                out["subgroups"][col][g] = {"n": len(idx), "qwk": M.qwk(h, m, lo, hi),
                                            "smd": _smd_within_prompt(h, m, [prompts[i] for i in idx], ranges)}
    return out


def _smd_within_prompt(h, m, prompts, ranges) -> float:
    """SMD on [0,1]-scaled scores when prompts with different ranges are pooled."""
    if len(set(prompts)) == 1:
        return M.smd(h, m)
    scale = [(ranges[p][1] - ranges[p][0]) for p in prompts]
    lo = [ranges[p][0] for p in prompts]
    return M.smd([(v - a) / s for v, a, s in zip(h, lo, scale)], [(v - a) / s for v, a, s in zip(m, lo, scale)])


def card_view(metrics: dict) -> tuple[dict, dict]:
    """(scalar metrics, tables) for the model card."""
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    tables = {"QWK per prompt": [{"prompt": p, "qwk": q} for p, q in metrics["qwk_per_prompt"].items()]}
    for col, groups in metrics.get("subgroups", {}).items():
        tables[f"By subgroup: {col}"] = [{col: g, **v} for g, v in groups.items()]
    return scalars, tables
