"""DropoutPredictor: what is known about a student by the end of course week w -> risk of
withdrawing (target="withdrawn") or of withdrawing or failing (target="at_risk").

By default one model serves every week: it is trained on the cutoffs 1..max_week together (the
week is a feature; the GRU reads the weeks as a sequence), and `predict(..., week=w)` uses only
what is known by the end of week w. The population at week w is the students registered by then
and not yet unregistered: those who already left are no longer to be warned, so they are left
out of training rows, metrics and warnings at that week.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.card import CardText
from ..core.errors import ConfigError, DataError
from ..core.hparams import TrainHParams, bounded, choice
from ..core.registry import Backbone
from ..core.task import Task
from .data import COLUMN_KW, DropoutData
from .inference import Inference, unbundle

@dataclass
class DropoutHParams(TrainHParams):
    target: str = choice("withdrawn", ("withdrawn", "at_risk"))
    cutoff_week: int = bounded(8, min=0, max=520)  # the week predict/evaluate use when no week= is given
    pool_weeks: bool = True  # one model for weeks 1..max_week; False: a model for cutoff_week only
    max_week: int = bounded(20, min=1, max=520)
    class_weight: str = choice("balanced", ("balanced", "none"))
    threshold: float | None = None  # flag risk >= threshold; None: the F1-best on validation (else training) data
    advisor_k: int = bounded(50, min=1)  # precision@k: the k students an advisor can call
    pass_mark: float = 40.0
    min_category_count: int = bounded(5, min=1)
    gbm_learning_rate: float = bounded(0.05, min=1e-4, max=1.0)
    gbm_max_iter: int = bounded(300, min=1)
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


@dataclass
class _Prepared:
    norm: Any
    y: Any
    weeks: list[int]
    train: dict = field(default_factory=dict)
    val: dict | None = None
    describe: dict = field(default_factory=dict)


class DropoutPredictor(Inference, Task):
    """Week-by-week early warning of withdrawal or failure, without look-ahead."""

    task_name = "dropout_prediction"
    hparams_cls = DropoutHParams
    default_backbone = "gbm"
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
        limitations="Risks are estimated from past cohorts and assume the future looks like them. Static features "
                    "(deprivation, age, disability, education) are used and the model can be less accurate for some "
                    "groups: see the subgroup AUC and ABROCA tables. Students who already left by the week are not "
                    "scored. Scores are taken as known on the submission day unless the data says otherwise.",
        how_to_use="from edu_flash import {cls}\nfrom edu_flash.dropout import load_oulad\n\n"
                   "model = {cls}.from_pretrained(\"{folder}\")\n"
                   "data = load_oulad(\"oulad/\")  # or students, activity=..., assessments=...\n"
                   "model.predict(data, week=6)  # risk, flag and top features per student\n"
                   "model.evaluate(data, week=6)  # ROC-AUC, PR-AUC, F1, precision@k, Brier, subgroups",
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

    def _train_weeks(self) -> list[int]:
        hp = self.hparams
        return list(range(1, hp.max_week + 1)) if hp.pool_weeks else [hp.cutoff_week]

    def _normalize(self, data, activity, assessments, kw: dict, *, need_label: bool, name: str, fitted: bool = True):
        from .data import normalize, resolve_columns

        cols = resolve_columns(self.state.get("columns") if fitted else None, **{k: kw.pop(k) for k in COLUMN_KW
                                                                                   if k in kw})
        if kw:
            raise ConfigError(f"unexpected argument(s) {sorted(kw)}")
        fixed = {} if not fitted else {"static": self.state["static"], "channels": self.state["channels"]}
        if fitted and self.state.get("has_assessments") and assessments is None:
            raise DataError("this model uses assessments: pass assessments=...", source=name)
        return normalize(data, activity, assessments if (not fitted or self.state["has_assessments"]) else None,
                         cols, need_label=need_label, name=name, **fixed), cols

    # ------------------------------------------------------------------ training
    def finetune(self, data, val=None, *, activity=None, assessments=None, val_activity=None, val_assessments=None,
                 **kwargs):
        """Train on students (+ activity=, assessments=) or a DropoutData; returns self. `val` (same
        forms) picks the GRU's best epoch and the flag threshold."""
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
        import numpy as np

        from .data import positives
        from .features import StaticEncoder, dynamic_names

        hp = self.hparams
        keep = self._torch and self.model is not None  # continued training keeps the input layout
        norm, cols = self._normalize(train, activity, assessments, kw, need_label=True, name=train.source, fitted=keep)
        y = positives(norm.students["outcome"].tolist(), hp.target, train, cols["label_column"])
        if not 0 < y.sum() < len(y):
            raise DataError(f"the training outcomes have one class only for target={hp.target!r}", source=train.source,
                            column=cols["label_column"])
        if not keep:
            enc = StaticEncoder().fit(norm.students, norm.static, hp.min_category_count)
            has_asmt = norm.assessments is not None
            self.state = {"columns": cols, "static": norm.static, "channels": norm.channels,
                          "subgroups": norm.subgroups, "has_assessments": has_asmt, "encoder": enc.spec,
                          "dynamic": dynamic_names(norm.channels, has_asmt), "target": hp.target}
        weeks = self._train_weeks()
        prep = _Prepared(norm, y, weeks)
        prep.train = self._inputs(norm, y, weeks)
        if len(prep.train["y"]) == 0:
            raise DataError(f"no student is in the population at weeks {weeks[0]}-{weeks[-1]}", source=train.source)
        if val is not None:
            vnorm, _ = self._normalize(val, val_activity if val_activity is not None else activity,
                                       val_assessments if val_assessments is not None else assessments,
                                       {}, need_label=True, name=val.source)
            prep.val = self._inputs(vnorm, positives(vnorm.students["outcome"].tolist(), hp.target, val,
                                                     cols["label_column"]), weeks)
        if self._torch:
            m = prep.train["mask"][:, weeks] > 0
            rows = np.broadcast_to(y[:, None], m.shape)[m]
        else:
            rows = prep.train["y"]
        prep.describe = {"source": train.source, "students": len(y), "validation students": len(val) if val else 0,
                         "target": hp.target, "positives (students)": f"{int(y.sum())} ({y.mean():.1%})",
                         "training cutoffs (weeks)": f"{weeks[0]}-{weeks[-1]}" if len(weeks) > 1 else str(weeks[0]),
                         "student-weeks in the population": int(len(rows)),
                         "positive rate over student-weeks": f"{np.mean(rows):.1%}",
                         "activity channels": ", ".join(self.state["channels"]) or "none",
                         "assessments": "yes" if self.state["has_assessments"] else "no",
                         "features": len(self._design().names)}
        self._prep = prep
        return prep

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
            self.model = BoostedTrees.fit(t["X"], t["y"], groups=t["owner"], hp=hp, balanced=balanced, seed=hp.seed)

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
        """After training: the flag threshold, and what the card says about cutoffs and contributions."""
        import numpy as np

        from .evaluation import best_f1_threshold

        hp = self.hparams
        part = prep.val if prep.val is not None else prep.train
        if hp.threshold is not None:
            thr, how = hp.threshold, "set by the user"
        else:
            if self._torch:
                from .model import logits_at

                logits = logits_at(self.model, *self._scale(part["seq"], part["static"])) - self.state["shift"]
                m = part["mask"] > 0
                y, z = np.broadcast_to(part["y"][:, None], m.shape)[m], logits[m]
            else:
                pick = np.random.default_rng(0).permutation(len(part["y"]))[:50000]
                y, z = part["y"][pick], self.model.logit(part["X"][pick])
            thr = best_f1_threshold(y.astype(int), 1 / (1 + np.exp(-z)))
            how = f"the F1-best on the {'validation' if prep.val is not None else 'training'} student-weeks"
        self.state["threshold"] = float(thr)
        weeks = (f"one model for weeks {prep.weeks[0]}-{prep.weeks[-1]}" if hp.pool_weeks
                 else f"trained for week {hp.cutoff_week} only")
        balance = ("balanced class weights (pos_weight for the GRU); the log-odds shift they cause is removed so "
                   "risks stay probabilities" if hp.class_weight == "balanced" else "no class weights")
        how_top = {"gbm": "per-tree path credits (Saabas / treeinterpreter) in log-odds",
                   "logreg": "coefficient x standardised value, in log-odds against the average training student",
                   "gru": "occlusion: log-odds minus log-odds with the feature set to its training mean at every week"}
        self.card.notes = [*self._notes,
                           "Cutoff: a prediction at week w uses only what is known by the end of course week w "
                           "(week 1 = days 0-6): clicks up to week w, assessments submitted and scored by then, "
                           "deadlines passed by then; never a later unregistration or the outcome.",
                           "Population at week w: registered by week w and not unregistered by week w. Students who "
                           "already left are not scored (they are no longer to be warned).",
                           f"Weeks: {weeks}; default week {hp.cutoff_week}.", f"Class imbalance: {balance}.",
                           f"Flag threshold {thr:.3f} on the risk ({how}).", f"Top features: {how_top[self.backbone]}."]

    def _describe_data(self, prep: _Prepared) -> dict:
        return prep.describe

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
