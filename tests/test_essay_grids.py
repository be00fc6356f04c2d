"""Issue 12, item 1: any score grid (half points, decimals), never truncated; rounding halves upward;
QWK on all of a grid's levels; widening an inferred range at evaluate; errors before training."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from edu_flash import ConfigError, DataError, EssayScorer
from edu_flash.essay.grid import Grid, common_grid

from conftest import quality

COLS = dict(text_column="essay", prompt_column="prompt")


def half_points(df: pd.DataFrame) -> pd.DataFrame:
    """The sample essays re-scored on a 1.0-5.0 half-point rubric (9 levels), same order of quality."""
    out = df.copy()
    out["score"] = 1 + np.round(8 * quality(df)) / 2
    return out


@pytest.fixture(scope="module")
def halves(essays):
    return half_points(essays)


@pytest.fixture(scope="module")
def ridge_halves(halves):
    return EssayScorer(backbone="tfidf-ridge").finetune(halves.iloc[:180], **COLS)


# ---------------------------------------------------------------------------------------------- the grid
def test_grid_inference_keeps_half_points_and_decimals():
    assert Grid.infer([1.0, 2.5, 4.5]) == Grid(1.0, 4.5, 0.5)  # 4.5 is not truncated to 4
    assert Grid.infer([2, 3, 10]) == Grid(2, 10, 1)  # whole points: step 1 as before, gaps allowed
    assert Grid.infer([0.1, 0.3, 0.7]).levels() == [0.1, 0.3, 0.5, 0.7]
    thirds = Grid.infer([1, 4 / 3, 7 / 3])  # the mean of three raters
    assert thirds.n_levels == 5 and thirds.step == pytest.approx(1 / 3)
    assert Grid(1, 6).to_list() == [1, 6] and Grid(1, 5, 0.5).to_list() == [1, 5, 0.5]
    with pytest.raises(ConfigError, match="continuous"):
        Grid.infer(np.random.default_rng(0).random(50) * 10)
    with pytest.raises(ConfigError, match="whole number of steps"):
        Grid(1, 5, 0.3)


def test_rounding_is_to_the_nearest_grid_point_halves_upward():
    g = Grid(1, 5, 0.5)
    assert [g.round(v) for v in (2.24, 2.25, 2.74, 2.75, 0.2, 9.0)] == [2.0, 2.5, 2.5, 3.0, 1.0, 5.0]
    whole = Grid(0, 4)
    assert [whole.round(v) for v in (0.5, 1.5, 2.5, 3.49)] == [1.0, 2.0, 3.0, 3.0]  # not Python's round-half-even
    assert Grid(0.1, 0.7, 0.2).round(0.4) == 0.5


def test_common_grid_holds_every_prompts_levels():
    g = common_grid([Grid(1, 6), Grid(0, 3), Grid(1, 5, 0.5)])
    assert (g.lo, g.hi, g.step) == (0, 6, 0.5)


def test_qwk_samples_closed_form_equals_sklearn():
    from edu_flash.core.metrics import qwk_samples

    rng = np.random.default_rng(1)
    for _ in range(5):
        h = rng.integers(0, 9, 60)
        m = np.clip(h + rng.integers(-2, 3, 60), 0, 8)
        ref = cohen_kappa_score(h, m, weights="quadratic", labels=list(range(9)))
        assert qwk_samples(h, m)[0] == pytest.approx(ref, abs=1e-12)
        assert qwk_samples(h / 2 + 1, m / 2 + 1)[0] == pytest.approx(ref, abs=1e-12)  # same on half points


# ---------------------------------------------------------------------------------------------- training
def test_half_point_rubric_is_inferred_and_predicted_on_its_grid(ridge_halves, halves):
    s = ridge_halves
    assert s.state["score_ranges"] == {p: [1, 5, 0.5] for p in ("1", "2", "3")}
    preds = s.predict(halves.iloc[180:])
    assert all(v * 2 == int(v * 2) and 1 <= v <= 5 for v in preds)
    assert any(v != int(v) for v in preds)  # half points are predicted, not only whole numbers
    raw = s.predict(halves.iloc[180:], rounded=False)
    grid = Grid(1, 5, 0.5)
    assert preds == [grid.round(v) for v in raw]


def test_given_two_value_range_takes_its_step_from_the_data(halves):
    sub = halves[halves["prompt"] == "1"].iloc[:60]
    sub = sub[sub["score"].between(1.5, 4.5)]
    s = EssayScorer(backbone="tfidf-ridge").finetune(sub, score_ranges={"1": (1.5, 4.5)}, **COLS)
    assert s.state["score_ranges"] == {"1": [1.5, 4.5, 0.5]}
    s = EssayScorer(backbone="tfidf-ridge").finetune(sub, score_ranges={"1": (1, 5, 0.5)}, **COLS)
    assert s.state["score_ranges"] == {"1": [1, 5, 0.5]}


def test_evaluate_uses_all_nine_half_point_levels(ridge_halves, halves):
    s, test = ridge_halves, halves.iloc[180:].reset_index(drop=True)
    m = s.evaluate(test, bootstrap=0)
    machine = s.predict(test)
    for p in ("1", "2", "3"):
        idx = test.index[test["prompt"] == p]
        h = [int((test["score"][i] - 1) * 2) for i in idx]
        mm = [int((machine[i] - 1) * 2) for i in idx]
        ref = cohen_kappa_score(h, mm, weights="quadratic", labels=list(range(9)))
        assert m["qwk_per_prompt"][p] == pytest.approx(ref, abs=1e-9)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((test["score"].to_numpy() - np.array(machine)) ** 2)))


def test_out_of_grid_and_out_of_given_range_are_errors_before_training(halves, tmp_path):
    bad = halves.iloc[:60].copy()
    bad.loc[bad.index[7], "score"] = 2.25
    with pytest.raises(DataError, match=r"row 8.*not on prompt") as e:
        EssayScorer(backbone="tfidf-ridge").finetune(bad, score_ranges={p: (1, 5, 0.5) for p in "123"}, **COLS)
    assert e.value.column == "score"
    val = halves.iloc[60:90].copy()
    val.loc[val.index[3], "score"] = 5.5
    s = EssayScorer(backbone="tfidf-ridge")
    with pytest.raises(DataError, match=r"val.*row 4.*outside prompt"):
        s.finetune(halves.iloc[:60], val=val, score_ranges={p: (1, 5, 0.5) for p in "123"}, run_dir=tmp_path / "r",
                   **COLS)
    assert s.model is None and not (tmp_path / "r").exists()


def test_scores_are_not_truncated_and_low_test_scores_widen_an_inferred_range(essays):
    """The issue's case: training saw 3-10, a valid test score of 2 is evaluated, with a warning."""
    df = essays[essays["prompt"] == "3"].reset_index(drop=True)
    train, test = df[df["score"] >= 3].iloc[:50], df.iloc[50:].astype({"score": float})
    test.loc[test.index[0], "score"] = 2
    s = EssayScorer(backbone="tfidf-ridge").finetune(train, **COLS)
    lo, hi = s.state["score_ranges"]["3"]
    assert lo == 3 and hi == train["score"].max()
    with pytest.warns(UserWarning, match=r"prompt '3'.*outside the range 3-"):
        m = s.evaluate(test, bootstrap=0)
    h, machine = test["score"].astype(int).tolist(), [int(v) for v in s.predict(test)]
    assert min(machine) >= 3  # the model itself still predicts inside its trained range
    ref = cohen_kappa_score(h, machine, weights="quadratic", labels=list(range(2, int(hi) + 1)))
    assert m["qwk_per_prompt"]["3"] == pytest.approx(ref, abs=1e-9)
    # a range the user gave is a promise: the same score is an error naming the row
    g = EssayScorer(backbone="tfidf-ridge").finetune(train, score_ranges={"3": (3, 12)}, **COLS)
    with pytest.raises(DataError, match=r"row 1.*outside prompt '3'"):
        g.evaluate(test)
    # and off the grid is an error either way
    test.loc[test.index[0], "score"] = 4.5
    with pytest.raises(DataError, match="not on prompt"):
        s.evaluate(test)


