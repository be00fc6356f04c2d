"""ProblemGenerator trained briefly on the built-in procedural problems: generation, verification
with re-sampling, evaluation, save/load round trip, the card, and a seq2seq (T5) backbone."""
from __future__ import annotations

import re

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
    g = ProblemGenerator("gpt2-scratch", max_epochs=12, **TINY_LM)
    out = g.finetune(train, val=val, run_dir=tmp_path_factory.mktemp("pg") / "run", progress=False)
    assert out is g
    reset_accelerate()
    return g, val


def test_untrained_generator_refuses():
    from edu_flash import ProblemGenerator

    with pytest.raises(NotFittedError):
        ProblemGenerator().generate(n=1)
    with pytest.raises(NotFittedError):
        ProblemGenerator("gpt2-scratch").generate(n=1)


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
        assert p["verified"] and p["usable"] and verify_solution(p["solution"]).ok and p["topic"] == "baking"
        assert p["structural_novel"]  # a language model's default novelty is "new"
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
    for k in ("perplexity", "verified_valid_rate", "usable_rate", "surface_novelty", "structural_novelty", "distinct_2",
              "difficulty_spearman", "parse_rate", "grounded_rate", "question_rate", "verified_valid_rate_calculator",
              "verified_valid_rate_no_calculator"):
        assert k in m
    assert m["calculator"] is True and m["verified_valid_rate"] == m["verified_valid_rate_calculator"]
    assert 1.0 < m["perplexity"] < 50 and 0.0 <= m["verified_valid_rate"] <= 1.0
    folder = g.save_pretrained(tmp_path / "model")
    card = (folder / "README.md").read_text()
    assert "verified_valid_rate_no_calculator" in card and "difficulty_spearman" in card and "Out-of-scope" in card
    assert "solutions failing the verifier (left out)" in card and has_pickle(folder) == []
    assert "problems drawn at random from generate()" in card and "usable_rate" in card


def test_save_load_round_trip(trained, tmp_path):
    from edu_flash import ProblemGenerator, Task

    g, _ = trained
    folder = g.save_pretrained(tmp_path / "m")
    g2 = Task.from_pretrained(folder)
    assert type(g2) is ProblemGenerator and g2.state["topics"] == g.state["topics"]
    a = g._draw([("farm", 2)] * 3, seed=5, temperature=0.7, top_p=0.95)
    b = g2._draw([("farm", 2)] * 3, seed=5, temperature=0.7, top_p=0.95)
    assert [x.get("problem") for x in a] == [x.get("problem") for x in b]
    assert g2.index.judge("Ann has 3 eggs.", "<<3*2=6>>6", 0.8) == g.index.judge("Ann has 3 eggs.", "<<3*2=6>>6", 0.8)


def test_calculator_writes_every_step_value(trained):
    """With the calculator no draw can fail on a step's arithmetic; without it this small model does."""
    g, _ = trained
    slots = [("baking", 1), ("farm", 2)] * 6
    on = g._draw(slots, seed=3, temperature=0.7, top_p=0.95, calculator=True)
    off = g._draw(slots, seed=3, temperature=0.7, top_p=0.95, calculator=False)
    def wrong_steps(draws):  # "step 2: 5*3 is 15, not 16": an annotation's own arithmetic
        return [p for d in draws for e in d["errors"] for p in e.split("; ") if re.match(r"step \d+: .+ is .+, not ", p)]

    assert wrong_steps(on) == [], wrong_steps(on)
    assert sum(d["verified"] for d in on) >= sum(d["verified"] for d in off)
    assert wrong_steps(off)


def test_tied_gpt2_checkpoints_resume_and_reload(tmp_path):
    """GPT-2's lm_head shares wte's storage: the trainer's checkpoints and save_pretrained write both
    names (core.checkpoint._unshared), resume continues exactly, and a strict load keeps them tied."""
    import torch

    from edu_flash import ProblemGenerator
    from edu_flash.problems.sample import sample_problems

    data = sample_problems(32, seed=4, topics=("farm",), difficulties=(1,))
    kw = dict(n_layer=1, n_embd=32, n_head=2, vocab_size=300, max_length=96, batch_size=8, lr=3e-3,
              precision="32", dropout=0.0, warmup_ratio=0.0, scheduler="constant", max_epochs=2, checkpoint_every=2)
    full = ProblemGenerator("gpt2-scratch", **kw).finetune(data, run_dir=tmp_path / "full", progress=False)
    reset_accelerate()
    part = ProblemGenerator("gpt2-scratch", max_steps=3, keep_checkpoints=True, **kw).finetune(
        data, run_dir=tmp_path / "run", progress=False)
    assert part.last_train_report.steps == 3
    reset_accelerate()
    rest = ProblemGenerator("gpt2-scratch", **kw).finetune(data, run_dir=tmp_path / "run", resume=True,
                                                           progress=False)
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
    assert not g.uses_templates
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


def test_generate_rejects_unusable_draws_and_says_why(trained, monkeypatch):
    """A verified draw whose step uses a number the story never states (the issue's "Each bag holds 9
    apples" solved with 5*7) is re-sampled, and reported under the failed check."""
    from edu_flash.problems import generation as G

    g, _ = trained
    bad = {"problem": "Ben buys 5 bags and each bag holds 9 apples. How many apples does Ben have?",
           "solution": "5*7 = <<5*7=35>>35\n#### 35", "answer": "35"}
    good = {**bad, "solution": "5*9 = <<5*9=45>>45\n#### 45", "answer": "45"}
    calls = []

    def fake_draw(gen, slots, *args):
        calls.append(len(slots))
        row = bad if len(calls) == 1 else good
        return [{**row, "topic": t, "difficulty": d, "parsed": True} for t, d in slots]

    monkeypatch.setattr(G, "draw_lm", fake_draw)
    out = g.generate(topic="farm", difficulty=1, n=2, seed=0)
    assert [p["solution"] for p in out] == [good["solution"]] * 2 and all(p["usable"] for p in out)
    assert g.last_generation["rejected_by_reason"] == {"unusable (grounded)": 2} and calls == [2, 2]
    calls.clear()
    assert [p["solution"] for p in g.generate(topic="farm", difficulty=1, n=1, seed=0, verify=False)] == \
        [bad["solution"]]
