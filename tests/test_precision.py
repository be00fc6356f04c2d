"""bf16 only where the hardware has it: on a CPU without native bf16 (AVX2-only x86, most laptops)
torch emulates it about 10x slower and oneDNN's LSTM refuses it, so every task's default
"bf16-mixed" runs in fp32 there, says so once, and the card records what ran."""
from __future__ import annotations

import logging

import pytest

from edu_flash import EssayScorer, PathRecommender
from edu_flash.core import precision as P

from conftest import reset_accelerate


@pytest.fixture
def no_native_bf16(monkeypatch):
    monkeypatch.setenv("EDU_FLASH_NATIVE_BF16", "0")
    monkeypatch.setattr(P, "_warned", set())


def test_effective_keeps_what_the_hardware_runs_and_replaces_emulated_bf16(monkeypatch):
    monkeypatch.setattr(P, "_warned", set())
    monkeypatch.setenv("EDU_FLASH_NATIVE_BF16", "1")
    assert [P.effective(p, "cpu") for p in ("32", "bf16-mixed", "bf16-true")] == ["32", "bf16-mixed", "bf16-true"]
    monkeypatch.setenv("EDU_FLASH_NATIVE_BF16", "0")
    assert [P.effective(p, "cpu") for p in ("32", "bf16-mixed", "bf16-true")] == ["32", "32", "32"]
    assert P.effective("16-mixed", "cuda") == "16-mixed"   # fp16 is not bf16: left to the GPU check


def test_the_fallback_warns_once_per_process(no_native_bf16, caplog):
    with caplog.at_level(logging.WARNING, logger="edu_flash"):
        P.effective("bf16-mixed", "cpu")
        P.effective("bf16-true", "cpu")
    warned = [r.getMessage() for r in caplog.records if "native bf16" in r.getMessage()]
    assert len(warned) == 1 and "fp32" in warned[0] and "precision='32'" in warned[0]


def test_a_bf16_finetune_on_a_cpu_without_it_trains_in_fp32_and_the_card_says_so(no_native_bf16, essays,
                                                                                  tiny_encoder, tmp_path):
    s = EssayScorer(backbone=str(tiny_encoder), max_length=32, batch_size=8, max_steps=2, precision="bf16-mixed")
    reset_accelerate()
    s.finetune(essays.iloc[:32], text_column="essay", prompt_column="prompt", run_dir=tmp_path / "run",
               progress=False)
    assert s.last_train_report.precision == "32"
    assert s.card.procedure["precision"] == "32"
    assert s.card.procedure["precision asked"].startswith("bf16-mixed (no native bf16")


@pytest.mark.parametrize("backbone", ["dkt", "sakt"])
def test_the_default_lstm_and_attention_kt_models_train_where_bf16_is_emulated(no_native_bf16, tmp_path, backbone):
    """The crash this replaces: DKT's LSTM under bf16 autocast on an AVX2 CPU ("could not create a
    primitive descriptor for the LSTM forward propagation primitive")."""
    data = PathRecommender.builtin_data(40, seed=0)
    rec = PathRecommender(backbone, d_model=16, window=30, max_epochs=1)
    assert rec.hparams.precision == "bf16-mixed"   # the default still asks for bf16 where it pays
    reset_accelerate()
    rec.finetune(data.train, data.val, run_dir=tmp_path / "run", progress=False)
    assert rec.last_train_report.precision == "32"
    assert 0.0 <= rec.predict([("q101", 1), ("q201", 0)])["p_correct"]["q102"] <= 1.0
