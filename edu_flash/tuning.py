"""Hyperparameter search on Optuna: `edu_flash.tune(Task, space, train, val, n_trials=..., metric=...)`.

Each trial builds the task with the sampled hyperparameters and runs its ordinary `finetune`; a
callback reports the trainer's validation metric to Optuna after every epoch, and a trial the
pruner gives up on stops there. The trial's value is its best validation value of `metric` (the
weights the task returns); a scikit-learn backbone, which has no epochs, is scored with `evaluate`
on the validation data. The sampler is seeded (TPE), and every trial trains with the same seed
hyperparameter, so the same call gives the same study.

A search space maps hyperparameter names to
- a list: one of these values (categorical);
- {low, high} (+ log: true, step: ...): a range; ints when low and high are ints (type: float /
  int forces it), e.g. {low: 1e-4, high: 1e-2, log: true};
- any other value: fixed for every trial.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.callbacks import Callback, default_mode, metric_name
from .core.errors import ConfigError

log = logging.getLogger("edu_flash.tune")
_RANGE_KEYS = {"low", "high", "log", "step", "type"}


def check_space(space: dict, cls) -> dict:
    """The search space, checked against the task's hyperparameters before anything trains."""
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"the search space must be a non-empty mapping of hyperparameter -> values, got {space!r}")
    names = cls.hparams_cls.names()
    unknown = sorted(set(space) - set(names))
    if unknown:
        raise ConfigError(f"search space: {unknown} are not hyperparameters of {cls.__name__} (valid: {names})")
    for name, spec in space.items():
        if isinstance(spec, (list, tuple)):
            if not spec:
                raise ConfigError(f"search space: {name} lists no values")
        elif isinstance(spec, dict):
            bad = sorted(set(spec) - _RANGE_KEYS)
            if bad or "low" not in spec or "high" not in spec:
                raise ConfigError(f"search space: {name} must be a list of values or {{low, high, log?, step?, "
                                  f"type?}}, got {spec!r}")
            lo, hi = spec["low"], spec["high"]
            if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo < hi):
                raise ConfigError(f"search space: {name} needs numbers low < high, got {lo!r} and {hi!r}")
            if spec.get("log") and lo <= 0:
                raise ConfigError(f"search space: {name} has log: true, so low must be > 0")
            if spec.get("type") not in (None, "int", "float"):
                raise ConfigError(f"search space: {name} type must be int or float, got {spec['type']!r}")
    return space


def _suggest(trial, name: str, spec):
    if isinstance(spec, (list, tuple)):
        return trial.suggest_categorical(name, list(spec))
    if not isinstance(spec, dict):
        return spec
    lo, hi, kind = spec["low"], spec["high"], spec.get("type")
    if kind == "int" or (kind is None and isinstance(lo, int) and isinstance(hi, int)):
        return trial.suggest_int(name, int(lo), int(hi), step=int(spec.get("step") or 1), log=bool(spec.get("log")))
    return trial.suggest_float(name, float(lo), float(hi), step=spec.get("step"), log=bool(spec.get("log")))


class _Report(Callback):
    """Feeds the trainer's validation metric to Optuna each epoch; stops a trial it prunes."""

    def __init__(self, trial, metric: str):
        self.trial, self.metric, self.pruned = trial, metric, False

    def on_validation_end(self, state):
        value = state.metrics.get(self.metric)
        if value is None or value != value:
            return
        self.trial.report(float(value), step=state.epoch)
        if self.trial.should_prune():
            self.pruned = True
            state.stop(f"pruned by Optuna at epoch {state.epoch}")


@dataclass
class TuneResult:
    study: Any                     # the optuna Study
    metric: str
    direction: str                 # "maximize" / "minimize"
    best_task: Any = None          # the best trial's trained task
    run_dir: Path | None = None
    space: dict = field(default_factory=dict)
    test_metrics: dict | None = None   # edu-flash tune: the best model on the recipe's test split

    @property
    def table(self):
        """One row per trial: number, state, value, params_*, duration, epochs."""
        return self.study.trials_dataframe(attrs=("number", "state", "value", "params", "duration", "user_attrs"))

    @property
    def best_params(self) -> dict:
        return self.study.best_params

    @property
    def best_value(self) -> float:
        return self.study.best_value

    def __repr__(self) -> str:
        states = [t.state.name for t in self.study.trials]
        return (f"TuneResult({self.metric} {self.direction}: best {self.best_value:.4g} with {self.best_params}; "
                f"{states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, {states.count('FAIL')} failed)")


