"""ToyRegressor: everything a task needs, in one file of another package."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edu_flash import Task
from edu_flash.core.card import CardText
from edu_flash.core.data import check_numeric, read_table, require_columns
from edu_flash.core.hparams import TrainHParams, bounded
from edu_flash.core.registry import Backbone


@dataclass
class ToyHParams(TrainHParams):
    lr: float = bounded(3e-2, min=0.0)
    batch_size: int | str = 32
    max_epochs: int = bounded(30, min=1)
    patience: int | None = None
    hidden: int = bounded(16, min=1)
    ridge_alpha: float = bounded(1.0, min=0.0)


class _Ridge:
    def __init__(self, coef=None, intercept=0.0):
        self.coef, self.intercept = coef, intercept

    def fit(self, X, y, alpha):
        from sklearn.linear_model import Ridge

        m = Ridge(alpha=alpha).fit(X, y)
        self.coef, self.intercept = m.coef_.astype("float32"), float(m.intercept_)
        return self

    def predict(self, X):
        return X @ self.coef + self.intercept

    def state_dict(self):
        return {"coef": self.coef}


class ToyRegressor(Task):
    """Numeric columns -> the target column."""

    task_name = "toy_regression"
    hparams_cls = ToyHParams
    default_backbone = "mlp"
    backbones = {"mlp": Backbone("mlp", "torch", None, "two-layer MLP on the shared trainer"),
                 "ridge": Backbone("ridge", "sklearn", None, "ridge regression (scikit-learn)")}
    card_text = CardText(title="Toy regression", summary="A third-party example task.",
                         intended_use="Showing how a task in another package plugs into edu-flash.",
                         out_of_scope="Anything real.", limitations="Synthetic data only.",
                         how_to_use="from edu_flash_toy import {cls}\n\nm = {cls}.from_pretrained(\"{folder}\")\n"
                                    "m.predict([{{\"x1\": 1.0, \"x2\": 0.0, \"x3\": 0.0}}])",
                         headline_metrics=("rmse",))

    def _arrays(self, table, need_target=True):
        import numpy as np

        feats = self.state["features"]
        require_columns(table, {f: f for f in feats + ([self.state["target"]] if need_target else [])})
        X = np.stack([check_numeric(table, f) for f in feats], 1).astype("float32")
        y = np.asarray(check_numeric(table, self.state["target"]), "float32") if need_target else None
        return X, y

    def _prepare(self, train, val, *, target_column: str = "y"):
        if self.model is None:
            self.state = {"target": target_column, "features": [c for c in train.df.columns if c != target_column]}
        return self._arrays(train), (self._arrays(val) if val is not None else None)

    def _train_job(self, prep):
        import torch
        from torch import nn

        from edu_flash.core.trainer import TrainJob

        (X, y), val = prep
        if self.model is None:
            self.model = nn.Sequential(nn.Linear(X.shape[1], self.hparams.hidden), nn.Tanh(),
                                       nn.Linear(self.hparams.hidden, 1))
        data = [{"x": torch.from_numpy(X[i]), "y": torch.tensor(y[i])} for i in range(len(X))]

        def collate(ex):
            return {"x": torch.stack([e["x"] for e in ex]), "y": torch.stack([e["y"] for e in ex])}

        def loss(model, b):
            return nn.functional.mse_loss(model(b["x"]).squeeze(-1).float(), b["y"])

        validate = None
        if val is not None:
            def validate(model):
                pred = model(torch.from_numpy(val[0])).squeeze(-1).float().numpy()
                return {"rmse": float(((pred - val[1]) ** 2).mean() ** 0.5)}

        return TrainJob(model=self.model, train=data, collate=collate, loss=loss, validate=validate,
                        monitor="rmse", mode="min")

    def _fit_classical(self, prep):
        (X, y), _ = prep
        self.model = _Ridge().fit(X, y, self.hparams.ridge_alpha)

    def _predict_arrays(self, X):
        if self.backbone == "ridge":
            return self.model.predict(X)
        import torch

        with torch.inference_mode():
            return self.model.eval()(torch.from_numpy(X)).squeeze(-1).float().numpy()

    def predict(self, inputs):
        self._require_fitted()
        X, _ = self._arrays(read_table(inputs, name="predict input"), need_target=False)
        return [float(v) for v in self._predict_arrays(X)]

    def evaluate(self, data, *, name: str | None = None):
        self._require_fitted()
        table = read_table(data, name=name or "eval", split="test")
        X, y = self._arrays(table)
        rmse = float((((self._predict_arrays(X) - y) ** 2).mean()) ** 0.5)
        self.card.add_evaluation(name or table.source, {"rmse": rmse})
        return {"rmse": rmse}

    def _save_weights(self, folder: Path) -> dict:
        if self.backbone == "ridge":
            from safetensors.numpy import save_file

            save_file({"coef": self.model.coef}, str(folder / "model.safetensors"))
            return {"format": "ridge", "intercept": self.model.intercept}
        from safetensors.torch import save_model

        save_model(self.model, str(folder / "model.safetensors"))
        return {"format": "torch", "inputs": len(self.state["features"])}

    def _load_weights(self, folder: Path, config: dict) -> None:
        w = config["weights"]
        if w["format"] == "ridge":
            from safetensors.numpy import load_file

            self.model = _Ridge(load_file(str(folder / "model.safetensors"))["coef"], w["intercept"])
            return
        from safetensors.torch import load_model
        from torch import nn

        self.model = nn.Sequential(nn.Linear(w["inputs"], self.hparams.hidden), nn.Tanh(),
                                   nn.Linear(self.hparams.hidden, 1))
        load_model(self.model, str(folder / "model.safetensors"))
