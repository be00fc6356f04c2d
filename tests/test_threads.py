"""Issue 16: a sensible CPU thread count for training by default (the free cores), overridable, and
never above what the user set."""
from __future__ import annotations

import os

import pytest
import torch

from edu_flash import ConfigError, EssayScorer
from edu_flash.core import threads as T


@pytest.fixture()
def seen(monkeypatch, essays):
    """Train a tfidf-ridge scorer; record torch's and the BLAS pools' thread counts during the fit."""
    from threadpoolctl import threadpool_info

    out = {}
    fit = EssayScorer._fit_classical

    def spy(self, prep):
        out["torch"] = torch.get_num_threads()
        out["pools"] = {p["num_threads"] for p in threadpool_info()}
        return fit(self, prep)

    monkeypatch.setattr(EssayScorer, "_fit_classical", spy)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.delenv(T.ENV, raising=False)
    monkeypatch.setattr(T, "usable_cores", lambda: 4)
    old = torch.get_num_threads()
    torch.set_num_threads(4)

    def run(**kw):
        out.clear()
        s = EssayScorer("tfidf-ridge", ngram_max=1).finetune(essays.iloc[:60], text_column="essay", **kw)
        out["card"] = s.card.procedure.get("CPU threads")
        out["after"] = torch.get_num_threads()
        return out

    yield run
    torch.set_num_threads(old)


def test_busy_machine_trains_on_the_free_cores(seen, monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (2.7, 2.0, 1.0))  # 4 cores, 2.7 busy -> 1 free
    got = seen()
    assert got["torch"] == 1 and got["pools"] <= {1} and got["card"] == 1
    assert got["after"] == 4  # restored


def test_quiet_machine_keeps_all_cores_and_never_raises_a_users_count(seen, monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert seen()["torch"] == 4
    torch.set_num_threads(2)
    assert seen()["torch"] == 2  # the user's 2 is not raised to 4


def test_explicit_choices_win(seen, monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (3.9, 3.9, 3.9))
    assert seen(threads=3)["torch"] == 3
    assert seen(threads=0)["torch"] == 4 and seen(threads=0)["card"] is None  # left alone
    monkeypatch.setenv(T.ENV, "2")
    assert seen()["torch"] == 2
    monkeypatch.delenv(T.ENV)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert seen()["torch"] == 4  # the user already chose for the whole process


@pytest.mark.parametrize("bad", [-1, 1.5, "two", True])
def test_bad_thread_counts_fail_before_training(seen, bad):
    with pytest.raises(ConfigError, match="threads"):
        seen(threads=bad)


def test_distributed_ranks_share_the_free_cores(monkeypatch):
    monkeypatch.setattr(T, "usable_cores", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert T.free_cores() == 2
