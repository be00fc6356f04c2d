"""Issue 16 (DropoutPredictor explanations and cards): near-duplicate features explained together,
the flag threshold chosen on held-out students, and cards built from what the model used, with a
snippet that runs as written against the saved model."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from edu_flash.dropout import DropoutData, DropoutPredictor, sample_dropout_data

pytestmark = pytest.mark.usefixtures("one_thread")
GRU = dict(hidden_size=16, max_epochs=3, batch_size=32, lr=5e-3, progress=False)


def _duplicated(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """x1 and x2 are the same measurement twice (r ~ 0.96); the outcome also depends on their small
    difference, so a linear model gives them large coefficients of opposite sign."""
    rng = np.random.default_rng(seed)
    z, e = rng.normal(0, 1, n), rng.normal(0, 0.15, n)
    y = rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 1.2 * z + 8 * e)))
    return pd.DataFrame({"student": [f"s{i}" for i in range(n)], "final_result": np.where(y, "Withdrawn", "Pass"),
                         "withdrawn_week": np.where(y, rng.integers(4, 7, n), np.nan), "x1": z + e, "x2": z - e,
                         "other": rng.normal(0, 1, n)})


@pytest.mark.parametrize("backbone", ["logreg", "gbm"])
def test_near_duplicate_features_are_explained_together(backbone):
    st = _duplicated()
    train, test = st.iloc[:1200], st.iloc[1200:].drop(columns="final_result")
    m = DropoutPredictor(backbone=backbone).finetune(train)
    assert ["x1", "x2"] in m.state["collinear"]["2"]
    ex = m.explain(test, week=2)
    assert "x1 & x2" in set(ex["feature"]) and not {"x1", "x2"} & set(ex["feature"])
    p = m.predict(test, week=2)
    assert p["top_features"].str.contains(r"x1=[-\d.]+ & x2=[-\d.]+ \(").any()
    # a student the model finds safe is not shown a large risk-raising credit from half of the pair
    pair = ex[ex["feature"] == "x1 & x2"].set_index("student")["contribution"]
    safe = p.loc[p["risk"] < 0.1, "student"]
    assert len(safe) > 20 and (pair.loc[safe] < 0.5).all(), pair.loc[safe].max()
    # the group's credit is the sum of its members' (against the average student at week 2)
    norm, _ = m._read(test, None, None, {}, need_label=False, name="t")
    _, _, X = m._design().at(norm, 2)
    C, _ = m.model.contributions(X)
    C = C - np.asarray(m.state["reference"]["2"])
    names = m.model.groups(m._design().groups)
    summed = C[:, [i for i, g in enumerate(names) if g in ("x1", "x2")]].sum(1)
    np.testing.assert_allclose(pair.loc[test["student"]].to_numpy(), summed, atol=1e-9)


def test_ungrouped_credits_would_contradict_the_risk():
    """The control: alone, x2's credit is large and risk-raising for students the model finds safe
    (x1's cancels it), which is what was shown before grouping."""
    st = _duplicated()
    train, test = st.iloc[:1200], st.iloc[1200:].drop(columns="final_result")
    m = DropoutPredictor(backbone="logreg").finetune(train)
    coef = dict(zip(m.model.groups(m._design().groups), m.model.coef))
    assert np.sign(coef["x1"]) != np.sign(coef["x2"]) and min(abs(coef["x1"]), abs(coef["x2"])) > 1.0
    norm, _ = m._read(test, None, None, {}, need_label=False, name="t")
    _, _, X = m._design().at(norm, 2)
    C, _ = m.model.contributions(X)
    alone = C[:, m.model.groups(m._design().groups).index("x2")]
    safe = m.predict(test, week=2)["risk"].to_numpy() < 0.1
    assert alone[safe].max() > 1.0


def test_threshold_is_chosen_on_held_out_students_and_evaluate_reports_the_flagged_share():
    from edu_flash.dropout.evaluation import best_f1_threshold
    from edu_flash.dropout.fitting import _holdout

    d = sample_dropout_data(600, seed=5)
    train, test = d.split(0.25, seed=0)
    m = DropoutPredictor(backbone="gbm", max_week=12).finetune(train)
    held = _holdout(train.students, train.students["student"].to_numpy(),
                    (train.students["final_result"] == "Withdrawn").to_numpy().astype(int), 0.15, 0)
    assert m.state["held_out"] == held.sum() > 0
    assert "held-out" in m.state["threshold_how"] and "held-out" in str(m.card.hyperparameters["threshold"])
    sub = train.subset(train.students["student"][held])
    norm, y = m._labelled(sub, None, None, {}, "held")
    X, owner, _ = m._design().rows(norm, list(range(1, 13)))
    assert m.state["threshold"] == pytest.approx(best_f1_threshold(y[owner], 1 / (1 + np.exp(-m.model.logit(X)))))
    ev = m.evaluate(test, week=6)
    assert ev["flagged_share"] == pytest.approx(ev["flagged"] / ev["n"]) and 0 < ev["flagged_share"] < 1
    with_val = DropoutPredictor(backbone="logreg", max_week=12).finetune(train, val=test)
    assert with_val.state["held_out"] == 0 and "validation" in with_val.state["threshold_how"]


def _short(seed: int = 0, weeks: int = 5) -> DropoutData:
    """Activity only (no assessments, no static features), 5 weeks of data."""
    d = sample_dropout_data(500, seed=seed)
    st = d.students[["student", "final_result", "withdrawn_week"]].assign(
        withdrawn_week=lambda f: f["withdrawn_week"].where(f["withdrawn_week"] <= weeks))
    return DropoutData(st, d.activity[d.activity["week"] <= weeks], None, "five weeks of clicks")


def _snippet(card: str) -> str:
    how = card.split("## How to use", 1)[1]
    return re.search(r"```python\n(.*?)```", how, re.S).group(1)


def _run(code: str, cwd) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd,
                         env={"OMP_NUM_THREADS": "1", "PYTHONPATH": ":".join(sys.path)})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.parametrize("backbone", ["gbm", "logreg", "gru"])
