"""Issue 4, items 2-5: every backbone through finetune / evaluate / save / load / card; predict,
recommend and plan_path; evaluate_paths against a separately trained simulated student."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edu_flash import ConfigError, DataError, NotFittedError, UnknownLabelError
from edu_flash.path import PathRecommender
from edu_flash.path.sample import sample_logs
from conftest import has_pickle, reset_accelerate

SMALL = dict(d_model=16, n_heads=4, window=40, max_epochs=4, batch_size=16, lr=1e-2, progress=False)
HISTORY = [("q101", 1), ("q102", 0), ("q103", 1), ("q201", 0)]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def logs():
    df = sample_logs(150, seed=1)
    cut = sorted(df.student.unique())[110]
    return df[df.student < cut].reset_index(drop=True), df[df.student >= cut].reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(logs, tmp_path_factory):
    """A DKT and a PFA model, trained once, shared read-only."""
    reset_accelerate()
    train = logs[0]
    out = {"dkt": PathRecommender("dkt").finetune(train, run_dir=tmp_path_factory.mktemp("dkt"), **SMALL),
           "pfa": PathRecommender("pfa").finetune(train)}
    reset_accelerate()
    return out


def test_backbones_are_registered():
    assert PathRecommender.available_backbones() == ["dkt", "sakt", "simplekt", "pfa", "bkt"]
    with pytest.raises(ConfigError, match="unknown backbone"):
        PathRecommender("lstm-xl")
    with pytest.raises(ConfigError, match="window"):
        PathRecommender("dkt", window=1)


@pytest.mark.parametrize("backbone", ["sakt", "simplekt"])
def test_attention_backbones_train_save_and_reload(backbone, logs, tmp_path):
    rec = PathRecommender(backbone).finetune(logs[0], run_dir=tmp_path / "run", **{**SMALL, "max_epochs": 2})
    m = rec.evaluate(logs[1])
    assert 0.5 < m["auc"] <= 1 and m["responses"] == len(logs[1]) - logs[1].student.nunique()
    again = PathRecommender.from_pretrained(rec.save_pretrained(tmp_path / "m"))
    assert again.predict(HISTORY) == rec.predict(HISTORY)


def test_models_learn_the_simulated_students(fitted, logs):
    pfa, dkt = fitted["pfa"].evaluate(logs[1]), fitted["dkt"].evaluate(logs[1])
    assert pfa["auc"] > 0.68 and dkt["auc"] > 0.66, (pfa, dkt)
    assert 0 < dkt["rmse"] < 0.5 and 0.5 < dkt["acc"] <= 1
    report = fitted["dkt"].last_train_report
    assert report.monitor == "auc" and report.best_metric is not None  # early stopping on held-out students
    assert fitted["dkt"].card.training_data["validation students"] == 11
    assert fitted["dkt"].state["arch"]["item_bias"] is True        # 26 items over 6 skills: Rasch item terms on
    assert fitted["dkt"].model.mu.weight.abs().sum() > 0            # ... and trained


def test_save_load_round_trip_without_pickle(fitted, tmp_path):
    for name, rec in fitted.items():
        folder = rec.save_pretrained(tmp_path / name)
        assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                            "planners.safetensors"]
        assert has_pickle(folder) == []
        cfg = json.loads((folder / "config.json").read_text())
        assert cfg["backbone"] == name and cfg["state"]["vocab"]["q"]
        assert cfg["weights"]["format"] == ("pfa" if name == "pfa" else "torch")
        again = PathRecommender.from_pretrained(folder)
        assert again.predict(HISTORY) == rec.predict(HISTORY)
        assert again.recommend(HISTORY, k=3) == rec.recommend(HISTORY, k=3)


def test_card_has_evaluation_data_and_procedure(fitted, logs, tmp_path):
    rec = fitted["dkt"]
    rec.evaluate(logs[1], name="sample-test")
    card = (rec.save_pretrained(tmp_path / "m") / "README.md").read_text()
    for text in ["model-index", "knowledge-tracing", "sample-test", "auc", "students dropped", "Out-of-scope",
                 "High-stakes", "edu-flash trainer", "window", "simulated"]:
        assert text in card, text


def test_items_are_skills_is_said_in_the_card(tmp_path):
    df = sample_logs(30, seed=2).assign(item=lambda d: d.skill.str.split("_").str[0]).drop(columns="skill")
    rec = PathRecommender("pfa").finetune(df)
    assert any("Items are skills" in n for n in rec.card.notes)
    assert "Items are skills" in rec.model_card()


def test_predict_returns_mastery_and_p_correct(fitted):
    for rec in fitted.values():
        out = rec.predict(HISTORY)
        assert set(out) == {"mastery", "p_correct"}
        assert set(out["mastery"]) == {f"k{i}" for i in range(1, 7)} and len(out["p_correct"]) == 26
        assert all(0 < p < 1 for p in [*out["mastery"].values(), *out["p_correct"].values()])
        sub = rec.predict(HISTORY, items=["q101", "q203"])["p_correct"]
        assert sub == {k: out["p_correct"][k] for k in ["q101", "q203"]}


def test_predict_takes_records_dataframes_and_several_students(fitted, logs):
    rec = fitted["dkt"]
    records = [{"item": i, "correct": c} for i, c in HISTORY]
    assert rec.predict(records) == rec.predict(HISTORY)
    many = rec.predict(logs[1])
    assert set(many) == set(logs[1].student) and "mastery" in next(iter(many.values()))
    prior = rec.predict([])
    assert set(prior["mastery"]) == set(rec.predict(HISTORY)["mastery"])


def test_predict_rejects_unknown_items_and_bad_flags(fitted):
    rec = fitted["dkt"]
    with pytest.raises(UnknownLabelError, match="q999"):
        rec.predict([("q999", 1)])
    with pytest.raises(UnknownLabelError, match="q999"):
        rec.predict(HISTORY, items=["q999"])
    with pytest.raises(DataError, match="0/1"):
        rec.predict([("q101", 3)])
    with pytest.raises(NotFittedError):
        PathRecommender("dkt").predict(HISTORY)


def test_recommend_ranks_by_gain_and_keeps_to_the_target_zone(fitted):
    for rec in fitted.values():
        recs = rec.recommend(HISTORY, k=30)
        assert recs and all(r["expected_gain"] > 0 and not r["mastered"] and not r["just_answered"] for r in recs)
        gains = [r["expected_gain"] for r in recs]
        assert gains == sorted(gains, reverse=True)
        v = rec.state["vocab"]   # P(correct) of the planning model: the backbone averaged with its companions
        hist = [(np.array([v["items"].index(i) + 1 for i, _ in HISTORY]), np.array([c for _, c in HISTORY], float))]
        p = dict(zip(v["items"], rec._sim().probs(hist, np.arange(1, len(v["items"]) + 1))[0]))
        assert all(r["p_correct"] == pytest.approx(p[r["item"]]) for r in recs)
        v = sorted(r["p_correct"] for r in recs)
        lo, hi = v[len(v) // 4], v[3 * len(v) // 4]
        zoned = rec.recommend(HISTORY, k=30, target=(lo, hi))
        assert 0 < len(zoned) < len(recs) and all(lo <= r["p_correct"] <= hi for r in zoned)
        filled = rec.recommend(HISTORY, k=len(zoned) + 3, target=(lo, hi), strict=False)
        assert [r["item"] for r in filled[:len(zoned)]] == [r["item"] for r in zoned] and len(filled) == len(zoned) + 3
        goal = rec.recommend(HISTORY, k=3, goal_skills=["k3"])
        assert goal and all("k3" in r["skills"] for r in goal)
        planned = [r["planned_gain"] for r in goal]
        assert planned == sorted(planned, reverse=True) and all(x >= r["expected_gain"] - 1e-9 or x > 0
                                                                 for x, r in zip(planned, goal))
    with pytest.raises(ConfigError, match="target"):
        rec.recommend(HISTORY, target=(0.9, 0.1))
    with pytest.raises(UnknownLabelError, match="skill"):
        rec.recommend(HISTORY, goal_skills=["nope"])


def test_plan_path_is_a_readable_table_whose_expected_mastery_never_falls(fitted, logs, tmp_path):
    rng = np.random.default_rng(0)
    test = logs[1]
    for name, rec in fitted.items():
        for student in rng.choice(sorted(test.student.unique()), 4, replace=False):
            rows = test[test.student == student].head(10)
            history = list(zip(rows["item"], rows["correct"]))
            goal = [f"k{k}" for k in sorted(rng.choice(np.arange(1, 7), 2, replace=False))]
            plan = rec.plan_path(history, goal_skills=goal, steps=6, samples=8, seed=1)
            curve = [plan.start_mastery] + [s["expected_mastery"] for s in plan.steps]
            assert all(b > a for a, b in zip(curve, curve[1:])), (name, curve)
            assert all(s["expected_gain"] > 0 and set(s["skills"]) & set(goal) for s in plan.steps)
            assert len(plan.steps) == 6 or plan.stopped
            assert plan.goal_skills == goal and set(plan.steps[0]["mastery"]) == set(goal)
    table = plan.table()
    assert list(table.columns) == ["step", "item", "skills", "P(correct)", "expected goal mastery"]
    assert len(table) == len(plan.steps) + 1 and table["expected goal mastery"].is_monotonic_increasing
    text = str(plan)
    assert "expected goal mastery" in text and plan.steps[0]["item"] in text
    assert plan.final_mastery == plan.steps[-1]["expected_mastery"]
    fig = plan.plot(tmp_path / "path.png")
    assert (tmp_path / "path.png").stat().st_size > 1000 and len(fig.axes[0].lines) == len(goal) + 1
    assert str(rec.plan_path(HISTORY, "k2", steps=3, samples=4, seed=1)) == str(
        rec.plan_path(HISTORY, "k2", steps=3, samples=4, seed=1))
    with pytest.raises(ConfigError, match="empty"):
        rec.plan_path(HISTORY, [], steps=2)


def test_plan_path_stops_when_the_goal_is_mastered(fitted):
    rec = fitted["pfa"]
    keep = rec.hparams
    try:
        rec.hparams = keep.replace(mastered=0.0)
        plan = rec.plan_path(HISTORY, ["k2"], steps=4)
        assert plan.steps == [] and "mastered" in plan.stopped and plan.final_mastery == plan.start_mastery
    finally:
        rec.hparams = keep


def test_a_trained_dkt_expects_more_mastery_after_a_correct_answer(fitted):
    from edu_flash.path.policy import extend

    rec = fitted["dkt"]
    sim = rec._sim()
    h = (np.array([1, 2, 5], dtype=np.int64), np.array([1, 0, 1], dtype=np.float32))
    m1, m0 = sim.mastery([extend(h, 9, 1.0), extend(h, 9, 0.0)], [3]).ravel()
    assert m1 > m0


def test_evaluate_paths_against_several_simulated_students(fitted, logs):
    rec, student = fitted["pfa"], fitted["dkt"]
    out = rec.evaluate_paths(logs[1], {"dkt": student, "pfa": fitted["pfa"]}, steps=4, max_students=12,
                             history_len=10, seed=0, name="sim", n_boot=200)
    assert out["students"] == 12 and set(out["simulators"]) == {"dkt", "pfa"}
    for r in out["simulators"].values():
        assert set(r["policies"]) == {"recommender", "random", "easiest-first", "round-robin", "weakest-first",
                                      "oracle"}
        for x in r["policies"].values():
            g = x["gain"]
            assert -1 < g["low"] <= g["mean"] <= g["high"] < 1 and 0 <= x["correct_rate"] <= 1
        assert set(r["recommender_minus"]) == set(r["policies"]) - {"recommender"}
        assert "oracle_share" in r and isinstance(r["bar_met"], bool)
    card = rec.model_card()
    assert "simulated practice paths" in card and "recommender minus this [95% CI]" in card
    assert "`dkt`, `pfa`" in card and "not real learners" in card
    again = rec.evaluate_paths(logs[1], {"dkt": student, "pfa": fitted["pfa"]}, steps=4, max_students=12,
                               history_len=10, seed=0, name="sim", n_boot=200)
    assert again["simulators"] == out["simulators"]  # seeded


def test_dkt_format_file_trains_directly(tmp_path):
    lines = []
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(2, 20))
        lines += [str(n), ",".join(str(x) for x in rng.integers(0, 5, n)) + ",",
                  ",".join(str(x) for x in rng.integers(0, 2, n)) + ","]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    rec = PathRecommender("pfa").finetune(tmp_path / "train.csv")
    assert rec.card.datasets == ["train.csv"]  # the file name, not the full local path
    assert rec.evaluate(tmp_path / "train.csv")["responses"] == sum(int(n) - 1 for n in lines[::3])


def test_bad_column_argument_is_a_config_error(logs):
    with pytest.raises(ConfigError, match="student_column"):
        PathRecommender("pfa").finetune(logs[0], learner_column="student")


def test_an_item_just_answered_waits_while_its_skill_has_others(fitted):
    rec = fitted["dkt"]
    history = HISTORY + [("q301", 1), ("q302", 0)]
    recs = rec.recommend(history, k=10, goal_skills=["k3"])
    assert recs and not {"q301", "q302"} & {r["item"] for r in recs}
    plan = rec.plan_path(history, ["k3"], steps=6, samples=4)
    items = plan.items
    assert all(a != b for a, b in zip(items, items[1:])), items      # k3 has four items: no item twice running
