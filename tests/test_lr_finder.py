"""Issue 15, item 3: `task.lr_find` (the range test of Smith 2017) and `lr="auto"` in finetune: a
bounded number of steps on a copy of the weights, the curve as a table and a plot, a suggested
learning rate; the task's weights and state and the RNG states are untouched."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from edu_flash import ConfigError, DropoutPredictor, EssayScorer, PathRecommender
from edu_flash.core.lr_finder import suggest

from conftest import TINY, reset_accelerate

COLS = dict(text_column="essay", score_column="score", prompt_column="prompt")


def _rng():
    return torch.get_rng_state().clone(), np.random.get_state()[1].copy(), random.getstate()


def _same_rng(a, b) -> bool:
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_lr_find_leaves_weights_state_and_rng_untouched(trained, tmp_path):
    s = trained.scorer
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    state, hp = dict(s.state), s.hparams
    torch.manual_seed(123)
    rng = _rng()
    reset_accelerate()
    r = s.lr_find(trained.train, num_steps=30, min_lr=1e-6, max_lr=1e-1, plot=tmp_path / "lr.png", **COLS)
    assert _same_rng(rng, _rng())
    assert all(torch.equal(before[k], v) for k, v in s.model.state_dict().items())
    assert s.state == state and s.hparams == hp
    t = r.table()
    assert list(t.columns) == ["lr", "loss", "smoothed_loss"] and len(t) == 30
    assert t["lr"].iloc[0] == pytest.approx(1e-6) and t["lr"].iloc[-1] == pytest.approx(1e-1)
    ratios = np.diff(np.log(t["lr"].to_numpy()))
    assert np.allclose(ratios, ratios[0])  # exponential growth
    assert 1e-6 <= r.suggestion <= 1e-1 and not r.diverged
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install 'edu-flash[plot]')")
    assert (tmp_path / "lr.png").stat().st_size > 1000


def test_lr_find_on_an_untrained_task_builds_nothing_in_it(tiny_encoder, essays):
    s = EssayScorer(backbone=str(tiny_encoder), **TINY)
    reset_accelerate()
    r = s.lr_find(essays.iloc[:64], num_steps=10, **COLS)
    assert len(r.lrs) == 10 and s.model is None and s.state == {}


def test_the_loss_diverging_stops_the_test_early():
    data = PathRecommender.builtin_data(seed=0)
    p = PathRecommender(**data.hparams)
    reset_accelerate()
    r = p.lr_find(data.train, num_steps=60, min_lr=1e-4, max_lr=1e4, **data.finetune_args)
    assert r.diverged and len(r.lrs) < 60 and r.suggestion is not None and r.suggestion < 1.0
    assert p.model is None


def test_valley_rule_on_a_known_curve():
    lrs = [10 ** (-6 + i * 0.1) for i in range(60)]
    # flat until 1e-4, falls until 1e-2, then blows up
    loss = [1.0 if lr < 1e-4 else (1.0 - 0.4 * math.log10(lr / 1e-4) if lr < 1e-2 else 0.2 + 5 * (lr - 1e-2))
            for lr in lrs]
    s = suggest(lrs, loss)
    assert 1e-4 < s < 1e-2
    assert suggest(lrs[:2], loss[:2]) is None


def test_lr_auto_trains_exactly_like_the_suggested_rate(tiny_encoder, essays, tmp_path):
    data = dict(**COLS)
    reset_accelerate()
    auto = EssayScorer(backbone=str(tiny_encoder), max_epochs=1, **{**TINY, "lr": "auto"})
    auto.finetune(essays.iloc[:64], run_dir=tmp_path / "a", progress=False, loggers=None, **data)
    found = auto.last_lr_find.suggestion
    assert auto.hparams.lr == "auto" and found is not None
    assert "suggested by lr_find" in auto.card.procedure["learning rate"]
    reset_accelerate()
    fixed = EssayScorer(backbone=str(tiny_encoder), max_epochs=1, **{**TINY, "lr": found})
    fixed.finetune(essays.iloc[:64], run_dir=tmp_path / "b", progress=False, loggers=None, **data)
    a, b = auto.model.state_dict(), fixed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # the range test left the RNG and the start weights alone


def test_lr_find_for_the_other_torch_tasks():
    for cls, backbone in ((PathRecommender, "sakt"), (DropoutPredictor, "gru")):
        data = cls.builtin_data(seed=0)
        t = cls(backbone, **data.hparams)
        reset_accelerate()
        r = t.lr_find(data.train, data.val, num_steps=20, **data.finetune_args)
        assert len(r.lrs) == 20 and r.suggestion is not None and t.model is None, cls.__name__


def test_lr_find_needs_a_torch_backbone_and_sane_settings(essays):
    with pytest.raises(ConfigError, match="scikit-learn"):
        EssayScorer(backbone="tfidf-ridge").lr_find(essays, **COLS)
    with pytest.raises(ConfigError, match="min_lr < max_lr"):
        PathRecommender().lr_find(PathRecommender.builtin_data(seed=0).train, min_lr=1.0, max_lr=0.1)
