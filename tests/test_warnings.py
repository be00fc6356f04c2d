"""Issue 16: warnings a user cannot act on are silenced where edu-flash knows they do not apply, and
only there: the same warning from the user's own code still shows."""
from __future__ import annotations

import pytest

from edu_flash import CheckpointError, ProblemGenerator

NOISE = ("loss_type=None", "strongly recommend passing in an `attention_mask`", "Repo card metadata block")


def _reset_once():
    """transformers logs these once per process: forget that it did."""
    from transformers.utils import logging as hf_logging

    for obj in (hf_logging.get_logger("transformers.modeling_utils"),):
        for attr in ("warning_once", "info_once"):
            fn = getattr(type(obj), attr, None)
            if fn is not None and hasattr(fn, "cache_clear"):
                fn.cache_clear()


@pytest.fixture()
def logged():
    """Messages that reach the transformers and huggingface_hub loggers' handlers (whatever stream
    those handlers were created with)."""
    import logging

    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    h = Keep(level=logging.WARNING)
    loggers = [logging.getLogger(n) for n in ("transformers", "huggingface_hub")]
    for lg in loggers:
        lg.addHandler(h)
    yield seen
    for lg in loggers:
        lg.removeHandler(h)


def _noise(messages) -> list[str]:
    return [m for m in messages if any(t in m for t in NOISE)]


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    s = ProblemGenerator.builtin_data(80)
    g = ProblemGenerator("gpt2-scratch", n_layer=1, n_embd=32, n_head=2, vocab_size=300, max_length=96,
                         max_new_tokens=30, max_steps=2, precision="32", max_attempts=1)
    return g, s


def test_training_and_generation_are_quiet(gen, logged, tmp_path):
    g, s = gen
    _reset_once()
    g.finetune(s.train, run_dir=tmp_path / "run", progress=False)
    g._draw([("shopping", 1), ("shopping", 2)] * 3, seed=0, temperature=0.7, top_p=0.95)
    assert _noise(logged) == []


def test_the_same_warning_from_user_code_still_shows(gen, logged, tmp_path):
    import torch

    g, s = gen
    if g.model is None:
        g.finetune(s.train, run_dir=tmp_path / "run", progress=False)
    _reset_once()
    pad = g.tokenizer.pad_token_id
    g.model.config.pad_token_id = pad
    g.model(torch.tensor([[5, 6, pad]]))  # the user's own call, padded, without a mask
    assert any("attention_mask" in m for m in logged)


def test_card_check_reports_missing_metadata_itself(tmp_path, logged):
    from edu_flash.core.cardcheck import check_card

    (tmp_path / "README.md").write_text("# a card without front matter\n")
    with pytest.raises(CheckpointError, match="library_name"):
        check_card(tmp_path / "README.md")
    assert _noise(logged) == []


def test_no_loading_weights_bar_and_the_callers_setting_is_kept(tiny_encoder, capfd):
    """transformers' "Loading weights" bar is not shown for the library's own loads; a caller who
    turned bars off (or on) finds them as they were."""
    from transformers import AutoModel
    from transformers.utils import logging as tf_logging

    from edu_flash.core.hfload import auto_model

    tf_logging.enable_progress_bar()
    auto_model(AutoModel, tiny_encoder)
    assert "Loading weights" not in capfd.readouterr().err
    assert tf_logging.is_progress_bar_enabled()
    tf_logging.disable_progress_bar()
    try:
        auto_model(AutoModel, tiny_encoder)
        assert not tf_logging.is_progress_bar_enabled()
    finally:
        tf_logging.enable_progress_bar()
