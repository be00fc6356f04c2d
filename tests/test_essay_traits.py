"""Issue 12, item 1: analytic rubrics (several traits at once) through train / predict / evaluate /
save / load / card, for the classical and the neural backbones."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edu_flash import ConfigError, DataError, EssayScorer

from conftest import TINY, quality

TRAITS = ["cohesion", "grammar", "overall"]


def with_traits(df):
    """Three traits: cohesion on half points 1-5, grammar 0-4 and the holistic score as it was."""
    out = df.copy()
    q = quality(df)
    rng = np.random.default_rng(0)
    out["cohesion"] = 1 + np.round(np.clip(8 * q + rng.normal(0, 1, len(q)), 0, 8)) / 2
    out["grammar"] = np.round(np.clip(4 * q + rng.normal(0, 0.7, len(q)), 0, 4))
    out["overall"] = out["score"]
    return out


@pytest.fixture(scope="module")
def traits_data(essays):
    return with_traits(essays)


@pytest.fixture(scope="module")
def ridge_traits(traits_data):
    s = EssayScorer(backbone="tfidf-ridge")
    return s.finetune(traits_data.iloc[:180], text_column="essay", prompt_column="prompt", score_column=TRAITS)


def test_ridge_one_regressor_per_trait_and_dict_predictions(ridge_traits, traits_data):
    s = ridge_traits
    assert s.traits == TRAITS
    assert s.state["score_ranges"]["cohesion"]["1"] == [1, 5, 0.5]
    assert s.state["score_ranges"]["overall"] == {"1": [1, 6], "2": [0, 3], "3": [2, 12]}
    one = s.predict("Computers help people learn because they can find information fast.", prompt="1")
    assert isinstance(one, dict) and list(one) == TRAITS
    assert one["cohesion"] * 2 == int(one["cohesion"] * 2) and 1 <= one["overall"] <= 6
    many = s.predict(traits_data.iloc[180:])
    assert len(many) == 60 and all(isinstance(d, dict) for d in many)
    # each trait is its own regressor: alphas chosen per trait
    assert all(len(m["alpha"]) == 3 for m in s.model.prompts.values())


def test_ridge_traits_learn_each_trait(ridge_traits, traits_data):
    m = ridge_traits.evaluate(traits_data.iloc[180:], bootstrap=0)
    assert set(m["traits"]) == set(TRAITS)
    for t in TRAITS:
        assert {"qwk", "qwk_avg", "qwk_per_prompt", "rmse", "pearson", "smd"} <= set(m["traits"][t])
        assert m["traits"][t]["pearson"] > 0.5, t
    assert m["qwk_avg"] == pytest.approx(np.mean([m["traits"][t]["qwk_avg"] for t in TRAITS]))
    assert m["rmse"] == pytest.approx(np.mean([m["traits"][t]["rmse"] for t in TRAITS]))
    # the per-trait figures are those of a single-trait model's evaluation on that trait's grid
    per = m["traits"]["cohesion"]
    preds = [d["cohesion"] for d in ridge_traits.predict(traits_data.iloc[180:])]
    h = traits_data["cohesion"].iloc[180:].to_numpy()
    assert per["rmse"] == pytest.approx(np.sqrt(np.mean((h - np.array(preds)) ** 2)))


def test_ridge_traits_save_load_and_card(ridge_traits, traits_data, tmp_path):
    s = ridge_traits
    s.evaluate(traits_data.iloc[180:], name="traits-test", bootstrap=20)
    folder = s.save_pretrained(tmp_path / "m")
    loaded = EssayScorer.from_pretrained(folder)
    assert loaded.traits == TRAITS
    assert loaded.predict(traits_data.iloc[180:], rounded=False) == s.predict(traits_data.iloc[180:], rounded=False)
    card = (folder / "README.md").read_text()
    assert "**Per trait**" in card
    for t in TRAITS:
        assert f"**{t}: QWK per prompt**" in card
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["state"]["traits"] == TRAITS


def test_evaluate_maps_renamed_trait_columns_in_order(ridge_traits, traits_data):
    test = traits_data.iloc[180:].rename(columns={"cohesion": "c", "grammar": "g", "overall": "o"})
    m = ridge_traits.evaluate(test, score_column=["c", "g", "o"], bootstrap=0)
    assert m["traits"]["grammar"]["qwk"] == ridge_traits.evaluate(traits_data.iloc[180:], bootstrap=0)["traits"][
        "grammar"]["qwk"]
    with pytest.raises(ConfigError, match="3 traits"):
        ridge_traits.evaluate(test, score_column=["c", "g"])


def test_a_missing_trait_value_is_a_data_error_naming_the_row(traits_data):
    bad = traits_data.iloc[:60].copy()
    bad.loc[bad.index[4], "grammar"] = np.nan
    with pytest.raises(DataError, match=r"column 'grammar'.*row 5"):
        EssayScorer(backbone="tfidf-ridge").finetune(bad, text_column="essay", prompt_column="prompt",
                                                     score_column=TRAITS)


def test_score_ranges_per_trait(traits_data):
    sub = traits_data.iloc[:90]
    s = EssayScorer(backbone="tfidf-ridge").finetune(
        sub, text_column="essay", prompt_column="prompt", score_column=TRAITS,
        score_ranges={"cohesion": (1, 5, 0.5), "grammar": {"1": (0, 4), "2": (0, 4), "3": (0, 4)}})
    assert s.state["score_ranges"]["cohesion"] == {p: [1, 5, 0.5] for p in "123"}
    assert s.state["score_ranges"]["grammar"] == {p: [0, 4] for p in "123"}
    assert sorted(s.state["given_ranges"]["cohesion"]) == ["1", "2", "3"]
    assert s.state["given_ranges"]["overall"] == []


def test_neural_backbone_one_output_per_trait(traits_data, tiny_encoder, tmp_path):
    s = EssayScorer(backbone=str(tiny_encoder), max_epochs=1, **TINY)
    s.finetune(traits_data.iloc[:64], val=traits_data.iloc[64:96], text_column="essay", prompt_column="prompt",
               score_column=TRAITS, run_dir=tmp_path / "run", progress=False)
    assert s.model.head.out_features == 3
    out = s.predict(traits_data.iloc[96:104])
    assert all(isinstance(d, dict) and list(d) == TRAITS for d in out)
    m = s.evaluate(traits_data.iloc[96:140], bootstrap=0)
    assert set(m["traits"]) == set(TRAITS)
    folder = s.save_pretrained(tmp_path / "m")
    loaded = EssayScorer.from_pretrained(folder)
    a, b = loaded.predict(traits_data.iloc[96:104], rounded=False), s.predict(traits_data.iloc[96:104], rounded=False)
    np.testing.assert_allclose([list(d.values()) for d in a], [list(d.values()) for d in b], atol=1e-5)
