"""DropoutPredictor's ONNX export (gru): the week-by-week features in (as `onnx_inputs` builds
them), the risk at every week out; the feature scaling (missing values, z-scores) and the class-
weight shift are inside the graph, so risk[:, -1] is `predict`'s risk at the requested week."""
from __future__ import annotations

import torch

SNIPPET = '''```python
import json
import onnxruntime as ort
from edu_flash import DropoutPredictor

meta = json.load(open("{name}.json"))                      # written beside the model by export()
model = DropoutPredictor.from_pretrained("path/to/model")  # its feature pipeline builds the inputs
students, feed = model.onnx_inputs(data, week=6)           # data: students (+ activity=, assessments=)
risk = ort.InferenceSession("{name}").run(None, feed)[0][:, -1]   # the risk at week 6, per student
flagged = risk >= meta["threshold"]
```'''


class Standardize(torch.nn.Module):
    """classical.Standardizer in torch: NaN -> the training mean, z-scores, missing indicators."""

    def __init__(self, scaler):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(scaler.mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(scaler.std, dtype=torch.float32))
        self.indicate = [int(i) for i in scaler.indicate]

    def forward(self, x):
        miss = torch.isnan(x)
        z = (torch.where(miss, self.mean, x) - self.mean) / self.std
        if not self.indicate:
            return z
        return torch.cat([z, miss[..., self.indicate].to(z.dtype)], dim=-1)


class Risk(torch.nn.Module):
    """Raw features -> risk at every week: scaling, the GRU, the class-weight shift, the sigmoid."""

    def __init__(self, gru, scalers, shift: float):
        super().__init__()
        self.gru, self.dyn = gru, Standardize(scalers[0])
        self.stat = Standardize(scalers[1]) if len(scalers[1].mean) else None
        self.shift = float(shift)

    def forward(self, seq, static):
        s = self.stat(static) if self.stat is not None else torch.zeros_like(static[:, :1])
        return torch.sigmoid(self.gru(self.dyn(seq), s) - self.shift)


def spec(task):
    from ..core.export import ExportSpec

    n_dyn, n_stat = len(task.scalers[0].mean), len(task.scalers[1].mean)

    def example(sz):
        g = torch.Generator().manual_seed(sz["batch"] * 1009 + sz["weeks"])
        seq = torch.randn(sz["batch"], sz["weeks"], n_dyn, generator=g).abs()
        seq[0, -1, 0] = float("nan")  # a missing value: the graph fills it like the Standardizer
        return {"seq": seq, "static": torch.randn(sz["batch"], max(1, n_stat), generator=g)}

    return ExportSpec(
        module=Risk(task.model, task.scalers, task.state["shift"]), example=example, sizes={"batch": 2, "weeks": 4},
        dynamic={"seq": {0: "batch", 1: "weeks"}, "static": {0: "batch"}}, output="risk",
        output_axes={0: "batch", 1: "weeks"},
        meta={"task": task.task_name, "backbone": task.backbone, "threshold": task.state["threshold"],
              "target": task.hparams.target, "dynamic_features": list(task.state["dynamic"]),
              "output_is": "risk after each week 0..w of the input; the last column is the risk at week w"},
        card=lambda name: SNIPPET.format(name=name))


def onnx_inputs(task, students, *, week=None, activity=None, assessments=None, **columns):
    """(student ids, {"seq", "static"}) for the students in the population at `week`: the raw
    features the exported graph takes (float32, NaN where missing)."""
    import numpy as np

    task._require_fitted()
    norm, _ = task._read(students, activity, assessments, columns, need_label=False, name="onnx input")
    w = task._week(week)
    seq, static, _, panel = task._design().sequences(norm, w)
    pop = panel.population(w)
    static = static[pop] if static.shape[-1] else np.zeros((int(pop.sum()), 1))
    ids = norm.students["student"].to_numpy()[pop].tolist()
    return ids, {"seq": seq[pop].astype("float32"), "static": np.asarray(static, dtype="float32")}
