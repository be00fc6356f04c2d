"""The classical KT models (PFA, BKT): fitting on prepared logs, and saving / loading as plain
arrays in a safetensors file (several models in one file under "<name>." prefixes).

They serve twice: as backbones of their own, and as planning companions of any backbone (see
`PathHParams.plan_models`): fitted on the same students, averaged with the backbone's predictions
when recommend / plan_path look ahead, so no single student model's quirks drive the plan.
"""
from __future__ import annotations

from pathlib import Path

CLASSICAL = ("pfa", "bkt")


def fit(name: str, vocab: dict, items: list, correct: list, hp):
    from . import data as D

    if name == "bkt":
        from .bkt import BKT

        return BKT(vocab["q"], len(vocab["skills"])).fit(items, correct, iters=hp.em_iters)
    from .pfa import PFA

    return PFA(vocab["q"], len(vocab["skills"]), item_terms=not D.items_are_skills(vocab)).fit(items, correct, C=hp.pfa_c)


def save(models: dict, path: Path, *, prefixed: bool = True) -> dict:
    """Write every model's arrays into one file; returns {name: meta} for config.json."""
    from safetensors.numpy import save_file

    arrays, metas = {}, {}
    for name, m in models.items():
        a, metas[name] = m.state_dict()
        arrays.update({(f"{name}.{k}" if prefixed else k): v for k, v in a.items()})
    save_file(arrays, str(path))
    return metas


def load(path: Path, metas: dict, q: list[list[int]], *, prefixed: bool = True) -> dict:
    from safetensors.numpy import load_file

    from .bkt import BKT
    from .pfa import PFA

    arrays = load_file(str(path))
    out = {}
    for name, meta in metas.items():
        if name not in CLASSICAL:
            raise ValueError(f"{path}: unknown classical model {name!r}")
        own = {k[len(name) + 1:]: v for k, v in arrays.items() if k.startswith(f"{name}.")} if prefixed else arrays
        out[name] = (PFA if name == "pfa" else BKT).from_state_dict(own, meta, q)
    return out
