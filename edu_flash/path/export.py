"""PathRecommender's ONNX export (dkt / sakt / simplekt): one student history per row in,
P(correct) on each candidate item as the next response out (what predict / recommend use). The
item vocabulary, the skills of each item and the window go beside it."""
from __future__ import annotations

import torch

SNIPPET = '''```python
import json
import numpy as np
import onnxruntime as ort

meta = json.load(open("{name}.json"))                      # written beside the model by export()
index = {{item: i + 1 for i, item in enumerate(meta["items"])}}   # 0 is padding
session = ort.InferenceSession("{name}")
history = {history}                                       # (item, correct), oldest first
h = history[-(meta["window"] - 1):]                       # the context the model was trained with
feed = {{"items": np.array([[index[str(i)] for i, _ in h] or [0]], dtype=np.int64),   # item names as text
        "resp": np.array([[c for _, c in h] or [0]], dtype=np.float32),
        "lengths": np.array([len(h)], dtype=np.int64),
        "cand": np.arange(1, len(meta["items"]) + 1, dtype=np.int64)}}
p_correct = dict(zip(meta["items"], session.run(None, feed)[0][0]))   # P(correct) on every item next
mastery = {{s: float(np.mean([p_correct[i] for i in items])) for s, items in meta["skill_items"].items()}}
```'''


class NextProbs(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, items, resp, lengths, cand):
        return torch.sigmoid(self.m.next_logits(items, resp, lengths, cand).float())


def spec(task):
    from ..core.export import ExportSpec

    v = task.state["vocab"]
    n_items = len(v["items"])

    def example(sz):
        B, L = sz["batch"], sz["length"]
        g = torch.Generator().manual_seed(B * 1009 + L)
        items = torch.randint(1, n_items + 1, (B, L), generator=g)
        resp = torch.randint(0, 2, (B, L), generator=g).float()
        lengths = torch.full((B,), L)
        if B > 1:
            lengths[-1] = L // 2
        if B > 2:
            lengths[1] = 0  # a student with no history yet
        keep = torch.arange(L).unsqueeze(0) < lengths.unsqueeze(1)
        return {"items": items * keep, "resp": resp * keep, "lengths": lengths,
                "cand": torch.randint(1, n_items + 1, (sz["candidates"],), generator=g)}

    skill_items = {}
    for i, skills in enumerate(v["q"]):
        for s in skills:
            skill_items.setdefault(v["skills"][s - 1], []).append(v["items"][i])
    hist = [(v["items"][0], 1), (v["items"][min(1, n_items - 1)], 0)]
    return ExportSpec(
        module=NextProbs(task.model), example=example, sizes={"batch": 2, "length": 5, "candidates": 4},
        max_sizes={"length": task.hparams.window - 1},  # predict keeps the last window - 1 responses
        dynamic={"items": {0: "batch", 1: "length"}, "resp": {0: "batch", 1: "length"}, "lengths": {0: "batch"},
                 "cand": {0: "candidates"}},
        output="p_correct", output_axes={0: "batch", 1: "candidates"},
        meta={"task": task.task_name, "backbone": task.backbone, "window": task.hparams.window,
              "items": v["items"], "skill_items": skill_items,
              "output_is": "P(correct) of each candidate item as the next response after each history"},
        card=lambda name: SNIPPET.format(name=name, history=repr(hist)))