def _pruner(pruner):
    import optuna

    if pruner is None or pruner == "none":
        return optuna.pruners.NopPruner()
    if pruner == "median":  # judged from epoch 2 on, once 3 trials have finished
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    raise ConfigError(f"pruner must be 'median', 'hyperband', 'none' or an optuna pruner, got {pruner!r}")


def _probe(cls, backbone, hparams, train, val, finetune_args):
    """(monitor, mode, validation metric names) of the task's trainer, found by preparing the data
    and validating the untrained model once: a data error or a metric name the validation does not
    report shows before any trial. (None, None, None) for a scikit-learn backbone."""
    from .core.trainer_parts import _validate

    def probe(t, prepared, hp, run_dir):
        if t.backbone_spec().engine != "torch":
            return None, None, None
        job = t._train_job(prepared)
        if job.validate is None:
            return None, None, []
        return job.monitor, job.mode, sorted(_validate(job, job.model))

    return cls(backbone, **hparams)._probe_finetune(probe, train, val, **finetune_args)


def tune(task, space: dict, train, val=None, *, n_trials: int = 20, metric: str | None = None,
         direction: str | None = None, backbone: str | None = None, hparams: dict | None = None,
         finetune_args: dict | None = None, evaluate_args: dict | None = None, seed: int = 0,
         pruner="median", timeout: float | None = None, run_dir: str | os.PathLike = "runs/tune",
         study_name: str | None = None, storage: str | None = None) -> TuneResult:
    """Search `space` for the hyperparameters of `task` (a class, instance or name) with the best
    validation `metric` (default: the metric the task's trainer follows; direction from its mode,
    or "minimize" for losses and errors). `val` is the validation data (tasks that hold out their own,
    like PathRecommender, may go without). Returns a TuneResult: `.table`, `.best_params`,
    `.best_value`, `.best_task` (trained), `.study`."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("tune needs Optuna: pip install 'edu-flash[tune]'") from None
    from .leaderboard import _task_class

    cls = _task_class(task)
    check_space(space, cls)
    hparams, finetune_args = dict(hparams or {}), dict(finetune_args or {})
    backbone = backbone or (task.backbone if not isinstance(task, type) and hasattr(task, "backbone") else None)
    backbone = backbone or cls.default_backbone
    if direction not in (None, "maximize", "minimize"):
        raise ConfigError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"n_trials must be a positive int, got {n_trials!r}")
    torch_engine = cls(backbone, **hparams).backbone_spec().engine == "torch"  # bad fixed hyperparameters fail here
    monitor, mode, names = _probe(cls, backbone, hparams, train, val, finetune_args)
    if torch_engine and not names:
        raise ConfigError(f"tune: {cls.__name__} has no validation data to tune on: pass val=")
    if metric is None:
        text = cls.card_text
        metric = monitor or (text.headline_metrics[0] if text and text.headline_metrics else None)
        if metric is None:
            raise ConfigError("tune: give metric=")
    else:
        metric = metric_name(metric)
        if names and metric not in names:
            raise ConfigError(f"tune: metric {metric!r} is not a validation metric of {cls.__name__}; "
                              f"it reports {names}")
        mode = mode if metric == monitor else None
    direction = direction or {"max": "maximize", "min": "minimize"}[mode or default_mode(metric)]
    if not torch_engine and val is None:
        raise ConfigError(f"tune: backbone {backbone!r} is scored with evaluate() on validation data: pass val=")
    run_dir = Path(run_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # edu-flash reports the trials itself
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction=direction, sampler=sampler, pruner=_pruner(pruner), study_name=study_name,
                                storage=storage, load_if_exists=storage is not None)
    result = TuneResult(study, metric, direction, run_dir=run_dir, space=space)
    better = (lambda a, b: a > b) if direction == "maximize" else (lambda a, b: a < b)

    def objective(trial):
        try:
            return run_trial(trial)
        except ConfigError as e:  # a combination the task refuses (e.g. heads not dividing the width)
            trial.set_user_attr("error", str(e))
            raise

    def run_trial(trial):
        params = {name: _suggest(trial, name, spec) for name, spec in space.items()}
        t = cls(backbone, **{**hparams, **params})
        report = _Report(trial, metric)
        kw = dict(finetune_args)
        if torch_engine:
            kw.update(callbacks=[*kw.pop("callbacks", []), report], monitor=metric,
                      mode="max" if direction == "maximize" else "min")
        t.finetune(train, val, run_dir=run_dir / f"trial-{trial.number:03d}", **kw)
        rep = t.last_train_report
        if rep is not None:
            trial.set_user_attr("epochs", rep.epochs)
        if report.pruned:
            raise optuna.TrialPruned()
        if torch_engine and rep is not None and rep.best_metric is not None:
            value = float(rep.best_metric)
        else:
            value = float(t.evaluate(val, **(evaluate_args or {}))[metric])
        if not _has_best(study) or better(value, study.best_value):
            result.best_task = t
        return value

    study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(ConfigError,))
    if not _has_best(study):
        errors = sorted({t.user_attrs["error"] for t in study.trials if "error" in t.user_attrs})
        raise ConfigError(f"tune: no trial finished{': ' + '; '.join(errors[:3]) if errors else ''}")
    result.best_task.card.add_section("Hyperparameter search", _card_section(result, seed))
    return result


def _card_section(res: TuneResult, seed: int) -> str:
    from .core.card import md_table

    trials = res.study.trials
    states = [t.state.name for t in trials]
    done = sorted((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value,
                  reverse=res.direction == "maximize")
    rows = [{"trial": t.number, res.metric: round(t.value, 4), **t.params} for t in done[:5]]
    return (f"Optuna (TPE sampler, seed {seed}) searched {json.dumps(res.space)} over {len(trials)} trials "
            f"({states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned by the validation {res.metric} "
            f"after an epoch, {states.count('FAIL')} failed), to {res.direction} the validation {res.metric}. "
            f"This model is trial {res.study.best_trial.number}. Best trials:\n\n{md_table(rows)}")


def _has_best(study) -> bool:
    return any(t.state.name == "COMPLETE" for t in study.trials)


# ---------------------------------------------------------------------------------------- recipes
_TUNE_KEYS = {"backbone", "space", "n_trials", "metric", "direction", "seed", "pruner", "timeout"}


def check_recipe_tune(recipe, cls, path) -> None:
    """A recipe's `tune:` section (and quick.tune), checked with the rest of the recipe."""
    for where, section in (("tune", recipe.tune), ("quick.tune", recipe.quick.get("tune") or {})):
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: `{where}` must be a mapping")
        unknown = sorted(set(section) - _TUNE_KEYS)
        if unknown:
            raise ConfigError(f"{path}: unknown key(s) {unknown} in `{where}`; allowed: {sorted(_TUNE_KEYS)}")
    if not recipe.tune.get("space"):
        raise ConfigError(f"{path}: `tune` needs a `space` (hyperparameter -> values or {{low, high}})")
    b = recipe.tune.get("backbone") or cls.default_backbone
    if b not in cls.backbones:
        raise ConfigError(f"{path}: tune.backbone {b!r} is not registered for {cls.__name__}")
    try:
        check_space(recipe.tune["space"], cls)
    except ConfigError as e:
        raise ConfigError(f"{path}: tune: {e}") from None


