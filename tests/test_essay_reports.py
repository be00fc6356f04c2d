"""Issue 12, item 1 (subgroup reports with sizes, "missing", numeric order and bootstrap intervals) and
issue 16's warning when several prompts are pooled without a prompt column."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from edu_flash import EssayScorer
from edu_flash.essay.evaluation import essay_metrics

COLS = dict(text_column="essay", prompt_column="prompt")


def _fake(n=300, seed=0):
    rng = np.random.default_rng(seed)
    human = rng.integers(0, 7, n).astype(float)
    machine = np.clip(human + rng.normal(0, 1, n), 0, 6)
    return human, machine


def test_small_groups_are_too_few_to_report_and_missing_is_a_group():
    human, machine = _fake()
    grade = ([9] * 100 + [10] * 100 + [11] * 80 + [12] * 12 + [None] * 8)
    m = essay_metrics(human, machine, ["1"] * 300, {"1": (0, 6)}, {"grade": grade})
    g = m["subgroups"]["grade"]
    assert list(g) == ["9", "10", "11", "12", "missing"]  # numbers sort as numbers, missing last
    assert g["12"] == {"n": 12, "qwk": None, "smd": None, "note": "too few to report (fewer than 30 essays)"}
    assert g["missing"]["n"] == 8 and g["missing"]["qwk"] is None
    assert "nan" not in g
    for k in ("9", "10", "11"):
        lo, hi = g[k]["qwk_ci"]
        assert lo < g[k]["qwk"] < hi and hi - lo < 0.3
        slo, shi = g[k]["smd_ci"]
        assert slo < g[k]["smd"] < shi
    m2 = essay_metrics(human, machine, ["1"] * 300, {"1": (0, 6)}, {"grade": grade}, min_group_size=5)
    assert m2["subgroups"]["grade"]["12"]["qwk"] is not None


def test_blank_and_nan_cells_are_missing_and_strings_sort_as_text():
    human, machine = _fake(120)
    school = ["B"] * 40 + ["A"] * 40 + [float("nan")] * 20 + [""] * 20
    g = essay_metrics(human, machine, ["1"] * 120, {"1": (0, 6)}, {"school": school})["subgroups"]["school"]
    assert list(g) == ["A", "B", "missing"] and g["missing"]["n"] == 40


def test_overall_metrics_carry_bootstrap_intervals():
    human, machine = _fake(400)
    prompts = ["1"] * 200 + ["2"] * 200
    m = essay_metrics(human, machine, prompts, {"1": (0, 6), "2": (0, 6)}, bootstrap=400, seed=3)
    for k in ("qwk", "qwk_avg", "smd"):
        lo, hi = m[f"{k}_ci"]
        assert lo <= m[k] <= hi, k
    # reproducible with the seed, and a different seed moves the interval a little
    again = essay_metrics(human, machine, prompts, {"1": (0, 6), "2": (0, 6)}, bootstrap=400, seed=3)
    assert again["qwk_ci"] == m["qwk_ci"]
    none = essay_metrics(human, machine, prompts, {"1": (0, 6), "2": (0, 6)}, bootstrap=0)
    assert "qwk_ci" not in none and none["qwk"] == m["qwk"]


def test_bootstrap_interval_covers_the_spread_of_new_samples():
    """The percentile interval is about as wide as the spread of QWK over fresh data of the same size."""
    rng = np.random.default_rng(0)

    def draw(n):
        h = rng.integers(0, 5, n).astype(float)
        return h, np.clip(np.round(h + rng.normal(0, 0.9, n)), 0, 4)

    fresh = [essay_metrics(*draw(200), ["1"] * 200, {"1": (0, 4)}, bootstrap=0)["qwk"] for _ in range(200)]
    m = essay_metrics(*draw(200), ["1"] * 200, {"1": (0, 4)}, bootstrap=1000)
    width = m["qwk_ci"][1] - m["qwk_ci"][0]
    ref = np.percentile(fresh, 97.5) - np.percentile(fresh, 2.5)
    assert 0.6 * ref < width < 1.6 * ref


def test_evaluate_reports_subgroups_in_the_card(essays, tmp_path):
    df = essays.copy()
    df["grade"] = [10, 9, 11, 12] * 60
    df.loc[df.index[:5], "grade"] = None
    s = EssayScorer(backbone="tfidf-ridge").finetune(df.iloc[:120], **COLS)
    m = s.evaluate(df.iloc[120:], subgroup_columns=["grade"], min_group_size=30, name="held-out")
    assert list(m["subgroups"]["grade"]) == ["9", "10", "11", "12"]
    card = s.model_card(str(tmp_path / "m"))
    assert "**By subgroup: grade**" in card and "95% interval" in card
    small = s.evaluate(df.iloc[120:], subgroup_columns=["grade"], min_group_size=31, name="held-out")
    assert all(v["qwk"] is None for v in small["subgroups"]["grade"].values())
    assert "too few to report" in s.model_card(str(tmp_path / "m"))


# ---------------------------------------------------------------------------------------------- pooling (issue 16)
def test_warns_when_a_prompt_like_column_is_not_mapped(essays):
    df = essays.rename(columns={"prompt": "essay_set"})
    with pytest.warns(UserWarning, match=r"no prompt column.*'essay_set' looks like a prompt id.*prompt_column="):
        EssayScorer(backbone="tfidf-ridge").finetune(df, text_column="essay")


def test_warns_when_a_column_splits_the_scores_into_different_ranges(essays):
    df = essays.rename(columns={"prompt": "form"})
    with pytest.warns(UserWarning, match=r"score ranges differ by 'form'"):
        EssayScorer(backbone="tfidf-ridge").finetune(df, text_column="essay")


def test_warns_when_the_scores_fall_in_separate_ranges(essays):
    df = essays[essays["prompt"] != "1"].drop(columns=["prompt", "group"]).copy()
    df["score"] = np.where(essays.loc[df.index, "prompt"] == "3", df["score"] * 5, df["score"])  # 0-3 and 10-60
    with pytest.warns(UserWarning, match=r"fall in separate ranges \(0-3 and 10-60\)"):
        EssayScorer(backbone="tfidf-ridge").finetune(df, text_column="essay")


def test_no_pooling_warning_for_one_prompt_or_a_mapped_prompt(essays):
    one = essays[essays["prompt"] == "1"].drop(columns=["prompt"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EssayScorer(backbone="tfidf-ridge").finetune(one, text_column="essay")  # 'group' has equal ranges
        EssayScorer(backbone="tfidf-ridge").finetune(essays, **COLS)


def test_compare_passes_the_warning_on(essays):
    from edu_flash import compare

    df = essays.rename(columns={"prompt": "essay_set"})
    with pytest.warns(UserWarning, match="looks like a prompt id"):
        compare(EssayScorer, ["tfidf-ridge"], df.iloc[:180], df.iloc[180:], finetune_args={"text_column": "essay"},
                evaluate_args={"bootstrap": 0})


def test_prompt_column_values_are_read_as_text(essays):
    df = essays.copy()
    df["prompt"] = df["prompt"].astype(int)
    s = EssayScorer(backbone="tfidf-ridge").finetune(df, **COLS)
    assert sorted(s.state["score_ranges"]) == ["1", "2", "3"]
    assert isinstance(pd.Series(s.predict(df.iloc[:3]))[0], float)


def test_the_warning_points_at_the_callers_line(essays):
    df = essays.rename(columns={"prompt": "essay_set"})
    with pytest.warns(UserWarning, match="looks like a prompt id") as rec:
        EssayScorer(backbone="tfidf-ridge").finetune(df, text_column="essay")
    assert rec[0].filename == __file__