def test_card_describes_this_model_and_its_snippet_runs(backbone, tmp_path):
    train, test = _short().split(0.3, seed=0)
    m = DropoutPredictor(backbone=backbone).finetune(train, **(GRU if backbone == "gru" else {}),
                                                     **({"run_dir": tmp_path / "run"} if backbone == "gru" else {}))
    m.evaluate(test)
    card = (m.save_pretrained(tmp_path / "model") / "README.md").read_text()
    lim = card.split("## Limitations and bias", 1)[1].split("## Training procedure")[0]
    for claim in ("deprivation", "disability", "subgroup AUC", "Scores are taken", "submitted and scored"):
        assert claim not in lim, claim
    assert "No static features" in lim and "No assessments are used" in lim and "weeks 1-5" in lim
    code = _snippet(card)
    assert "load_oulad" not in code and "week=3" in code and "week=6" not in code
    out = _run(code, tmp_path)
    risks = dict(re.findall(r"\b(s[12])\s+([\d.]+)", out))
    assert set(risks) == {"s1", "s2"}, out
    if backbone != "gru":  # s2 stopped clicking after week 2: the trained signal says riskier
        assert float(risks["s2"]) > float(risks["s1"]), out
    hp = card.split("**Hyperparameters**", 1)[1].split("## How to use")[0]
    names = set(re.findall(r"^\| (\w+)", hp, re.M))
    if backbone == "gru":
        assert {"lr", "max_epochs", "batch_size", "hidden_size"} <= names and not any(n.startswith("gbm") for n in names)
    else:
        assert not {"lr", "max_epochs", "batch_size", "hidden_size", "warmup_ratio", "patience"} & names
        assert ("gbm_max_leaf_nodes" in names) == (backbone == "gbm") and ("logreg_C" in names) == (backbone == "logreg")
    assert "max_week | 5 (from the data" in hp and "threshold | 0." in hp


def test_card_points_to_subgroup_tables_only_when_there_are_some_and_shows_random_predictions(tmp_path):
    d = sample_dropout_data(500, seed=2)
    train, test = d.split(0.3, seed=0)
    m = DropoutPredictor(backbone="logreg", max_week=10).finetune(train)
    m.evaluate(test, week=5)
    card = m.model_card()
    lim = card.split("## Limitations and bias", 1)[1]
    assert "see the subgroup AUC and ABROCA tables" in lim and "By subgroup: gender" in card
    assert "Static features used: code_module, gender, age_band" in lim
    table = card.split("Predictions for 5 students drawn at random (week 5)", 1)[1].split("##")[0]
    rows = [r for r in table.splitlines() if r.startswith("| S2-")]
    assert len(rows) == 5 and all(set(r.split(" | ")[3:4]) <= {"yes", "no"} for r in rows)
    assert all(r.split(" | ")[0][2:] in set(test.students["student"]) for r in rows)
    no_groups = DropoutPredictor(backbone="logreg", max_week=10).finetune(train, subgroup_columns=[])
    no_groups.evaluate(test, week=5, subgroup_columns=[])
    assert "no subgroup evaluation was recorded" in no_groups.model_card()


def test_card_wall_time_covers_feature_building_and_the_threshold(monkeypatch):
    """The card's wall time is the whole finetune: reading and feature building (prepare) and the
    threshold / explanation groups after the fit (finish) included, not only the model fit."""
    import time

    from edu_flash.dropout import fitting

    slow_prepare, slow_finish = fitting.prepare, fitting.finish

    def prepare(*a, **k):
        time.sleep(0.6)
        return slow_prepare(*a, **k)

    def finish(*a, **k):
        time.sleep(0.6)
        return slow_finish(*a, **k)

    monkeypatch.setattr(fitting, "prepare", prepare)
    monkeypatch.setattr(fitting, "finish", finish)
    m = DropoutPredictor(backbone="logreg").finetune(_short())
    assert m.card.procedure["wall time (s)"] >= 1.2


@pytest.mark.parametrize("backbone", ["logreg", "gbm"])
def test_top_features_show_activity_and_assessments_as_whole_units(backbone):
    """The parts of a student's activity pull against each other (a high click total raising the risk,
    recent clicks lowering it), so top_features shows the whole: "activity: ..." with its total credit."""
    d = sample_dropout_data(600, seed=4)
    train, test = d.split(0.3, seed=0)
    m = DropoutPredictor(backbone=backbone, max_week=12).finetune(train)
    p = m.predict(test, week=6)
    tops = p.loc[p["status"] == "active", "top_features"]
    assert not tops.str.contains(r"clicks_|records_|asmt_").any()
    assert tops.str.contains(r"activity: clicks \d+ in total, \d+ in the last 2 weeks; records").any()
    feat, src = m.explain(test, week=6), m.explain(test, week=6, by="source")
    assert src.loc[src["feature"] == "assessments", "value"].str.match(r"\d+ of \d+ due missed, mean score").all()
    parts = feat[feat["feature"].str.contains("clicks|records")]
    whole = parts.groupby("student")["contribution"].sum()
    got = src[src["feature"] == "activity"].set_index("student")["contribution"]
    np.testing.assert_allclose(got.loc[whole.index].to_numpy(), whole.to_numpy(), atol=1e-9)
    top_part = parts.groupby("student")["contribution"].max()
    assert ((top_part > 0.1) & (whole < 0)).any()  # what a part alone would have shown
