"""Issue 2, items 4 and 5: one-line predict on raw inputs; evaluate with QWK, RMSE, Pearson, subgroups."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import cohen_kappa_score

from edu_flash import ConfigError, EssayScorer, NotFittedError


# ---------------------------------------------------------------------------------------------- predict
def test_predict_one_string_returns_one_float(trained):
    v = trained.scorer.predict("Computers help people learn because they can find information fast.", prompt="1")
    assert isinstance(v, float) and v.is_integer() and 1 <= v <= 6


def test_predict_list_and_dataframe_return_lists(trained):
    s, test = trained.scorer, trained.test
    texts = test["essay"].tolist()
    by_list = s.predict(texts[:5], prompt="2")
    assert isinstance(by_list, list) and len(by_list) == 5 and all(isinstance(v, float) for v in by_list)
    by_df = s.predict(test)  # prompt column picked up by its trained name
    assert isinstance(by_df, list) and len(by_df) == len(test)
    by_records = s.predict(test[["essay", "prompt"]].to_dict("records"))
    assert by_records == by_df
    # a DataFrame with no prompt column takes prompt= for every row
    assert s.predict(test[["essay"]].iloc[:5], prompt="2") == by_list
    assert s.predict(tuple(texts[:5]), prompt="2") == by_list


def test_predict_takes_one_prompt_per_essay_as_a_list(trained):
    s, test = trained.scorer, trained.test.iloc[:8]
    texts, prompts = test["essay"].tolist(), test["prompt"].tolist()
    assert len(set(prompts)) > 1
    assert s.predict(texts, prompt=prompts) == s.predict(test)
    assert s.predict(texts, prompt=test["prompt"]) == s.predict(test)  # a Series too
    with pytest.raises(ConfigError, match="list of 7 prompts for 8 essay"):
        s.predict(texts, prompt=prompts[:7])
    with pytest.raises(ConfigError, match="prompt_column="):
        s.predict(test[["essay"]], prompt=prompts)


def test_predict_from_a_file_path_and_renamed_columns(trained, tmp_path):
    s, test = trained.scorer, trained.test
    p = tmp_path / "new.jsonl"
    test.rename(columns={"essay": "body", "prompt": "pid"}).to_json(p, orient="records", lines=True)
    # a Path, or a str naming an existing data file, is read as a file; any other str is one essay
    assert s.predict(p, text_column="body", prompt_column="pid") == s.predict(test)
    assert s.predict(str(p), text_column="body", prompt_column="pid") == s.predict(test)
    assert isinstance(s.predict(str(tmp_path / "missing.jsonl"), prompt="1"), float)


def test_multi_prompt_model_needs_a_prompt(trained):
    from edu_flash import DataError

    with pytest.raises(DataError, match="prompt"):
        trained.scorer.predict("An essay with no prompt.")


def test_batched_equals_one_by_one(trained):
    """Length-sorted dynamic padding must not change the unrounded scores."""
    s = trained.scorer
    words = " ".join(trained.test["essay"].tolist()).split()
    rng = np.random.default_rng(0)
    texts = [" ".join(words[int(a):int(a) + int(n)]) for a, n in zip(rng.integers(0, 500, 24),
                                                                      rng.integers(2, 80, 24))]
    lengths = {len(s.tokenizer(t, truncation=True, max_length=64)["input_ids"]) for t in texts}
    assert len(lengths) > 10  # real padding happens in the batches
    prompts = [str(p) for p in rng.integers(1, 4, 24)]
    df = pd.DataFrame({"essay": texts, "prompt": prompts})
    batched = s.predict(df, rounded=False)
    single = [s.predict(t, prompt=p, rounded=False) for t, p in zip(texts, prompts)]
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=0)
    # order is preserved whatever the batch size
    s2 = EssayScorer.__new__(EssayScorer)
    s2.__dict__.update(s.__dict__)
    s2.hparams = s.hparams.replace(predict_batch_size=5)
    seen = []
    hook = s.model.register_forward_pre_hook(lambda m, args: seen.append(
        (tuple(args[0].shape), torch.is_inference_mode_enabled(), torch.is_grad_enabled())))
    try:
        rev = s2.predict(df.iloc[::-1], rounded=False)
    finally:
        hook.remove()
    np.testing.assert_allclose(rev[::-1], batched, atol=1e-5, rtol=0)
    # length-sorted batches (longest first) padded only to their own longest essay, under inference mode
    widths = [shape[1] for shape, _, _ in seen]
    assert [shape[0] for shape, _, _ in seen] == [5, 5, 5, 5, 4]
    assert widths == sorted(widths, reverse=True) and widths[0] == max(lengths) and widths[-1] < widths[0]
    assert all(inf and not grad for _, inf, grad in seen)


def test_predict_runs_without_grad_and_leaves_the_model_as_it_was(trained):
    s = trained.scorer
    s.model.train()
    try:
        before = {k: v.clone() for k, v in s.model.state_dict().items()}
        a = s.predict(trained.test.iloc[:8], rounded=False)
        b = s.predict(trained.test.iloc[:8], rounded=False)
        assert a == b  # eval mode inside predict: dropout off
        assert s.model.training
        assert all(torch.equal(before[k], v) for k, v in s.model.state_dict().items())
        assert all(p.grad is None for p in s.model.parameters())
    finally:
        s.model.eval()


def test_predict_bf16_is_close_to_fp32(trained, monkeypatch):
    monkeypatch.setenv("EDU_FLASH_NATIVE_BF16", "1")   # bf16 itself, even on a CPU that would fall back
    s = trained.scorer
    a = np.array(s.predict(trained.test.iloc[:16], rounded=False))
    b = np.array(s.predict(trained.test.iloc[:16], rounded=False, precision="bf16-mixed"))
    assert np.all(np.isfinite(b))
    np.testing.assert_allclose(a, b, atol=0.25)


def test_untrained_scorer_refuses_to_predict(tmp_path):
    s = EssayScorer(backbone="tfidf-ridge")
    with pytest.raises(NotFittedError):
        s.predict("An essay.")
    with pytest.raises(NotFittedError):
        s.evaluate(pd.DataFrame({"text": ["a"], "score": [1]}))
    with pytest.raises(NotFittedError):
        s.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------------------------------------- evaluate
@pytest.fixture(scope="module")
def evaluated(trained):
    return trained.scorer.evaluate(trained.test, name="heldout", min_group_size=5)


def test_evaluate_keys(evaluated):
    m = evaluated
    for k in ("qwk", "qwk_avg", "qwk_per_prompt", "rmse", "pearson", "subgroups"):
        assert k in m, k
    assert set(m["qwk_per_prompt"]) == {"1", "2", "3"}
    assert set(m["subgroups"]) == {"group"}  # subgroup column remembered from finetune
    assert set(m["subgroups"]["group"]) == {"ELL", "non-ELL"}
    for g in m["subgroups"]["group"].values():
        assert {"qwk", "smd", "n"} <= set(g)
        assert -1 <= g["qwk"] <= 1 and math.isfinite(g["smd"])
    assert m["n"] == 40


def test_evaluate_matches_metrics_by_hand(trained, evaluated):
    s, test = trained.scorer, trained.test
    m = evaluated
    human = test["score"].astype(int).tolist()
    machine = [int(v) for v in s.predict(test)]
    raw = s.predict(test, rounded=False)
    ranges = s.state["score_ranges"]
    overall = cohen_kappa_score(human, machine, weights="quadratic", labels=list(range(0, 13)))
    assert m["qwk"] == pytest.approx(overall, abs=1e-9)
    per = {}
    for p, (lo, hi) in ranges.items():
        idx = [i for i, q in enumerate(test["prompt"]) if q == p]
        h, mm = [human[i] for i in idx], [machine[i] for i in idx]
        per[p] = 1.0 if set(h) == set(mm) and len(set(h)) == 1 else \
            cohen_kappa_score(h, mm, weights="quadratic", labels=list(range(lo, hi + 1)))
        assert m["qwk_per_prompt"][p] == pytest.approx(per[p], abs=1e-9), p
    assert m["qwk_avg"] == pytest.approx(np.mean(list(per.values())), abs=1e-12)
    assert m["rmse"] == pytest.approx(math.sqrt(np.mean((np.array(human) - np.array(machine)) ** 2)), abs=1e-9)
    assert m["pearson"] == pytest.approx(np.corrcoef(human, raw)[0, 1], abs=1e-6)
    # subgroups: QWK on the pooled range, SMD = (machine - human) / SD(human) on per-prompt [0, 1] scale
    for g, res in m["subgroups"]["group"].items():
        idx = [i for i, v in enumerate(test["group"]) if v == g]
        h, mm = [human[i] for i in idx], [machine[i] for i in idx]
        assert res["n"] == len(idx)
        assert res["qwk"] == pytest.approx(cohen_kappa_score(h, mm, weights="quadratic", labels=list(range(0, 13))),
                                           abs=1e-9)
        lo = np.array([ranges[test["prompt"][i]][0] for i in idx], float)
        span = np.array([ranges[test["prompt"][i]][1] for i in idx], float) - lo
        hs, ms = (np.array(h) - lo) / span, (np.array(mm) - lo) / span
        assert res["smd"] == pytest.approx((ms.mean() - hs.mean()) / hs.std(ddof=1), abs=1e-9)


def test_smd_single_prompt_is_on_the_score_scale():
    from edu_flash.essay.evaluation import essay_metrics

    human = [1, 2, 3, 4, 5, 6, 2, 3]
    machine = [2, 2, 4, 4, 6, 6, 3, 3]
    m = essay_metrics(human, machine, ["1"] * 8, {"1": (1, 6)}, {"g": ["a"] * 4 + ["b"] * 4}, min_group_size=4)
    a = m["subgroups"]["g"]["a"]
    assert a["smd"] == pytest.approx((np.mean([2, 2, 4, 4]) - np.mean([1, 2, 3, 4])) / np.std([1, 2, 3, 4], ddof=1))
    assert a["smd"] > 0  # machine above human is positive


def test_qwk_uses_the_full_label_range():
    """ASAP warning: sklearn must be given every label of the range, not only the ones seen."""
    from edu_flash.core.metrics import qwk

    human, machine = [0, 0, 10, 10, 5], [0, 1, 10, 9, 5]
    full = cohen_kappa_score(human, machine, weights="quadratic", labels=list(range(0, 11)))
    seen = cohen_kappa_score(human, machine, weights="quadratic")
    assert full != pytest.approx(seen)
    assert qwk(human, machine, 0, 10) == pytest.approx(full)


def test_evaluate_with_renamed_columns_and_new_subgroup(trained, tmp_path):
    s, test = trained.scorer, trained.test.copy()
    test["school"] = ["A", "B"] * 20
    p = tmp_path / "eval.parquet"
    test.rename(columns={"essay": "t", "score": "y"}).to_parquet(p)
    m = s.evaluate(str(p), text_column="t", score_column="y", subgroup_columns=["school", "group"], min_group_size=5)
    assert set(m["subgroups"]) == {"school", "group"}
    ref = s.evaluate(trained.test)
    assert m["qwk"] == ref["qwk"] and m["qwk_per_prompt"] == ref["qwk_per_prompt"]
    # both evaluations are recorded for the card, the latest per dataset
    names = [e["dataset"] for e in s.card.evaluations]
    assert str(p) in names and len(names) == len(set(names))
