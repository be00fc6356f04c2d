"""PathRecommender: interaction logs -> knowledge tracing -> next items and learning paths."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..core.data import read_table
from ..core.errors import ConfigError, DataError
from ..core.hparams import TrainHParams, bounded, choice
from ..core.registry import Backbone
from ..core.task import Task
from . import data as D
from .evaluation import metrics as _metrics, zone as _zone
from .card import CARD_TEXT, describe, items_are_skills_note


@dataclass
class PathHParams(TrainHParams):
    max_epochs: int = bounded(12, min=1)
    batch_size: int | str = 64
    lr: float = bounded(2e-3, min=0.0)
    weight_decay: float = bounded(0.0, min=0.0)
    warmup_ratio: float = bounded(0.0, min=0.0, max=1.0)
    scheduler: str = choice("linear", ("linear", "cosine", "constant", "constant_with_warmup"))  # decays to 0
    patience: int | None = 3
    precision: str = choice("bf16-mixed", ("32", "bf16-mixed", "16-mixed", "bf16-true"))  # 1.7x less CPU time
    # Random batches, not length-grouped ones: grouping puts a long student's continuation windows
    # together and, on ASSISTments 2009, made DKT learn markedly slower per epoch (see BENCHMARKS.md).
    group_by_length: bool = False
    window: int = bounded(200, min=3)             # training chunk length; also the context at predict time
    eval_stride: int | None = None                # sliding-window step for evaluation (None: window // 2)
    val_fraction: float = bounded(0.1, min=0.0, max=0.5)  # students held out for early stopping (val=None)
    d_model: int | None = None                    # None: the backbone's default (dkt 200, sakt 64, simplekt 64)
    dropout: float | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    item_bias: bool = False                       # dkt: a per-item difficulty on top of its skills
    predict_batch_size: int = bounded(256, min=1)
    pfa_c: float = bounded(1.0, min=1e-6)         # pfa: inverse L2 strength of the logistic regression


@dataclass
class _Prepared:
    train: D.Logs
    val: D.Logs | None


class PathRecommender(Task):
    """Knowledge tracing (next-response AUC) plus recommendation and path planning on the model."""

    task_name = "path_recommendation"
    hparams_cls = PathHParams
    default_backbone = "dkt"
    backbones = {
        "dkt": Backbone("dkt", "torch", None, "Deep Knowledge Tracing: LSTM over (skill, correct) (Piech et al. 2015)"),
        "sakt": Backbone("sakt", "torch", None, "Self-Attentive Knowledge Tracing (Pandey & Karypis 2019)"),
        "simplekt": Backbone("simplekt", "torch", None,
                             "simpleKT: Rasch embeddings + causal attention (Liu et al. 2023)"),
        "pfa": Backbone("pfa", "sklearn", None, "Performance Factors Analysis logistic regression (scikit-learn)"),
    }
    card_text = CARD_TEXT

    def __init__(self, backbone: str | None = None, **hparams):
        super().__init__(backbone, **hparams)
        if self.backbone not in self.backbones:
            raise ConfigError(f"unknown backbone {self.backbone!r} for PathRecommender; "
                              f"available: {self.available_backbones()}")

    # ------------------------------------------------------------------ data
    def finetune(self, data, val=None, **kwargs):
        """Train on interaction logs (any table source, or a DKT three-line file); returns self.

        Column names: student_column, item_column, skill_column, correct_column, time_column.
        Without `val`, `val_fraction` of the training students are held out for early stopping.
        """
        super().finetune(D.as_table(data, "train"), D.as_table(val, "val") if val is not None else None, **kwargs)
        if self.backbone != "pfa":
            from .models import count_parameters

            arch = {k: v for k, v in self.state["arch"].items() if k not in ("n_skills", "n_items")}
            self.card.procedure["architecture"] = ", ".join(f"{k}={v}" for k, v in arch.items())
            self.card.procedure["parameters"] = count_parameters(self.model)
            self.card.procedure["training windows"] = f"{self.hparams.window} responses, no overlap"
        return self

    def _cols(self, **given) -> D.Columns:
        unknown = [k for k in given if not k.endswith("_column") or k[:-7] not in D.Columns.__dataclass_fields__]
        if unknown:
            raise ConfigError(f"unknown argument(s) {unknown}; columns are given as student_column=, item_column=, "
                              f"skill_column=, correct_column=, time_column=; hyperparameters: {self.hparams_cls.names()}")
        return D.Columns.from_state(self.state, **given)

    def _prepare(self, train, val, **columns) -> _Prepared:
        cols = self._cols(**columns)
        vocab = self.state.get("vocab") if self.model is not None else None
        logs, vocab = D.read_logs(train, cols, vocab=vocab)
        val_logs = D.read_logs(val, cols, vocab=vocab)[0] if val is not None else None
        self.state.update(columns=vars(cols), vocab=vocab)
        return _Prepared(logs, val_logs)

    def _split(self, prep: _Prepared) -> tuple[D.Logs, D.Logs | None]:
        if prep.val is not None:
            return prep.train, prep.val
        return D.split_students(prep.train, self.hparams.val_fraction, self.hparams.seed)

    def _describe_data(self, prep: _Prepared) -> dict:
        self.card.notes = [n for n in self.card.notes if not n.startswith("Items are skills")]
        if D.items_are_skills(self.state["vocab"]):
            self.card.notes.append(items_are_skills_note())
        return describe(prep, self.state["vocab"], self._split_info)

    def _q(self) -> list[list[int]]:
        return self.state["vocab"]["q"]

    # ------------------------------------------------------------------ training
    def _arch_config(self) -> dict:
        from .models import DEFAULTS

        v, hp = self.state["vocab"], self.hparams
        cfg = dict(DEFAULTS[self.backbone])
        for k in ("d_model", "dropout", "n_layers", "n_heads"):
            if getattr(hp, k) is not None and (k in cfg):
                cfg[k] = getattr(hp, k)
        cfg.update(n_skills=len(v["skills"]), n_items=len(v["items"]), window=hp.window)
        if self.backbone == "dkt":
            cfg["item_bias"] = hp.item_bias
        return cfg

    def _train_job(self, prep: _Prepared):
        from ..core.trainer import TrainJob
        from . import infer, models

        hp = self.hparams
        train, val = self._split(prep)
        self._split_info = {"validation students": len(val.students) if val else 0}
        if self.model is not None and hp.window > self.state["arch"]["window"]:
            raise ConfigError(f"this model was built for windows of {self.state['arch']['window']}; "
                              f"window={hp.window} needs a new model")
        if self.model is None:
            self.state["arch"] = self._arch_config()
            self.model = models.build(self.backbone, D.q_matrix(self.state["vocab"]), self.state["arch"])
            models.init_scale(self.model)
        windows = D.train_windows(train, hp.window)

        def validate(model):
            y, p, _ = infer.eval_probs(model, val.items, val.correct, window=hp.window, stride=self._stride(),
                                       batch_size=hp.predict_batch_size)
            return _metrics(y, p)

        return TrainJob(model=self.model, train=windows, collate=infer.collate, loss=infer.loss,
                        lengths=[len(w[0]) for w in windows], validate=validate if val is not None else None,
                        monitor="auc", mode="max")

    def _fit_classical(self, prep: _Prepared) -> None:
        from .pfa import PFA

        logs = prep.train  # no early stopping to feed: PFA fits on every training student
        self._split_info = {"validation students": 0}
        v = self.state["vocab"]
        self.model = PFA(v["q"], len(v["skills"]), item_terms=not D.items_are_skills(v))
        self.model.fit(logs.items + (prep.val.items if prep.val else []),
                       logs.correct + (prep.val.correct if prep.val else []), C=self.hparams.pfa_c)

    def _stride(self) -> int:
        return self.hparams.eval_stride or max(1, self.hparams.window // 2)

    # ------------------------------------------------------------------ model access
    def _probs(self, hists, cand):
        """[H, C] next-response P(correct) for histories given as (item index array, 0/1 array)."""
        import numpy as np

        self._require_fitted()
        if self.backbone == "pfa":
            return self.model.next_probs(hists, cand)
        from .infer import next_probs

        return next_probs(self.model, hists, np.asarray(cand), window=self.hparams.window,
                          batch_size=self.hparams.predict_batch_size)

    def _sim(self):
        from .policy import Sim

        return Sim(self._probs, self._q())

    def _sequence_probs(self, logs: D.Logs, precision: str = "32"):
        if self.backbone == "pfa":
            import numpy as np

            ps = self.model.sequence_probs(logs.items, logs.correct)
            return (np.concatenate([c[1:] for c in logs.correct]), np.concatenate([p[1:] for p in ps]))
        from .infer import eval_probs

        y, p, _ = eval_probs(self.model, logs.items, logs.correct, window=self.hparams.window, stride=self._stride(),
                             batch_size=self.hparams.predict_batch_size, precision=precision)
        return y, p

    def _histories(self, history, cols: D.Columns) -> tuple[list[str], list]:
        """One student's history (list of (item, correct) pairs or records) or a table of several."""
        import numpy as np
        import pandas as pd

        if isinstance(history, (list, tuple)) and all(isinstance(x, (list, tuple)) and len(x) == 2 for x in history):
            history = pd.DataFrame([{cols.item: i, cols.correct: c} for i, c in history],
                                   columns=[cols.item, cols.correct])
        table = read_table(D.as_table(history, "history"), name="history")
        if len(table.df) == 0:
            return ["student"], [(np.zeros(0, np.int64), np.zeros(0, np.float32))]
        if cols.student not in table.df.columns:
            table.df = table.df.assign(**{cols.student: "student"})
        logs, _ = D.read_logs(table, cols, vocab=self.state["vocab"], min_len=0)
        return logs.students, list(zip(logs.items, logs.correct))

    def _item_ix(self, items):
        return D.index_of(self.state["vocab"], "items", items)

    def _skill_ix(self, skills) -> list[int]:
        return D.index_of(self.state["vocab"], "skills", skills).tolist()

    # ------------------------------------------------------------------ inference
    def predict(self, history, items=None, **columns):
        """Per-skill mastery and P(correct) on candidate items (default: every item) after `history`.

        history: a list of (item, correct) pairs, records, a DataFrame or a file; one student gives
        {"mastery": {skill: p}, "p_correct": {item: p}}; several (a student column) give {student: ...}.
        """
        import numpy as np

        self._require_fitted()
        cols = self._cols(**columns)
        names, hists = self._histories(history, cols)
        v = self.state["vocab"]
        cand = self._item_ix(items) if items is not None else np.arange(1, len(v["items"]) + 1)
        allp = self._probs(hists, np.arange(1, len(v["items"]) + 1))
        sim = self._sim()
        out = {}
        for n, p in zip(names, allp):
            mastery = {v["skills"][s - 1]: float(p[sim.skill_items[s] - 1].mean()) for s in sorted(sim.skill_items)}
            out[n] = {"mastery": mastery, "p_correct": {v["items"][c - 1]: float(p[c - 1]) for c in cand}}
        return out[names[0]] if len(names) == 1 else out

    def recommend(self, history, k: int = 5, target=(0.6, 0.8), *, goal_skills=None, candidates=None,
                  strict: bool = True, **columns) -> list[dict]:
        """The next items whose predicted success is inside `target`, ranked by expected mastery gain
        (on `goal_skills`, or else on each item's own skills). strict=False tops up with the items
        closest to the zone when fewer than k are inside it."""
        import numpy as np

        from .policy import expected_gains, in_zone

        self._require_fitted()
        target = _zone(target)
        names, hists = self._histories(history, self._cols(**columns))
        if len(names) != 1:
            raise DataError(f"recommend takes one student's history, got {len(names)} students")
        goal = self._skill_ix(goal_skills) if goal_skills is not None else None
        v, sim = self.state["vocab"], self._sim()
        cand = self._item_ix(candidates) if candidates is not None else (
            sim.items_of(goal) if goal else np.arange(1, len(v["items"]) + 1))
        p, now, after = expected_gains(sim, hists, [cand], [goal])[0]
        gain, z = after - now, in_zone(p, target)
        dist = np.maximum(target[0] - p, 0) + np.maximum(p - target[1], 0)
        order = sorted(range(len(cand)), key=lambda j: (not z[j], dist[j], -gain[j]))
        rows = [{"item": v["items"][cand[j] - 1], "skills": [v["skills"][s - 1] for s in v["q"][cand[j] - 1]],
                 "p_correct": float(p[j]), "expected_gain": float(gain[j]), "in_zone": bool(z[j])}
                for j in order if z[j] or not strict]
        return rows[:k]

    def plan_path(self, history, goal_skills, steps: int = 10, *, target=(0.6, 0.8), candidates=None,
                  samples: int = 8, seed: int = 0, **columns) -> dict:
        """A `steps`-item path towards `goal_skills`, chosen greedily by expected gain in the target
        zone and simulated with this model (`samples` sampled answer sequences): expected goal
        mastery and per-skill mastery after each step."""
        from .policy import plan

        self._require_fitted()
        names, hists = self._histories(history, self._cols(**columns))
        if len(names) != 1:
            raise DataError(f"plan_path takes one student's history, got {len(names)} students")
        goal = self._skill_ix([goal_skills] if isinstance(goal_skills, (str, int)) else goal_skills)
        if not goal:
            raise ConfigError("goal_skills is empty")
        v, sim = self.state["vocab"], self._sim()
        cand = self._item_ix(candidates) if candidates is not None else sim.items_of(goal)
        out = plan(sim, hists[0], cand, goal, int(steps), _zone(target), int(samples), int(seed))
        for st in out["steps"]:
            st["item"] = v["items"][st["item"] - 1]
            st["mastery"] = {v["skills"][s - 1]: m for s, m in st["mastery"].items()}
        out["goal_skills"] = [v["skills"][s - 1] for s in goal]
        out["final_mastery"] = out["steps"][-1]["expected_mastery"] if out["steps"] else out["start_mastery"]
        return out

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, data, *, name: str | None = None, precision: str | None = None, unknown: str = "error",
                 **columns) -> dict:
        """AUC, ACC and RMSE of next-response prediction; every response after each student's first
        is scored exactly once. unknown="skip" drops rows on items never seen in training (counted)
        instead of raising. Recorded for the model card."""
        self._require_fitted()
        if unknown not in ("error", "skip"):
            raise ConfigError(f"unknown must be 'error' or 'skip', got {unknown!r}")
        table = read_table(D.as_table(data, "eval"), name=name or "eval", split="test")
        logs, _ = D.read_logs(table, self._cols(**columns), vocab=self.state["vocab"], unknown=unknown)
        t0 = time.perf_counter()
        y, p = self._sequence_probs(logs, precision or "32")
        m = {**_metrics(y, p), "students": len(logs.students), "dropped_students": logs.dropped_students,
             "skipped_unknown": logs.extra["unknown_skipped"], "seconds": round(time.perf_counter() - t0, 2)}
        self.card.add_evaluation(name or table.source, {k: v for k, v in m.items() if k != "seconds"})
        return m

    def evaluate_paths(self, data, simulator, *, steps: int = 10, n_goal: int = 3, max_students: int = 100,
                       history_len: int | None = 20, target=(0.6, 0.8), seed: int = 0, name: str | None = None,
                       **columns) -> dict:
        """Simulated mastery gain of this recommender's paths against random and easiest-first choices
        (and against itself without the target zone, which shows what the zone costs or brings).

        The simulated students are `simulator`, a separately trained PathRecommender (or its folder):
        it answers each chosen item (sampled from its P(correct)) and measures goal mastery. Start
        histories are the first `history_len` responses of up to `max_students` students in `data`;
        each student gets `n_goal` random goal skills and may practise any item of them.
        """
        import numpy as np

        from .policy import Sim, compare

        self._require_fitted()
        if not isinstance(simulator, PathRecommender):
            simulator = PathRecommender.from_pretrained(simulator)
        simulator._require_fitted()
        table = read_table(D.as_table(data, "paths"), name=name or "paths", split="test")
        logs, _ = D.read_logs(table, self._cols(**columns), vocab=self.state["vocab"], unknown="skip")
        sim_ix = {n: j + 1 for j, n in enumerate(simulator.state["vocab"]["items"])}
        mapping = np.array([0] + [sim_ix.get(n, 0) for n in self.state["vocab"]["items"]])
        rec = self._sim()
        usable = [s for s, its in rec.skill_items.items() if mapping[its].all()]
        if len(usable) < n_goal:
            raise DataError(f"only {len(usable)} skills have every item known to the simulator; need {n_goal}")
        stu = Sim(lambda hs, c: simulator._probs([(mapping[i], r) for i, r in hs], mapping[np.asarray(c)]), self._q())
        rng = np.random.default_rng(seed)
        pick = rng.permutation(len(logs.students))[:max_students]
        starts = [(logs.items[i][:history_len], logs.correct[i][:history_len]) for i in pick]
        starts = [(i[mapping[i] > 0], r[mapping[i] > 0]) for i, r in starts]
        goals = [sorted(int(s) for s in rng.choice(usable, n_goal, replace=False)) for _ in starts]
        cands = [rec.items_of(g) for g in goals]
        t0 = time.perf_counter()
        res = compare(rec, stu, starts, cands, goals, steps, _zone(target), seed)
        out = {"policies": res, "students": len(starts), "steps": steps, "goal_skills_per_student": n_goal,
               "simulator": f"{simulator.backbone} ({simulator.card.datasets[0] if simulator.card.datasets else '?'})",
               "seconds": round(time.perf_counter() - t0, 1)}
        note = (f"Path evaluation: simulated students are a separately trained `{simulator.backbone}` KT model, "
                "not real learners; gains are mastery under that model after the recommended practice.")
        self.card.notes = [n for n in self.card.notes if not n.startswith("Path evaluation:")] + [note]
        rows = [{"policy": k, **{m: round(x, 4) for m, x in r.items()}} for k, r in res.items()]
        self.card.add_evaluation(f"{name or table.source} (simulated paths)",
                                 {f"mastery_gain_{k.replace(' (no zone)', '_no_zone').replace('-', '_')}":
                                  r["mastery_gain"] for k, r in res.items()},
                                 {f"Simulated mastery gain after {steps} steps ({len(starts)} students, "
                                  f"simulator: {out['simulator']})": rows}, split="simulation")
        return out

    # ------------------------------------------------------------------ persistence
    def _save_weights(self, folder: Path) -> dict:
        if self.backbone == "pfa":
            from safetensors.numpy import save_file

            arrays, meta = self.model.state_dict()
            save_file(arrays, str(folder / "model.safetensors"))
            return {"format": "pfa", "meta": meta}
        from safetensors.torch import save_model

        save_model(self.model, str(folder / "model.safetensors"))
        return {"format": "torch", "arch": self.backbone, "config": self.state["arch"]}

    def _load_weights(self, folder: Path, config: dict) -> None:
        w = config["weights"]
        if w["format"] == "pfa":
            from safetensors.numpy import load_file

            from .pfa import PFA

            self.model = PFA.from_state_dict(load_file(str(folder / "model.safetensors")), w["meta"], self._q())
            return
        from safetensors.torch import load_model

        from . import models

        self.model = models.build(w["arch"], D.q_matrix(self.state["vocab"]), w["config"])
        load_model(self.model, str(folder / "model.safetensors"))
        self.model.eval()

    _split_info: dict = {}
