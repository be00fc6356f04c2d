"""Offline model-card validation: the card must load with huggingface_hub, its `model-index` must
parse into eval results that round-trip, and every result must be a finite number. A card without
results is valid only when it says so (a model saved before any `evaluate`). (The Hub's own
`ModelCard.validate` needs the network.)"""
from __future__ import annotations

import math
import os

from .errors import CheckpointError


def check_card(path: str | os.PathLike) -> dict:
    """{"results": n, "metrics": [...]} for a valid card; CheckpointError naming the problem otherwise."""
    from pathlib import Path

    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import eval_results_to_model_index

    from .card import NO_RESULTS

    if not Path(path).is_file():  # ModelCard.load would take a missing path for a hub repo id
        raise CheckpointError(f"{path}: no such model card (a model folder's README.md or a .md file)")
    try:
        card = ModelCard.load(str(path))  # raises on broken YAML or an unparsable model-index
    except Exception as e:  # noqa: BLE001 - any load failure means an invalid card
        raise CheckpointError(f"{path}: not a valid model card: {e}") from None
    data = card.data
    meta = data.to_dict()
    if meta.get("library_name") != "edu-flash":
        raise CheckpointError(f"{path}: library_name is {meta.get('library_name')!r}, not 'edu-flash'")
    results = data.eval_results or []
    if not results:
        if NO_RESULTS in card.text:
            return {"results": 0, "metrics": []}
        raise CheckpointError(f"{path}: no model-index results, and the card does not say it has none "
                              "(evaluate before saving)")
    for r in results:
        v = r.metric_value
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise CheckpointError(f"{path}: metric {r.metric_type!r} on {r.dataset_name!r} is not a finite number")
    if eval_results_to_model_index(data.model_name, results) != meta["model-index"]:
        raise CheckpointError(f"{path}: model-index does not round-trip through huggingface_hub")
    return {"results": len(results), "metrics": sorted({r.metric_type for r in results})}
