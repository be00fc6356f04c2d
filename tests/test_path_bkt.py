"""Issue 13, item 1: BKT as a backbone (EM fit that recovers known parameters, arrays on disk,
predict / evaluate like the other backbones) and as a simulated student."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from edu_flash.path import PathRecommender
from edu_flash.path.bkt import BKT, simulate
from conftest import has_pickle

TRUE = {"prior": np.array([0, .2, .5, .3, .6]), "learn": np.array([0, .1, .3, .05, .2]),
        "guess": np.array([0, .2, .15, .25, .1]), "slip": np.array([0, .1, .05, .15, .08])}
Q = [[1], [2], [3], [4]]


def test_em_recovers_the_parameters_of_simulated_students():
    items, correct = simulate(1500, (10, 40), TRUE, Q, seed=1)
    m = BKT(Q, 4).fit(items, correct, iters=300)
    for name, want in TRUE.items():
        assert np.allclose(m.params[name][1:], want[1:], atol=0.06), (name, m.params[name][1:], want[1:])
    assert 1 < m.iterations <= 300 and m.log_likelihood < 0


def test_em_never_lowers_the_likelihood_and_a_wrong_start_fits_worse():
    items, correct = simulate(300, 20, TRUE, Q, seed=2)
    lls = [BKT(Q, 4).fit(items, correct, iters=k).log_likelihood for k in (1, 3, 10, 40)]
    assert all(b >= a - 1e-6 for a, b in zip(lls, lls[1:])), lls
    flat = BKT(Q, 4)
    flat.params = {k: np.full(5, v) for k, v in {"prior": .5, "learn": .0001, "guess": .45, "slip": .45}.items()}
    from edu_flash.path.bkt import _Seqs

    assert flat._e_step(_Seqs(items, correct, flat.qm))[0] < lls[-1]


def test_filtering_matches_the_textbook_update():
    m = BKT([[1]], 1, {k: np.array([0, v]) for k, v in {"prior": .3, "learn": .2, "guess": .1, "slip": .2}.items()})
    L = 0.3
    p = []
    for o in (1, 0, 1):
        p.append(L * 0.8 + (1 - L) * 0.1)
        post = L * (0.8 if o else 0.2) / (L * (0.8 if o else 0.2) + (1 - L) * (0.1 if o else 0.9))
        L = post + (1 - post) * 0.2
    seq = m.sequence_probs([np.array([1, 1, 1])], [np.array([1., 0., 1.])])[0]
    assert np.allclose(seq, p)
    nxt = m.next_probs([(np.array([1, 1, 1]), np.array([1., 0., 1.]))], np.array([1]))[0, 0]
    assert nxt == pytest.approx(L * 0.8 + (1 - L) * 0.1)


def _logs(items, correct, names=("a", "b", "c", "d")):
    rows = [(f"u{s}", names[i - 1], int(r)) for s, (it, c) in enumerate(zip(items, correct)) for i, r in zip(it, c)]
    return pd.DataFrame(rows, columns=["student", "item", "correct"])


def test_bkt_backbone_trains_predicts_saves_and_reloads(tmp_path):
    items, correct = simulate(400, (10, 30), TRUE, Q, seed=3)
    df = _logs(items, correct)
    train, test = df[df.student.isin([f"u{i}" for i in range(300)])], df[~df.student.isin([f"u{i}" for i in range(300)])]
    rec = PathRecommender("bkt", em_iters=200).finetune(train)
    m = rec.evaluate(test)
    assert 0.6 < m["auc"] < 1 and m["responses"] == len(test) - test.student.nunique()
    out = rec.predict([("a", 1), ("a", 1), ("b", 0)])
    assert set(out["mastery"]) == {"a", "b", "c", "d"} and all(0 < v < 1 for v in out["p_correct"].values())
    folder = rec.save_pretrained(tmp_path / "bkt")
    assert has_pickle(folder) == []
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["weights"]["format"] == "bkt" and cfg["card"]["procedure"]["engine"].startswith("numpy EM")
    again = PathRecommender.from_pretrained(folder)
    assert again.predict([("a", 1), ("b", 0)]) == rec.predict([("a", 1), ("b", 0)])
    assert "bkt" in PathRecommender.available_backbones()


def test_planning_companions_are_fitted_saved_and_averaged(tmp_path):
    from edu_flash.path.sample import sample_logs

    df = sample_logs(80, seed=5)
    rec = PathRecommender("pfa", plan_models=["bkt", "pfa"]).finetune(df)
    assert set(rec.planners) == {"bkt"}                       # the backbone itself is not fitted twice
    alone = PathRecommender("bkt").finetune(df)
    h = [(np.array([1, 2, 3]), np.array([1., 0., 1.]))]
    cand = np.arange(1, 5)
    both = rec._sim().probs(h, cand)
    assert np.allclose(both, (rec._probs(h, cand) + alone._probs(h, cand)) / 2)
    assert rec.predict([("q101", 1)]) == PathRecommender("pfa").finetune(df).predict([("q101", 1)])  # predict: backbone
    folder = rec.save_pretrained(tmp_path / "m")
    assert (folder / "planners.safetensors").exists() and has_pickle(folder) == []
    again = PathRecommender.from_pretrained(folder)
    assert np.allclose(again._sim().probs(h, cand), both)
    assert "planning models" in rec.model_card()
    for rule in ("regret", "mean", "agree"):      # the expected mastery of a plan still never falls
        rec.hparams = rec.hparams.replace(plan_rule=rule)
        plan = rec.plan_path([("q101", 1), ("q201", 0)], ["k2", "k3", "k4"], steps=6, samples=6)
        curve = [plan.start_mastery] + [st["expected_mastery"] for st in plan.steps]
        assert plan.steps and all(b > a for a, b in zip(curve, curve[1:])), (rule, curve)
    from edu_flash import ConfigError

    with pytest.raises(ConfigError, match="plan_models"):
        PathRecommender("dkt", plan_models=["dkt"])
