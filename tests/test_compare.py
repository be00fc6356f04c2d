"""edu_flash.compare: every backbone through the task's own finetune/evaluate, ranked, with costs."""
from __future__ import annotations

import time

import pytest

import edu_flash
from edu_flash import ConfigError
from edu_flash.leaderboard import lower_is_better


@pytest.fixture(scope="module")
def dropout_splits():
    from edu_flash.dropout import DropoutPredictor

    return DropoutPredictor.builtin_data(300, seed=0)


def test_leaderboard_ranks_backbones_with_metrics_and_costs(dropout_splits, tmp_path):
    s = dropout_splits
    board = edu_flash.compare("DropoutPredictor", ["logreg", "gbm"], s.train, s.test, val=s.val,
                              run_dir=tmp_path / "runs", save_dir=tmp_path / "models", plot=tmp_path / "board.png")
    assert list(board.columns[:1]) == ["backbone"] and set(board.backbone) == {"logreg", "gbm"}
    assert board.attrs["metric"] == "roc_auc"  # the task card's first headline metric
    assert board.roc_auc.is_monotonic_decreasing
    for col in ("pr_auc", "brier", "train_s", "eval_s", "parameters", "peak_rss_mb", "model_dir"):
        assert col in board.columns, col
    assert (board.parameters > 0).all() and (board.train_s > 0).all()
    assert (tmp_path / "board.png").read_bytes()[:4] == b"\x89PNG"
    # a saved model scores the test data exactly as the leaderboard says
    from edu_flash.dropout import DropoutPredictor

    row = board.iloc[0]
    again = DropoutPredictor.from_pretrained(row.model_dir).evaluate(s.test)
    assert again["roc_auc"] == pytest.approx(row.roc_auc, abs=1e-9)


def test_lower_is_better_metrics_rank_ascending(essays, tmp_path):
    train, test = essays.iloc[:160], essays.iloc[160:]
    cols = dict(text_column="essay", score_column="score", prompt_column="prompt")
    board = edu_flash.compare("EssayScorer", ["tfidf-ridge"], train, test, metric="rmse", finetune_args=cols,
                              hparams={"ngram_max": 1}, run_dir=tmp_path)
    assert lower_is_better("rmse") and lower_is_better("perplexity") and lower_is_better("frechet_distance")
    assert not lower_is_better("qwk_avg") and not lower_is_better("roc_auc")
    two = edu_flash.compare("EssayScorer", ["tfidf-ridge", "tfidf-ridge"], train, test, metric="rmse",
                            finetune_args=cols, backbone_hparams={"tfidf-ridge": {"ngram_max": 2}}, run_dir=tmp_path)
    assert two.rmse.is_monotonic_increasing and board.rmse.iloc[0] > 0


def test_bad_settings_fail_before_anything_trains(dropout_splits, tmp_path):
    s = dropout_splits
    with pytest.raises(ConfigError, match="no_such_hparam"):
        edu_flash.compare("DropoutPredictor", ["gbm", "logreg"], s.train, s.test, run_dir=tmp_path / "r",
                          backbone_hparams={"logreg": {"no_such_hparam": 1}})
    assert not (tmp_path / "r").exists()
    with pytest.raises(ConfigError, match="not being compared"):
        edu_flash.compare("DropoutPredictor", ["gbm"], s.train, s.test, backbone_hparams={"gru": {}})
    with pytest.raises(ConfigError, match="unknown task"):
        edu_flash.compare("NoSuchTask", ["gbm"], s.train, s.test)
    with pytest.raises(ConfigError, match="not among"):
        edu_flash.compare("DropoutPredictor", ["logreg"], s.train, s.test, metric="accuracyy", run_dir=tmp_path)


def test_failures_are_recorded_on_request(essays, tmp_path):
    cols = dict(text_column="essay", score_column="score", prompt_column="prompt")
    broken = tmp_path / "not-a-model"  # a folder, so a valid backbone name, that fails when training starts
    broken.mkdir()
    board = edu_flash.compare("EssayScorer", ["tfidf-ridge", str(broken)], essays.iloc[:160], essays.iloc[160:],
                              finetune_args=cols, run_dir=tmp_path, on_error="record")
    assert board.iloc[0].backbone == "tfidf-ridge" and board.iloc[0].qwk_avg > 0
    bad = board[board.backbone == str(broken)].iloc[0]
    assert isinstance(bad.error, str) and bad.error
    with pytest.raises(Exception):
        edu_flash.compare("EssayScorer", [str(broken)], essays.iloc[:160], essays.iloc[160:], finetune_args=cols,
                          run_dir=tmp_path)
    # a misspelt backbone is a configuration error: it fails before any backbone trains, even with "record"
    with pytest.raises(edu_flash.ConfigError, match="did you mean 'tfidf-ridge'"):
        edu_flash.compare("EssayScorer", ["tfidf-ridge", "tfidf-rigde"], essays.iloc[:160], essays.iloc[160:],
                          finetune_args=cols, run_dir=tmp_path, on_error="record")


def test_num_parameters_counts_torch_and_classical_models(trained):
    n = trained.scorer.num_parameters()
    assert n == sum(p.numel() for p in trained.scorer.model.parameters()) > 0
    with pytest.raises(edu_flash.NotFittedError):
        edu_flash.EssayScorer("tfidf-ridge").num_parameters()


def test_peak_memory_sees_a_known_allocation():
    import numpy as np

    from edu_flash.core.measure import PeakMemory

    with PeakMemory() as small:
        pass
    with PeakMemory() as big:
        a = np.ones(50_000_000, dtype=np.float32)  # 191 MiB, touched
        time.sleep(0.5)  # the sampling thread must get a turn while it is held (a loaded CPU delays it)
        del a
    assert big.rss_mb > 150 and small.rss_mb < 50
