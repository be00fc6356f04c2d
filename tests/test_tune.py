"""Issue 15, item 5: `edu_flash.tune` on Optuna (pruning fed by the trainer's validation metric
each epoch, the study's table and the best task, seeded and reproducible) and `edu-flash tune` for
recipes that declare a search space."""
from __future__ import annotations

import textwrap

import pytest

import edu_flash
from edu_flash import ConfigError, DropoutPredictor, PathRecommender

optuna = pytest.importorskip("optuna", reason="optuna is not installed (pip install 'edu-flash[tune]')")

SPACE = {"lr": {"low": 1e-3, "high": 3e-2, "log": True}, "d_model": [32, 64]}


@pytest.fixture(scope="module")
def kt():
    return PathRecommender.builtin_data(seed=0)


def _tune(kt, tmp, **kw):
    args = dict(n_trials=4, hparams={**kt.hparams, "max_epochs": 3}, finetune_args={"loggers": None}, run_dir=tmp)
    return edu_flash.tune(PathRecommender, SPACE, kt.train, kt.val, **{**args, **kw})


def test_tune_is_seeded_and_returns_the_table_and_best_task(kt, tmp_path):
    a = _tune(kt, tmp_path / "a", seed=3)
    b = _tune(kt, tmp_path / "b", seed=3)
    cols = ["number", "state", "value", "params_lr", "params_d_model"]
    assert a.table[cols].equals(b.table[cols])  # the same study twice
    assert len(a.table) == 4 and a.metric == "auc" and a.direction == "maximize"
    best = a.best_task
    assert best.last_train_report.best_metric == a.best_value == a.table["value"].max()
    assert best.hparams.lr == a.best_params["lr"] and best.hparams.d_model == a.best_params["d_model"]
    assert "Hyperparameter search" in best.model_card() and f"trial {a.study.best_trial.number}" in best.model_card()
    c = _tune(kt, tmp_path / "c", seed=4)
    assert not a.table["params_lr"].equals(c.table["params_lr"])


def test_pruning_is_fed_by_the_validation_metric_each_epoch(kt, tmp_path):
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    res = _tune(kt, tmp_path, n_trials=6, seed=0, pruner=pruner, hparams={**kt.hparams, "max_epochs": 4})
    trials = res.study.trials
    best = res.study.best_trial
    history = [h["auc"] for h in res.best_task.last_train_report.history]
    assert [best.intermediate_values[e] for e in sorted(best.intermediate_values)] == pytest.approx(history)
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned, "the median pruner pruned nothing"
    assert all(t.user_attrs["epochs"] < 4 and len(t.intermediate_values) == t.user_attrs["epochs"] for t in pruned)


def test_a_scikit_learn_backbone_is_scored_with_evaluate(tmp_path):
    d = DropoutPredictor.builtin_data(seed=0)
    res = edu_flash.tune(DropoutPredictor, {"gbm_max_leaf_nodes": [7, 31], "gbm_learning_rate": [0.05, 0.1]}, d.train,
                         d.val, backbone="gbm", metric="roc_auc", n_trials=2, hparams=d.hparams,
                         finetune_args={**d.finetune_args, "loggers": None}, evaluate_args=d.evaluate_args,
                         run_dir=tmp_path)
    assert res.direction == "maximize" and res.best_task.backbone == "gbm"
    assert res.best_value == pytest.approx(res.best_task.evaluate(d.val, **d.evaluate_args)["roc_auc"])


def test_bad_spaces_and_metrics_fail_before_any_trial(kt, tmp_path):
    with pytest.raises(ConfigError, match="not hyperparameters of PathRecommender"):
        edu_flash.tune(PathRecommender, {"learning_rate": [1e-3]}, kt.train, kt.val)
    with pytest.raises(ConfigError, match="low < high"):
        edu_flash.tune(PathRecommender, {"lr": {"low": 1e-2, "high": 1e-3}}, kt.train, kt.val)
    with pytest.raises(ConfigError, match=r"metric 'qwk' is not a validation metric.*'auc'"):
        _tune(kt, tmp_path, metric="qwk")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_edu_flash_tune_runs_a_recipe(tmp_path, monkeypatch, capsys):
    from edu_flash.cli import main

    recipe = tmp_path / "kt.yaml"
    recipe.write_text(textwrap.dedent("""
        task: path_recommendation
        data: {source: builtin}
        backbones: {dkt: {max_epochs: 2, d_model: 32}}
        metric: auc
        tune:
          backbone: dkt
          n_trials: 5
          space: {lr: {low: 1.0e-3, high: 2.0e-2, log: true}, dropout: {low: 0.0, high: 0.4}}
        quick: {tune: {n_trials: 2}}
        """))
    monkeypatch.chdir(tmp_path)
    assert main(["tune", str(recipe), "--quick", "--out", "out"]) == 0
    printed = capsys.readouterr().out
    assert "best: auc" in printed and "best model on the test split" in printed
    import pandas as pd

    trials = pd.read_csv(tmp_path / "out" / "path_recommendation" / "trials.csv")
    assert len(trials) == 2 and {"params_lr", "params_dropout"} <= set(trials.columns)
    best = PathRecommender.from_pretrained(tmp_path / "out" / "path_recommendation" / "best")
    assert best.hparams.d_model == 32 and "Hyperparameter search" in best.model_card()
    assert any(e["dataset"].endswith("(test split)") for e in best.card.evaluations)


def test_recipes_check_their_search_space(tmp_path):
    from edu_flash.recipes import load_recipe

    assert load_recipe(_repo("tasks/path_recommendation.yaml")).tune["backbone"] == "dkt"
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: path_recommendation\ndata: {source: builtin}\nbackbones: [dkt]\n"
                   "tune: {space: {window_size: [10, 20]}}\n")
    with pytest.raises(ConfigError, match="window_size"):
        load_recipe(bad)


def _repo(rel):
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / rel
