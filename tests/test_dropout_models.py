"""Issue 5, items 2-6: the three backbones train, predict with top features, evaluate with the
early-warning and fairness metrics, plot AUC by week, and save/load without pickle."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import has_pickle
from edu_flash import ConfigError, DataError, NotFittedError
from edu_flash.dropout import DropoutData, DropoutPredictor, sample_dropout_data

GRU = dict(hidden_size=16, max_epochs=6, batch_size=32, lr=5e-3)
W = 6


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def split():
    return sample_dropout_data(500, seed=0).split(0.3, seed=0)


@pytest.fixture(scope="module")
def models(split, tmp_path_factory):
    train, _ = split
    out = {}
    for b in DropoutPredictor.available_backbones():
        kw = dict(GRU, run_dir=tmp_path_factory.mktemp("run"), progress=False) if b == "gru" else {}
        out[b] = DropoutPredictor(backbone=b, max_week=12).finetune(train, **kw)
    return out


@pytest.mark.parametrize("backbone", ["gbm", "logreg", "gru"])
def test_backbone_learns_and_predicts_per_student(models, split, backbone):
    m, (_, test) = models[backbone], split
    ev = m.evaluate(test, week=W)
    assert ev["roc_auc"] > 0.68, ev["roc_auc"]
    p = m.predict(test, week=W)
    assert list(p.columns) == ["student", "week", "risk", "flagged", "status", "top_features"]
    assert len(p) == len(test.students) and (p["week"] == W).all()
    active = p["status"] == "active"
    left = test.students["withdrawn_week"].to_numpy() <= W
    assert (p.loc[left, "status"] == f"withdrawn by week {W}").all() and p.loc[left, "risk"].isna().all()
    assert p.loc[active, "risk"].between(0, 1).all() and p.loc[active, "top_features"].str.count(r"\(").eq(3).all()
    assert p["flagged"].sum() == (p.loc[active, "risk"] >= m.state["threshold"]).sum()


def test_evaluate_reports_every_metric_and_subgroup(models, split):
    ev = models["gbm"].evaluate(split[1], week=W, k=20)
    for key in ("roc_auc", "pr_auc", "f1", "precision", "recall", "threshold", "precision_at_k", "brier", "ece"):
        assert isinstance(ev[key], float) and not np.isnan(ev[key]), key
    assert ev["k"] == 20 and ev["week"] == W and ev["left_before_week"] > 0
    assert set(ev["subgroups"]) == {"gender", "age_band", "disability", "imd_band"}
    assert sum(g["n"] for g in ev["subgroups"]["gender"].values()) == ev["n"]
    assert ev["abroca"]["gender"]["reference"] in ("F", "M") and 0 <= ev["abroca"]["gender"]["max"] < 0.5
    assert abs(sum(b["n"] for b in ev["calibration"]) - ev["n"]) == 0


def test_risks_are_calibrated_despite_class_weights(models, split):
    """Balanced class weights shift the log-odds by log(neg/pos); removing the shift keeps the mean
    risk near the observed rate (it would be far above it otherwise)."""
    for b, m in models.items():
        shift = m.model.shift if b != "gru" else m.state["shift"]
        assert shift > 0.3, b  # the training positives are a minority of the student-weeks
        for w in (3, W, 10):
            p = m.predict(split[1], week=w)
            ev = m.evaluate(split[1], week=w)
            mean = p["risk"].mean()
            shifted = (1 / (1 + np.exp(-(np.log(p["risk"] / (1 - p["risk"])) + shift)))).mean()
            assert abs(mean - ev["prevalence"]) < 0.1 < abs(shifted - ev["prevalence"]), (b, w, mean, ev["prevalence"])


def test_predictions_ignore_everything_after_the_week(models, split):
    _, test = split
    st = test.students.assign(withdrawn_week=test.students["withdrawn_week"].where(
        test.students["withdrawn_week"] <= W, W + 4), final_result="Pass")
    act = test.activity.assign(clicks=np.where(test.activity["week"] > W, 0, test.activity["clicks"]))
    a = test.assessments.assign(score=np.where(test.assessments["submitted_week"] > W, 1.0, test.assessments["score"]))
    changed = DropoutData(st, act, a, columns=test.columns)
    for b, m in models.items():
        before, after = m.predict(test, week=W), m.predict(changed, week=W)
        pd.testing.assert_frame_equal(before, after, obj=b)


def test_contributions_add_up_to_the_log_odds(models, split):
    _, test = split
    for b in ("gbm", "logreg"):
        m = models[b]
        norm, _ = m._read(test, None, None, {}, need_label=False, name="t")
        _, _, X = m._design().at(norm, W)
        credits, bias = m.model.contributions(X)
        np.testing.assert_allclose(credits.sum(1) + bias, m.model.logit(X), rtol=0, atol=1e-9)
    ex = models["logreg"].explain(test, week=W)
    assert {"student", "feature", "value", "contribution"} <= set(ex.columns)
    first = ex[ex["student"] == ex["student"].iloc[0]]
    assert first["contribution"].is_monotonic_decreasing and "clicks_last_2w" in set(first["feature"])


def test_exported_trees_match_sklearn_bit_for_bit():
    from sklearn.ensemble import HistGradientBoostingClassifier

    from edu_flash.dropout.trees import TreeEnsemble

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = ((np.nan_to_num(X[:, 0]) + np.isnan(X[:, 1]) + rng.normal(0, .5, 3000)) > 0.5).astype(int)
    hgb = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(X[:2000], y[:2000])
    ens = TreeEnsemble.from_sklearn(hgb)
    assert np.array_equal(ens.raw(X[2000:]), hgb.decision_function(X[2000:]))
    back = TreeEnsemble({k: v.copy() for k, v in ens.state_dict().items()})
    c, bias = back.contributions(X[2000:])
    np.testing.assert_allclose(c.sum(1) + bias, hgb.decision_function(X[2000:]), atol=1e-9)


@pytest.mark.parametrize("backbone", ["gbm", "logreg", "gru"])
def test_save_load_gives_identical_predictions_and_no_pickle(models, split, backbone, tmp_path):
    m, (_, test) = models[backbone], split
    m.evaluate(test, week=W)
    folder = m.save_pretrained(tmp_path / backbone)
    assert has_pickle(folder) == []
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["hparams"]["target"] == "withdrawn" and cfg["state"]["threshold"] == m.state["threshold"]
    back = DropoutPredictor.from_pretrained(folder)
    pd.testing.assert_frame_equal(back.predict(test, week=W), m.predict(test, week=W))
    card = (folder / "README.md").read_text()
    for text in ("library_name: edu-flash", "roc_auc", "By subgroup: imd_band", "ABROCA", "Calibration",
                 "end of course week w", "no longer to be warned", "Out-of-scope", "Top features"):
        assert text in card, text


def test_early_warning_table_and_png(models, split, tmp_path):
    pytest.importorskip("matplotlib")
    _, test = split
    t = models["gbm"].early_warning(test, weeks=[2, 4, 8], png=tmp_path / "ew.png")
    assert list(t["week"]) == [2, 4, 8] and set(t["backbone"]) == {"gbm"}
    assert t["roc_auc"].between(0.5, 1).all() and (t["n"].diff().dropna() <= 0).all()  # leavers drop out
    assert (tmp_path / "ew.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("by week" in e["dataset"] for e in models["gbm"].card.evaluations)


def test_early_warning_trains_each_backbone_per_week(split, tmp_path):
    train, test = split
    t = DropoutPredictor(backbone="logreg", pool_weeks=False).early_warning(
        test, weeks=[3, 6], train=train, backbones=["logreg"], png=None)
    assert list(t["backbone"]) == ["logreg (per week)"] * 2 and t["roc_auc"].gt(0.6).all()


def test_plot_without_matplotlib_says_how_to_get_it(models, split, monkeypatch, tmp_path):
    for mod in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, mod, None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        models["logreg"].early_warning(split[1], weeks=[4], png=tmp_path / "x.png")
    assert len(models["logreg"].early_warning(split[1], weeks=[4], png=None)) == 1


def test_at_risk_target_and_generic_tables(split):
    """Tables passed one by one (no DropoutData), at_risk = Fail or Withdrawn."""
    train, test = split
    m = DropoutPredictor(backbone="logreg", target="at_risk", max_week=8).finetune(
        train.students, activity=train.activity, assessments=train.assessments,
        static_columns=train.columns["static_columns"], time_unit="week")  # weeks 1-8 of a 30-week course
    ev = m.evaluate(test.students, activity=test.activity, assessments=test.assessments, week=4)
    assert ev["prevalence"] > 0.4 and ev["roc_auc"] > 0.65
    one = m.predict(test.students.iloc[0].to_dict(), activity=test.activity, assessments=test.assessments, week=4)
    assert len(one) == 1


def test_errors_are_the_library_s_own(models, split):
    train, test = split
    with pytest.raises(ConfigError, match="unknown backbone 'lstm'.*gbm"):
        DropoutPredictor(backbone="lstm")
    with pytest.raises(ConfigError, match="threshold"):
        DropoutPredictor(threshold=1.5)
    with pytest.raises(NotFittedError):
        DropoutPredictor().predict(test)
    with pytest.raises(DataError, match="assessments=..."):
        models["gbm"].predict(test.students, activity=test.activity)
    with pytest.raises(DataError, match="one class"):
        DropoutPredictor(backbone="logreg").finetune(train.students.assign(final_result="Pass"),
                                                     activity=train.activity, assessments=train.assessments)
    with pytest.raises(ConfigError, match="week"):
        models["gbm"].predict(test, week=-1)


def test_import_stays_light():
    code = ("import sys, edu_flash\nfrom edu_flash import DropoutPredictor\nDropoutPredictor(backbone='gru')\n"
            "print([m for m in ('pandas', 'sklearn', 'torch', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