def test_integer_rubrics_behave_as_before(essays):
    s = EssayScorer(backbone="tfidf-ridge").finetune(essays.iloc[:180], **COLS)
    assert s.state["score_ranges"] == {"1": [1, 6], "2": [0, 3], "3": [2, 12]}
    assert all(float(v).is_integer() for v in s.predict(essays.iloc[180:]))


def test_no_warning_for_a_clean_evaluation(ridge_halves, halves):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ridge_halves.evaluate(halves.iloc[180:], bootstrap=50)


def test_validation_scores_outside_an_inferred_range_warn_before_training(essays, tiny_encoder, tmp_path):
    from conftest import TINY

    train = essays[(essays["prompt"] == "3") & (essays["score"] >= 4)].iloc[:40]
    val = essays[(essays["prompt"] == "3")].iloc[-16:]
    assert val["score"].min() < 4
    s = EssayScorer(backbone=str(tiny_encoder), max_steps=1, **TINY)
    with pytest.warns(UserWarning, match=r"val.*prompt '3'.*outside the range 4-"):
        s.finetune(train, val=val, run_dir=tmp_path / "run", progress=False, **COLS)
    assert s.state["score_ranges"]["3"][0] == 4  # inferred from the training scores only
    assert "best validation qwk_avg" in s.card.procedure
