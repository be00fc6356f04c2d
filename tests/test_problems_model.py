"""ProblemGenerator trained briefly on the built-in procedural problems: generation, verification
with re-sampling, evaluation, save/load round trip, the card, and a seq2seq (T5) backbone."""
from __future__ import annotations

import pytest

from conftest import has_pickle, reset_accelerate
from edu_flash.core.errors import ConfigError, NotFittedError, UnknownLabelError

TINY_LM = dict(n_layer=2, n_embd=64, n_head=2, vocab_size=400, max_length=160, batch_size=16, lr=3e-3,
               precision="32", max_new_tokens=110, max_attempts=2, dropout=0.0, warmup_ratio=0.0)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    from edu_flash import ProblemGenerator
    from edu_flash.problems.sample import sample_problems

    reset_accelerate()
    # short problems (difficulty 1-2, two topics) so a few optimizer steps teach the format
    train = sample_problems(192, seed=0, topics=("baking", "farm"), difficulties=(1, 2))
    val = sample_problems(24, seed=1, topics=("baking", "farm"), difficulties=(1, 2))
    g = ProblemGenerator(max_epochs=8, **TINY_LM)
    out = g.finetune(train, val=val, run_dir=tmp_path_factory.mktemp("pg") / "run", progress=False)
    assert out is g
    reset_accelerate()
    return g, val


def test_untrained_generator_refuses():
    from edu_flash import ProblemGenerator

    with pytest.raises(NotFittedError):
        ProblemGenerator().generate(n=1)


def test_trained_model_generates_parseable_problems(trained):
    g, _ = trained
    draws = g._draw([("baking", 1), ("farm", 2)] * 4, seed=0, temperature=0.7, top_p=0.95)
    assert sum(d["parsed"] for d in draws) >= 4, [d.get("problem") for d in draws]
    parsed = [d for d in draws if d["parsed"]]
    assert all(d["answer"] and d["realised_difficulty"] in (1, 2, 3, 4, 5) for d in parsed)


def test_generate_returns_only_verified_and_reports_rejections(trained):
    g, _ = trained
    out = g.generate(topic="baking", difficulty=1, n=4, seed=0)
    rep = g.last_generation
    assert rep["requested"] == 4 and rep["returned"] == len(out) and rep["draws"] >= 4
    assert rep["draws"] <= 4 * rep["max_attempts"]
    assert 0.0 <= rep["rejection_rate"] <= 1.0
    assert rep["rejected"] == sum(rep["rejected_by_reason"].values())
    from edu_flash.problems.verify import verify_solution

    for p in out:
        assert p["verified"] and verify_solution(p["solution"]).ok and p["topic"] == "baking"
        assert p["overlap"] < g.hparams.max_overlap
    assert g.generate(topic="baking", difficulty=1, n=4, seed=0) == out  # seeded
    g.generate(topic="baking", difficulty=1, n=2, seed=0, calculator=False)
    assert g.last_generation["calculator"] is False and g.hparams.calculator is True
    with pytest.raises(UnknownLabelError):
        g.generate(topic="astronomy")
    with pytest.raises(ConfigError):
        g.generate(difficulty=9)


def test_evaluate_and_card(trained, tmp_path):
    g, val = trained
    m = g.evaluate(val, n_samples=10, name="procedural-val")
    for k in ("perplexity", "verified_valid_rate", "novelty", "distinct_2", "difficulty_spearman", "parse_rate",
              "grounded_rate", "verified_valid_rate_calculator", "verified_valid_rate_no_calculator"):
        assert k in m
    assert m["calculator"] is True and m["verified_valid_rate"] == m["verified_valid_rate_calculator"]
    assert 1.0 < m["perplexity"] < 50 and 0.0 <= m["verified_valid_rate"] <= 1.0
    folder = g.save_pretrained(tmp_path / "model")
    card = (folder / "README.md").read_text()
    assert "verified_valid_rate_no_calculator" in card and "difficulty_spearman" in card and "Out-of-scope" in card
    assert "training solutions passing the verifier" in card and has_pickle(folder) == []


def test_save_load_round_trip(trained, tmp_path):
    from edu_flash import ProblemGenerator, Task

    g, _ = trained
    folder = g.save_pretrained(tmp_path / "m")
    g2 = Task.from_pretrained(folder)
    assert type(g2) is ProblemGenerator and g2.state["topics"] == g.state["topics"]
    a = g._draw([("farm", 2)] * 3, seed=5, temperature=0.7, top_p=0.95)
    b = g2._draw([("farm", 2)] * 3, seed=5, temperature=0.7, top_p=0.95)
    assert [x.get("problem") for x in a] == [x.get("problem") for x in b]
    assert g2.index.overlap("anything at all here") == g.index.overlap("anything at all here")


def test_calculator_writes_every_step_value(trained):
    """With the calculator no draw can fail on a step's arithmetic; without it this small model does."""
    g, _ = trained
    slots = [("baking", 1), ("farm", 2)] * 6
    on = g._draw(slots, seed=3, temperature=0.7, top_p=0.95, calculator=True)
    off = g._draw(slots, seed=3, temperature=0.7, top_p=0.95, calculator=False)
    wrong_step = [e for d in on for e in d["errors"] if e.startswith("step") and " is " in e]
    assert wrong_step == [], wrong_step
    assert sum(d["verified"] for d in on) >= sum(d["verified"] for d in off)
    assert any(e.startswith("step") and " is " in e for d in off for e in d["errors"])


