"""PathRecommender: interaction logs -> knowledge tracing -> next items and learning paths."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..core.data import read_table
from ..core.errors import ConfigError
from ..core.registry import Backbone
from ..core.task import Task
from . import data as D
from .evaluation import metrics as _metrics
from .card import CARD_TEXT, describe, items_are_skills_note
from .hparams import PathHParams


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
        "bkt": Backbone("bkt", "sklearn", None, "Bayesian Knowledge Tracing: per-skill HMM fitted by EM "
                                                "(Corbett & Anderson 1995)"),
    }
    card_text = CARD_TEXT

    def __init__(self, backbone: str | None = None, **hparams):
        super().__init__(backbone, **hparams)
        self.planners: dict = {}   # name -> fitted classical model (plan_models)
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
        self._fit_planners()
        if self.backbone == "bkt":
            self.card.procedure.update({"engine": "numpy EM (in-process)", "EM iterations": self.model.iterations,
                                        "training log-likelihood": round(self.model.log_likelihood, 1)})
        elif self.backbone != "pfa":
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
        self._last_prep = _Prepared(logs, val_logs)
        return self._last_prep

    def _split(self, prep: _Prepared) -> tuple[D.Logs, D.Logs | None]:
        if prep.val is not None:
            return prep.train, prep.val
        return D.split_students(prep.train, self.hparams.val_fraction, self.hparams.seed)

    def _describe_data(self, prep: _Prepared) -> dict:
        self.card.notes = [n for n in self.card.notes if not n.startswith("Items are skills")]
        if D.items_are_skills(self.state["vocab"]):
            self.card.notes.append(items_are_skills_note())
        return describe(prep, self.state["vocab"], self._split_info)

    def _card_hparams(self) -> dict:
        from .card import card_hparams

        return card_hparams(self)

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
            cfg["item_bias"] = hp.item_bias if hp.item_bias is not None else not D.items_are_skills(v)
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
        from . import classical

        self._split_info = {"validation students": 0}  # no early stopping to feed: fit on every student
        self.model = classical.fit(self.backbone, self.state["vocab"], *self._all_logs(prep), self.hparams)

    @staticmethod
    def _all_logs(prep: _Prepared) -> tuple[list, list]:
        return (prep.train.items + (prep.val.items if prep.val else []),
                prep.train.correct + (prep.val.correct if prep.val else []))

    def _fit_planners(self) -> None:
        from . import classical, policy

        names = [m for m in dict.fromkeys(self.hparams.plan_models) if m != self.backbone]
        prep, self._last_prep = self._last_prep, None
        self.planners = {m: classical.fit(m, self.state["vocab"], *self._all_logs(prep), self.hparams) for m in names}
        if names:
            self.card.procedure["planning models"] = ", ".join([self.backbone, *names]) + \
                f" (fitted on the same students; recommend and plan_path combine them: {policy.RULE_WORDS[self.hparams.plan_rule]})"

    @property
    def _classical(self) -> bool:
        return self.backbone in ("pfa", "bkt")

    def _stride(self) -> int:
        return self.hparams.eval_stride or max(1, self.hparams.window // 2)

    # ------------------------------------------------------------------ model access
    def _probs(self, hists, cand):
        """[H, C] next-response P(correct) for histories given as (item index array, 0/1 array)."""
        import numpy as np

        self._require_fitted()
        if self._classical:
            return self.model.next_probs(hists, cand)
        from .infer import next_probs

        return next_probs(self.model, hists, np.asarray(cand), window=self.hparams.window,
                          batch_size=self.hparams.predict_batch_size)

    def _sim(self):
        """The model recommend / plan_path plan with: the backbone, with `plan_models` beside it."""
        from .policy import Sim

        own = Sim(self._probs, self._q())
        if not self.planners:
            return own
        from .policy import Ensemble

        return Ensemble([own] + [Sim(m.next_probs, self._q()) for m in self.planners.values()],
                        self.hparams.plan_rule)

    def _sequence_probs(self, logs: D.Logs, precision: str = "32"):
        if self._classical:
            import numpy as np

            ps = self.model.sequence_probs(logs.items, logs.correct)
            return (np.concatenate([c[1:] for c in logs.correct]), np.concatenate([p[1:] for p in ps]))
        from .infer import eval_probs

        y, p, _ = eval_probs(self.model, logs.items, logs.correct, window=self.hparams.window, stride=self._stride(),
                             batch_size=self.hparams.predict_batch_size, precision=precision)
        return y, p

    def _histories(self, history, cols: D.Columns) -> tuple[list[str], list]:
        return D.histories(history, cols, self.state["vocab"])

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

    def recommend(self, history, k: int = 5, *, goal_skills=None, candidates=None, target=None,
                  strict: bool = True, **columns) -> list[dict]:
        """The next items to practise, best first.

        With `goal_skills`, the planner looks `plan_depth` answers ahead over their items and ranks by
        the expected goal mastery its plan ends with (`planned_gain`); without, each item is judged
        one step ahead on its own skills. `expected_gain` is E[mastery after the answer] - mastery
        now. By default (strict) an item is returned only if its expected gain is positive, it still
        practises a skill below `mastered`, and its P(correct) is inside `target` (low, high) when
        given; strict=False returns the others after those, marked."""
        from .paths import recommend

        self._require_fitted()
        return recommend(self, history, int(k), target, goal_skills, candidates, strict, columns)

    def plan_path(self, history, goal_skills, steps: int = 10, *, candidates=None, samples: int = 16,
                  seed: int = 0, **columns):
        """A `steps`-item practice path towards `goal_skills`, planned before any answer is known
        (look-ahead averaged over `samples` simulated answer sequences). Returns a PathPlan:
        print it for the table (step, item, skills, P(correct), expected goal mastery), `.table()`
        for a DataFrame, `.plot(path)` for expected mastery per goal skill along the path. Expected
        goal mastery never falls along the plan; the path stops early (and says why) when no item
        raises it or every goal skill is mastered."""
        from .paths import plan_path

        self._require_fitted()
        return plan_path(self, history, goal_skills, steps, candidates, samples, seed, columns)

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

    def evaluate_paths(self, data, simulators, *, steps: int = 10, n_goal: int = 3, max_students: int = 500,
                       history_len: int = 20, goals: str = "next", policies=None, seed: int = 0,
                       n_boot: int = 2000, rollouts: int = 1, name: str | None = None, **columns) -> dict:
        """Closed-loop simulated practice: this recommender's policy against random, easiest-first,
        round-robin, weakest-first and an oracle, under each of `simulators` as the student.

        simulators: separately trained PathRecommenders (or folders): one, a list, or {name: model}.
        Each answers the chosen items (draws from its P(correct), the same draws for every policy)
        and measures goal mastery. Students: up to `max_students` from `data`, starting from their
        first `history_len` responses; goal skills: the first `n_goal` skills each practised next in
        `data` (goals="next") or random ones. Per simulator: each policy's mean gain in goal mastery
        with a bootstrap 95% interval over students, the recommender's paired difference to each
        policy, and its gain over random as a share of the oracle's. Recorded for the card.
        rollouts: practice runs per student (new draws each, shared by all policies), averaged per
        student, so the intervals measure students rather than the simulator's coin flips; cost grows
        with it.
        """
        from .paths import evaluate_paths, record, _simulators

        self._require_fitted()
        sims = _simulators(PathRecommender, simulators)
        table = read_table(D.as_table(data, "paths"), name=name or "paths", split="test")
        logs, _ = D.read_logs(table, self._cols(**columns), vocab=self.state["vocab"], unknown="skip")
        out = evaluate_paths(self, logs, sims, steps=int(steps), n_goal=int(n_goal), max_students=int(max_students),
                             history_len=int(history_len), goals=goals, policies=policies, seed=int(seed),
                             n_boot=int(n_boot), rollouts=int(rollouts))
        record(self, out, f"{name or table.source} (simulated practice paths)")
        return out

    def _bench_report(self, splits, *, run_dir: Path, simulators=("dkt", "pfa", "bkt"), sim_fraction: float = 0.5,
                      steps: int = 10, n_goal: int = 3, history_len: int = 20, max_students: int = 500,
                      samples: int = 3, seed: int = 0, cross: bool = True, rollouts: int = 1) -> None:
        """`edu-flash bench`: study.bench_report (path study, verdict, cross-oracle table, random students)."""
        from .study import bench_report

        bench_report(self, splits, run_dir=Path(run_dir), simulators=tuple(simulators), sim_fraction=sim_fraction,
                     steps=steps, n_goal=n_goal, history_len=history_len, max_students=max_students,
                     samples=samples, seed=seed, cross=bool(cross), rollouts=int(rollouts))

    def _export_spec(self):  # core.export: task.export("model.onnx")
        from .export import spec

        return spec(self)

    # ------------------------------------------------------------------ persistence
    def _save_weights(self, folder: Path) -> dict:
        from . import classical

        extra = {"planners": classical.save(self.planners, folder / "planners.safetensors")} if self.planners else {}
        if self._classical:
            meta = classical.save({self.backbone: self.model}, folder / "model.safetensors", prefixed=False)
            return {"format": self.backbone, "meta": meta[self.backbone], **extra}
        from safetensors.torch import save_model

        save_model(self.model, str(folder / "model.safetensors"))
        return {"format": "torch", "arch": self.backbone, "config": self.state["arch"], **extra}

    def _load_weights(self, folder: Path, config: dict) -> None:
        from . import classical

        w = config["weights"]
        self.planners = classical.load(folder / "planners.safetensors", w["planners"], self._q()) \
            if w.get("planners") else {}
        if w["format"] in classical.CLASSICAL:
            self.model = classical.load(folder / "model.safetensors", {w["format"]: w["meta"]}, self._q(),
                                        prefixed=False)[w["format"]]
            return
        from safetensors.torch import load_model

        from . import models

        self.model = models.build(w["arch"], D.q_matrix(self.state["vocab"]), w["config"])
        load_model(self.model, str(folder / "model.safetensors"))
        self.model.eval()

    _split_info: dict = {}
    _last_prep = None
