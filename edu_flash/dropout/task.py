"""DropoutPredictor: what is known about a student by the end of course week w -> risk of
withdrawing (target="withdrawn") or of withdrawing or failing (target="at_risk").

By default one model serves every week: it is trained on the cutoffs 1..max_week together (the
week is a feature; the GRU reads the weeks as a sequence), and `predict(..., week=w)` uses only
what is known by the end of week w. The population at week w is the students registered by then
and not yet unregistered: those who already left are no longer to be warned, so they are left
out of training rows, metrics and warnings at that week.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.card import CardText
from ..core.errors import ConfigError, DataError
from ..core.hparams import TrainHParams, bounded, choice
from ..core.registry import Backbone
from ..core.task import Task
from .data import COLUMN_KW, DropoutData
from .fitting import Prepared as _Prepared
from .inference import Inference, unbundle

@dataclass
class DropoutHParams(TrainHParams):
    target: str = choice("withdrawn", ("withdrawn", "at_risk"))
    cutoff_week: int | None = bounded(None, min=0, max=520)  # predict/evaluate's week when no week= is given
    # (None: the middle of the trained weeks)
    pool_weeks: bool = True  # one model for weeks 1..max_week; False: a model for cutoff_week only
    max_week: int | None = bounded(None, min=1, max=520)  # None: the course length in the training data
    class_weight: str = choice("balanced", ("balanced", "none"))
    threshold: float | None = None  # flag risk >= threshold; None: the F1-best on held-out students
    val_fraction: float = bounded(0.15, min=0.0, max=0.5)  # students held out (threshold, early stopping)
    # when finetune gets no val=
    advisor_k: int = bounded(50, min=1)  # precision@k: the k students an advisor can call
    pass_mark: float = 40.0
    min_category_count: int = bounded(5, min=1)
    gbm_learning_rate: float = bounded(0.05, min=1e-4, max=1.0)
    gbm_max_iter: int = bounded(500, min=1)
    gbm_max_depth: int | None = bounded(2, min=1)  # shallow trees: +0.03 ROC-AUC on OULAD with clicks (BENCHMARKS.md)
    gbm_max_leaf_nodes: int = bounded(31, min=2)
    gbm_min_samples_leaf: int = bounded(40, min=1)
    gbm_l2: float = bounded(1.0, min=0.0)
    logreg_C: float = bounded(1.0, min=1e-8)
    hidden_size: int = bounded(64, min=2)
    num_layers: int = bounded(1, min=1, max=4)
    dropout: float = bounded(0.1, min=0.0, max=0.9)
    lr: float = bounded(3e-3, min=0.0)
    max_epochs: int = bounded(30, min=1)
    batch_size: int | str = 64
    patience: int | None = 4
    warmup_ratio: float = bounded(0.05, min=0.0, max=1.0)
    group_by_length: bool = False
    torch_threads: int | None = 1  # the GRU's intra-op threads while training/predicting (None: torch's default)

    def validate(self) -> None:
        super().validate()
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ConfigError(f"torch_threads must be >= 1 or None, got {self.torch_threads}")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ConfigError(f"threshold must be in (0, 1) or None, got {self.threshold}")
        if self.cutoff_week is not None and self.max_week is not None and self.cutoff_week > self.max_week:
            raise ConfigError(f"cutoff_week={self.cutoff_week} is beyond max_week={self.max_week}")


class DropoutPredictor(Inference, Task):
    """Week-by-week early warning of withdrawal or failure, without look-ahead."""

    task_name = "dropout_prediction"
    hparams_cls = DropoutHParams
    default_backbone = "logreg"  # best or within 0.01 ROC-AUC of the best on both OULAD settings (BENCHMARKS.md)
    backbones = {
        "gbm": Backbone("gbm", "sklearn", None, "scikit-learn HistGradientBoosting on the weekly features"),
        "logreg": Backbone("logreg", "sklearn", None, "logistic regression on the standardised weekly features"),
        "gru": Backbone("gru", "torch", None, "GRU over the week-by-week features, started from the static ones"),
    }
    card_text = CardText(
        title="Student dropout early warning",
        summary="Estimates, week by week, each student's risk of withdrawing (or failing) from what is known "
                "by that week, trained with edu-flash.",
        intended_use="Early warning for student support: ranking the students an advisor or tutor should contact "
                     "this week, with the features behind each risk, and research on learning analytics.",
        out_of_scope="Decisions against a student (deregistration, sanctions, admission, fees or grades); use "
                     "without a person who reviews and acts supportively; courses, institutions or weeks unlike "
                     "the training data; explanations as causes (contributions describe the model, not the student).",
        limitations="Not trained yet: the limitations depend on the features, tables and weeks a model is trained on.",
        how_to_use="from edu_flash import {cls}\n\nmodel = {cls}.from_pretrained(\"{folder}\")  # a trained model",
        tags=("dropout-prediction", "early-warning", "education", "tabular-classification"),
        hf_task_type="tabular-classification",
        headline_metrics=("roc_auc", "pr_auc", "f1", "precision_at_k", "brier"),
    )

    def __init__(self, backbone: str | None = None, **hparams):
        super().__init__(backbone, **hparams)
        if self.backbone not in self.backbones:
            raise ConfigError(f"unknown backbone {self.backbone!r}; available: {self.available_backbones()}")
        self.scalers = None  # gru: (dynamic, static) Standardizers

    @property
    def _torch(self) -> bool:
        return self.backbone_spec().engine == "torch"

    def _design(self):
        from .design import Design

        return Design(self.state, self.hparams.pass_mark)

    def _weeks_info(self) -> dict:
        """The trained weeks (models saved before course-length inference fall back to hparams)."""
        hp = self.hparams
        return self.state.get("weeks") or {"last": hp.max_week or 20, "default": hp.cutoff_week or 8,
                                           "course": None, "inferred": False, "default_given": True}

    def _train_weeks(self) -> list[int]:
        w = self._weeks_info()
        return list(range(1, w["last"] + 1)) if self.hparams.pool_weeks else [w["default"]]

    def _normalize(self, data, activity, assessments, kw: dict, *, need_label: bool, name: str, fitted: bool = True):
        from .data import normalize, resolve_columns

        cols = resolve_columns(self.state.get("columns") if fitted else None, **{k: kw.pop(k) for k in COLUMN_KW
                                                                                   if k in kw})
        if kw:
            raise ConfigError(f"unexpected argument(s) {sorted(kw)}")
        fixed = {} if not fitted else {"static": self.state["static"], "channels": self.state["channels"],
                                       "starts": self.state.get("starts")}
        if fitted and self.state.get("has_assessments") and assessments is None:
            raise DataError("this model uses assessments: pass assessments=...", source=name)
        return normalize(data, activity, assessments if (not fitted or self.state["has_assessments"]) else None,
                         cols, need_label=need_label, name=name, **fixed), cols

    # ------------------------------------------------------------------ card
    def _card_text(self) -> CardText:
        if self.model is None or "weeks" not in self.state:
            return self.card_text
        from dataclasses import replace

        from . import cardtext

        return replace(self.card_text, limitations=cardtext.limitations(self),
                       how_to_use=cardtext.how_to_use(self, "{folder}").replace("{", "{{").replace("}", "}}")
                       .replace("{{folder}}", "{folder}"))

    def _card_hparams(self) -> dict:
        if "weeks" not in self.state:
            return super()._card_hparams()
        from .cardtext import card_hparams

        return card_hparams(self)

    # ------------------------------------------------------------------ training
    def finetune(self, data, val=None, *, activity=None, assessments=None, val_activity=None, val_assessments=None,
                 **kwargs):
        """Train on students (+ activity=, assessments=) or a DropoutData; returns self. `val` (same
        forms) picks the flag threshold, the GRU's best epoch and the trees' early stop; without it
        `val_fraction` of the training students are held out for that."""
        if isinstance(data, DropoutData):
            kwargs.setdefault("dataset_name", data.source)
        self._loader = getattr(data, "loader", None)
        data, activity, assessments = unbundle(data, activity, assessments, kwargs)
        self._notes = list(data.notes) if isinstance(data, DropoutData) else []
        if val is not None:
            val, val_activity, val_assessments = unbundle(val, val_activity, val_assessments, {})
        hp_kw = {k: kwargs[k] for k in ("torch_threads",) if k in kwargs}  # needed before core applies them
        try:
            with self._threads(**hp_kw):
                super().finetune(data, val, activity=activity, assessments=assessments, val_activity=val_activity,
                                 val_assessments=val_assessments, **kwargs)
                self._finish(self._prep)
        finally:
            self.__dict__.pop("_prep", None)
        return self

    def _threads(self, torch_threads: int | None = None):
        import contextlib

        if not self._torch:
            return contextlib.nullcontext()
        from .model import torch_threads as limit

        return limit(self.hparams.torch_threads if torch_threads is None else torch_threads)

    def _prepare(self, train, val, *, activity=None, assessments=None, val_activity=None, val_assessments=None,
                 **kw) -> _Prepared:
        from .fitting import prepare

        self._prep = prepare(self, train, val, activity, assessments, val_activity, val_assessments, kw)
        return self._prep

    def _inputs(self, norm, y, weeks) -> dict:
        d = self._design()
        if not self._torch:
            X, owner, wk = d.rows(norm, weeks)
            return {"X": X, "y": y[owner], "owner": owner, "week": wk}
        seq, static, mask, _ = d.sequences(norm, max(weeks), weeks)
        return {"seq": seq, "static": static, "mask": mask, "y": y.astype("float32")}

    def _fit_classical(self, prep: _Prepared) -> None:
        from .classical import BoostedTrees, LinearModel

        hp, t = self.hparams, prep.train
        balanced = hp.class_weight == "balanced"
        if self.backbone == "logreg":
            self.model = LinearModel.fit(t["X"], t["y"], C=hp.logreg_C, balanced=balanced, seed=hp.seed)
        else:
            v = prep.val
            self.model = BoostedTrees.fit(t["X"], t["y"], groups=t["owner"], hp=hp, balanced=balanced, seed=hp.seed,
                                          val=(v["X"], v["y"]) if v is not None else None)
            self.state["fit"] = {"trees kept by early stopping": self.model.n_iter}

    def _train_job(self, prep: _Prepared):
        import numpy as np

        from ..core.trainer import TrainJob
        from . import model as M
        from .classical import Standardizer

        hp, t = self.hparams, prep.train
        if self.model is None:
            cells = t["seq"][t["mask"] > 0]
            self.scalers = (Standardizer().fit(cells), Standardizer().fit(t["static"]))
            pos = float((t["mask"] * t["y"][:, None]).sum())
            neg = float(t["mask"].sum() - pos)
            self.state["shift"] = float(np.log(neg / pos)) if hp.class_weight == "balanced" else 0.0
            n_dyn, n_sta = self._scale(t["seq"][:1], t["static"][:1])
            self.model = M.DropoutGRU(n_dyn.shape[-1], n_sta.shape[-1], hp.hidden_size, hp.num_layers, hp.dropout)
        seq, static = self._scale(t["seq"], t["static"])
        pos_weight = float(np.exp(self.state["shift"]))
        validate = None
        if prep.val is not None:
            v = prep.val
            vseq, vstatic = self._scale(v["seq"], v["static"])

            def validate(model):
                from .evaluation import _auc

                logits = M.logits_at(model, vseq, vstatic)
                aucs = [_auc(v["y"][v["mask"][:, w] > 0].astype(int), logits[v["mask"][:, w] > 0, w]) for w in prep.weeks]
                return {"auc": float(np.nanmean(aucs)) if not all(np.isnan(aucs)) else float("nan")}
        return TrainJob(model=self.model, train=M.examples(seq, static, t["mask"], t["y"]), collate=M.collate,
                        loss=M.make_loss(pos_weight), validate=validate, monitor="auc", mode="max")

    def _scale(self, seq, static):
        import numpy as np

        s = self.scalers[1].transform(static) if static.shape[-1] else np.zeros((len(static), 1))
        return self.scalers[0].transform(seq).astype("float32"), np.asarray(s, dtype="float32")

    def _finish(self, prep: _Prepared) -> None:
        from .fitting import finish

        finish(self, prep)

    def _describe_data(self, prep: _Prepared) -> dict:
        return prep.describe

    def _export_spec(self):  # core.export: model.export("risk.onnx")
        from .export import spec

        return spec(self)

    def onnx_inputs(self, students, *, week: int | None = None, activity=None, assessments=None, **columns):
        """(student ids, {"seq", "static"}): the inputs of the exported ONNX graph for the students in
        the population at `week` (the raw features; the graph scales them)."""
        from .export import onnx_inputs

        return onnx_inputs(self, students, week=week, activity=activity, assessments=assessments, **columns)

    # ------------------------------------------------------------------ persistence
    def _save_weights(self, folder: Path) -> dict:
        from safetensors.numpy import save_file

        if not self._torch:
            arrays, meta = self.model.state_dict()
            save_file({k: v for k, v in arrays.items()}, str(folder / "model.safetensors"))
            return {"format": self.backbone, "meta": meta}
        from safetensors.torch import save_model

        save_model(self.model, str(folder / "model.safetensors"))
        save_file({**self.scalers[0].state_dict("dynamic."), **self.scalers[1].state_dict("static.")},
                  str(folder / "preprocess.safetensors"))
        return {"format": "gru", "n_dynamic": self.model.inp[0].in_features,
                "n_static": self.model.static[0].in_features}

    def _load_weights(self, folder: Path, config: dict) -> None:
        from safetensors.numpy import load_file

        w = config["weights"]
        if w["format"] in ("gbm", "logreg"):
            from .classical import BoostedTrees, LinearModel

            cls = BoostedTrees if w["format"] == "gbm" else LinearModel
            self.model = cls.from_state(load_file(str(folder / "model.safetensors")), w["meta"])
            return
        from safetensors.torch import load_model

        from .classical import Standardizer
        from .model import DropoutGRU

        hp = self.hparams
        pre = load_file(str(folder / "preprocess.safetensors"))
        self.scalers = (Standardizer.from_state(pre, "dynamic."), Standardizer.from_state(pre, "static."))
        self.model = DropoutGRU(w["n_dynamic"], w["n_static"], hp.hidden_size, hp.num_layers, hp.dropout)
        load_model(self.model, str(folder / "model.safetensors"))
        self.model.eval()