def test_tied_gpt2_checkpoints_resume_and_reload(tmp_path):
    """GPT-2's lm_head shares wte's storage: the trainer's checkpoints and save_pretrained write both
    names (core.checkpoint._unshared), resume continues exactly, and a strict load keeps them tied."""
    import torch

    from edu_flash import ProblemGenerator
    from edu_flash.problems.sample import sample_problems

    data = sample_problems(32, seed=4, topics=("farm",), difficulties=(1,))
    kw = dict(n_layer=1, n_embd=32, n_head=2, vocab_size=300, max_length=96, batch_size=8, lr=3e-3,
              precision="32", dropout=0.0, warmup_ratio=0.0, scheduler="constant", max_epochs=2, checkpoint_every=2)
    full = ProblemGenerator(**kw).finetune(data, run_dir=tmp_path / "full", progress=False)
    reset_accelerate()
    part = ProblemGenerator(max_steps=3, keep_checkpoints=True, **kw).finetune(data, run_dir=tmp_path / "run", progress=False)
    assert part.last_train_report.steps == 3
    reset_accelerate()
    rest = ProblemGenerator(**kw).finetune(data, run_dir=tmp_path / "run", resume=True, progress=False)
    assert rest.last_train_report.resumed_from.endswith("step-00000003") and rest.last_train_report.steps == 8
    for a, b in zip(full.model.state_dict().values(), rest.model.state_dict().values()):
        assert torch.equal(a, b)
    m = rest.model
    assert m.lm_head.weight.data_ptr() == m.transformer.wte.weight.data_ptr()
    g2 = ProblemGenerator.from_pretrained(rest.save_pretrained(tmp_path / "saved"))
    assert g2.model.lm_head.weight.data_ptr() == g2.model.transformer.wte.weight.data_ptr()
    assert torch.equal(g2.model.lm_head.weight, m.lm_head.weight)
    reset_accelerate()


def test_seq2seq_t5_backbone(tmp_path):
    from edu_flash import ProblemGenerator
    from edu_flash.problems.model import make_tiny_backbone
    from edu_flash.problems.sample import sample_problems

    reset_accelerate()
    data = sample_problems(32, seed=2, topics=("school",), difficulties=(1,))
    folder = make_tiny_backbone(tmp_path / "t5", [p["question"] + p["answer"] for p in data], "t5")
    g = ProblemGenerator(backbone=str(folder), max_epochs=1, **{**TINY_LM, "max_new_tokens": 24})
    g.finetune(data, run_dir=tmp_path / "run", progress=False)
    assert g._kind() == "seq2seq"
    g.generate(topic="school", difficulty=1, n=2, seed=0, max_attempts=1)
    assert g.last_generation["draws"] == 2
    g.save_pretrained(tmp_path / "saved")
    g2 = ProblemGenerator.from_pretrained(tmp_path / "saved")
    assert g2._kind() == "seq2seq"
    a = g._draw([("school", 1)], seed=1, temperature=0.0, top_p=1.0)
    b = g2._draw([("school", 1)], seed=1, temperature=0.0, top_p=1.0)
    assert a[0]["parsed"] == b[0]["parsed"] and a[0].get("problem") == b[0].get("problem")
    reset_accelerate()


def test_require_grounded_rejects_solutions_on_invented_numbers(trained, monkeypatch):
    """A verified draw whose first step uses a number the story never states is re-sampled when
    require_grounded is on, and reported under its own reason."""
    g, _ = trained
    bad = {"parsed": True, "verified": True, "overlap": 0.0, "grounded": False, "realised_difficulty": 1,
           "problem": "Ben buys 5 bags of 9 apples. How many apples?", "solution": "<<5*7=35>>35\n#### 35",
           "answer": "35", "errors": []}
    good = {**bad, "grounded": True, "solution": "<<5*9=45>>45\n#### 45", "answer": "45"}
    calls = []

    def fake_draw(slots, seed, temperature, top_p, calculator=None):
        calls.append(len(slots))
        row = bad if len(calls) == 1 else good
        return [{**row, "topic": t, "difficulty": d} for t, d in slots]

    monkeypatch.setattr(g, "_draw", fake_draw)
    monkeypatch.setattr(g, "hparams", g.hparams.replace(require_grounded=True))
    out = g.generate(topic="farm", difficulty=1, n=2, seed=0)
    assert [p["solution"] for p in out] == [good["solution"]] * 2 and all(p["grounded"] for p in out)
    assert g.last_generation["rejected_by_reason"] == {"ungrounded": 2} and calls == [2, 2]
    monkeypatch.setattr(g, "hparams", g.hparams.replace(require_grounded=False))
    calls.clear()
    assert [p["solution"] for p in g.generate(topic="farm", difficulty=1, n=1, seed=0)] == [bad["solution"]]
