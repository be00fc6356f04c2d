"""batch_size="auto": the search logic with a fake probe (CUDA's grow-then-bisect on out-of-memory),
the CPU memory fit against a budget, and one real CPU run through EssayScorer."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from dist_helpers import COLS, HP, tiny_encoder  # noqa: E402

from edu_flash import ConfigError  # noqa: E402
from edu_flash.core.batch_size import MAX_PROBES, LinearFit, find_batch_size, parse_memory, search  # noqa: E402
from edu_flash.core.trainer import TrainJob  # noqa: E402


@pytest.mark.parametrize("text,expected", [("4GB", 4 * 10**9), ("512MiB", 512 * 2**20), ("1.5 gb", 1.5e9),
                                           (123456, 123456), ("2g", 2e9)])
def test_parse_memory(text, expected):
    assert parse_memory(text) == int(expected)


@pytest.mark.parametrize("bad", ["lots", "-1GB", "4 parsecs", 0, None])
def test_parse_memory_rejects_nonsense(bad):
    with pytest.raises(ConfigError, match="max_memory"):
        parse_memory(bad)


class FakeDevice:
    """A probe that 'runs out of memory' above `capacity` and counts its calls."""

    def __init__(self, capacity):
        self.capacity, self.calls = capacity, []

    def __call__(self, b):
        self.calls.append(b)
        return b <= self.capacity


@pytest.mark.parametrize("capacity", [1, 2, 3, 7, 37, 64, 100, 129, 1000, 5000])
@pytest.mark.parametrize("start", [1, 8, 64])
def test_search_never_overruns_and_stays_within_ten_probes(capacity, start):
    dev = FakeDevice(capacity)
    res = search(dev, start=start)
    assert len(dev.calls) == len(res.probes) <= MAX_PROBES
    assert 1 <= res.batch_size <= capacity  # the answer was itself seen to fit
    assert (res.batch_size, True) in res.probes
    if any(not ok for _, ok in res.probes) and len(res.probes) < MAX_PROBES:
        assert res.batch_size == capacity  # converged: the largest that fits


def test_search_grows_then_bisects():
    dev = FakeDevice(37)
    assert search(dev, start=8).batch_size == 37
    assert dev.calls == [8, 16, 32, 64, 48, 40, 36, 38, 37]


def test_search_respects_the_limit_and_a_known_fit():
    assert search(FakeDevice(10**6), start=4, limit=50).batch_size == 50
    dev = FakeDevice(300)
    assert search(dev, start=256, known_fit=2, limit=400).batch_size == 300
    assert dev.calls[0] == 256


def test_search_raises_when_nothing_fits():
    with pytest.raises(ConfigError, match="not even a batch of 1"):
        search(FakeDevice(0), start=4)


def test_linear_fit():
    fit = LinearFit.from_points(2, 300.0, 4, 500.0, floor=700.0)
    assert (fit.fixed, fit.per_example) == (100.0, 100.0)
    assert fit(10) == 1100.0 and fit(3) == 700.0  # the optimizer step's peak is a floor
    assert fit.largest_within(1150) == 10 and fit.largest_within(600) == -1


def _toy_job(n=40, length=24):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(100, 64), torch.nn.Linear(64, 256), torch.nn.GELU(),
                                torch.nn.Dropout(0.1), torch.nn.Linear(256, 1))
    train = [{"ids": torch.randint(0, 100, (length - i % 5,)), "y": float(i % 3)} for i in range(n)]

    def collate(ex):
        m = max(len(e["ids"]) for e in ex)
        ids = torch.stack([torch.nn.functional.pad(e["ids"], (0, m - len(e["ids"]))) for e in ex])
        return {"ids": ids, "y": torch.tensor([e["y"] for e in ex])}

    def loss(model, batch):
        return torch.nn.functional.mse_loss(model(batch["ids"]).mean(dim=(1, 2)), batch["y"])

    return TrainJob(model=model, train=train, collate=collate, loss=loss, lengths=[len(e["ids"]) for e in train])


def test_cpu_finder_fits_the_budget_and_leaves_no_trace():
    job = _toy_job()
    before = {k: v.clone() for k, v in job.model.state_dict().items()}
    rng = torch.get_rng_state()
    budget = 2_000_000
    found = find_batch_size(job, precision="32", device=torch.device("cpu"), max_memory=budget)
    b, fit = found.batch_size, found.fit
    assert 1 <= b < len(job.train) and found.probes == 2
    assert fit(b) <= budget < fit(b + 1)
    # the fit is real: a measured step at the chosen batch stays within the budget
    from edu_flash.core.batch_size import _Prober

    assert max(_Prober(job, "32", torch.device("cpu")).cpu_peak(b)) <= budget
    # probes must not move weights, leave gradients or consume randomness
    assert all(torch.equal(v, before[k]) for k, v in job.model.state_dict().items())
    assert all(p.grad is None for p in job.model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)
    assert "batch size finder" in found.card


def test_cpu_finder_is_capped_by_the_data_and_refuses_a_tiny_budget():
    job = _toy_job(n=12)
    assert find_batch_size(job, precision="32", device=torch.device("cpu"), max_memory="10GB").batch_size == 12
    assert find_batch_size(job, precision="32", device=torch.device("cpu"), world=2,
                           max_memory="10GB").batch_size == 6
    with pytest.raises(ConfigError, match="too small"):
        find_batch_size(job, precision="32", device=torch.device("cpu"), max_memory=1000)


def test_essay_scorer_auto_batch_on_cpu_with_a_small_budget(tmp_path, caplog):
    from edu_flash.essay.sample import sample_essays
    from edu_flash.essay.task import EssayScorer

    df = sample_essays(96, seed=3)
    enc = tiny_encoder(tmp_path / "enc", df.essay)
    s = EssayScorer(backbone=str(enc), **{**HP, "batch_size": "auto", "max_steps": 2})
    with caplog.at_level(logging.INFO, logger="edu_flash.batch_size"):
        s.finetune(df, run_dir=tmp_path / "run", progress=False, max_memory="6MB", **COLS)
    b = s.last_train_report.per_device_batch_size
    assert 1 < b < len(df)  # the budget, not the data, decided
    assert f"auto -> {b} per device" in s.card.procedure["batch size finder"]
    assert any(f"-> {b} per device" in r.getMessage() for r in caplog.records)
    assert s.hparams.batch_size == "auto"  # the next finetune searches again
    card = s.model_card()
    assert f"auto -> {b} per device" in card and "6 MB" in card