def tune_recipe(recipe, *, data_root="../shared/datasets", out="runs/tune", quick: bool = False,
                n_trials: int | None = None) -> TuneResult:
    """`edu-flash tune tasks/<task>.yaml`: the recipe's data and split, its hyperparameters for the
    tuned backbone, the search; then the best model is scored on the test split and saved with its
    card to `<out>/<task>/best`, the trials table to `<out>/<task>/trials.csv`."""
    from .recipes import Recipe, load_recipe, load_splits

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    if quick:
        recipe = recipe.quick_version()
    if not recipe.tune:
        raise ConfigError(f"{recipe.path}: the recipe declares no search space (a `tune:` section)")
    t = recipe.tune
    cls = recipe.task_class
    backbone = t.get("backbone") or cls.default_backbone
    splits = load_splits(recipe, data_root)
    root = Path(out) / cls.task_name
    res = tune(cls, t["space"], splits.train, splits.val, backbone=backbone,
               n_trials=int(n_trials or t.get("n_trials", 20)), metric=t.get("metric"), direction=t.get("direction"),
               hparams={**recipe.hparams, **recipe.backbones.get(backbone, {})}, finetune_args=splits.finetune_args,
               evaluate_args={k: v for k, v in splits.evaluate_args.items() if k != "name"},
               seed=int(t.get("seed", recipe.hparams.get("seed", 0))), pruner=t.get("pruner", "median"),
               timeout=t.get("timeout"), run_dir=root / "trials")
    res.test_metrics = res.best_task.evaluate(splits.test, **splits.evaluate_args)
    root.mkdir(parents=True, exist_ok=True)
    res.table.to_csv(root / "trials.csv", index=False)
    res.best_task.save_pretrained(root / "best")
    return res

