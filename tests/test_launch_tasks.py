"""Every torch task trains with `devices=2` (gloo, 2 CPU processes, tiny models), each from a
different data format — a task's own structure (DropoutData), a file path (a DKT file), a
`datasets.Dataset`, a list of records holding PIL images — and the caller gets back a trained model
whose card names the data as the caller passed it (the worker saw the same table). EssayScorer
with a DataFrame is test_distributed.py; every format through the hand-over is test_handoff.py.
"""
from __future__ import annotations

import pytest


def _trained_with_two_ranks(m, source: str) -> None:
    rep = m.last_train_report
    assert (rep.world_size, rep.strategy) == (2, "ddp") and rep.steps >= 1
    assert m.card.procedure["devices"] == 2
    assert m.card.datasets == [source]


def test_dropout_predictor_from_its_data_object(tmp_path):
    from edu_flash.dropout import DropoutPredictor, sample_dropout_data

    data, test = sample_dropout_data(160, seed=0).split(0.25, seed=0)
    m = DropoutPredictor(backbone="gru", hidden_size=8, max_epochs=1, batch_size=32, max_week=6)
    m.finetune(data, devices=2, run_dir=tmp_path / "run", progress=False, dataset_name="synthetic registrations")
    _trained_with_two_ranks(m, "synthetic registrations")
    assert 0 < m.state["threshold"] < 1
    risk = m.predict(test, week=4)["risk"].dropna()  # NaN: not in the population at week 4
    assert len(risk) > 10 and risk.between(0, 1).all()


def test_path_recommender_from_a_dkt_file(tmp_path):
    from edu_flash.path import PathRecommender
    from edu_flash.path.sample import sample_logs

    logs = sample_logs(30, seed=2)
    lines = []
    for _, g in logs.groupby("student", sort=True):  # the three-line DKT format: n / skills / flags
        lines += [str(len(g)), ",".join(g["skill"].astype(str)), ",".join(g["correct"].astype(str))]
    dkt = tmp_path / "logs.txt"
    dkt.write_text("\n".join(lines) + "\n")
    m = PathRecommender("dkt", d_model=8, n_heads=2, window=20, max_epochs=1, batch_size=8)
    m.finetune(dkt, devices=2, run_dir=tmp_path / "run", progress=False, threads=1)
    _trained_with_two_ranks(m, "logs.txt")
    assert m.card.procedure["CPU threads"] == 1  # each worker trained with the threads asked for
    skill = str(logs["skill"].iloc[0])
    mastery = m.predict([(skill, 1), (skill, 1)])["mastery"]
    assert mastery and all(0 <= v <= 1 for v in mastery.values())


def test_problem_generator_from_a_datasets_dataset(tmp_path):
    import datasets

    from edu_flash import ProblemGenerator
    from edu_flash.problems.sample import sample_problems

    ds = datasets.Dataset.from_list(sample_problems(32, seed=0))
    m = ProblemGenerator("gpt2-scratch", n_layer=1, n_embd=32, n_head=2, vocab_size=300, max_length=96, batch_size=8,
                         max_steps=2, max_new_tokens=16, max_attempts=1, precision="32")
    m.finetune(ds, devices=2, run_dir=tmp_path / "run", progress=False)
    _trained_with_two_ranks(m, "train (Dataset)")
    import math

    assert math.isfinite(m.last_train_report.final_train_loss)  # 2 steps: it cannot write problems yet
    loaded = ProblemGenerator.from_pretrained(m.save_pretrained(tmp_path / "model"))
    assert loaded.num_parameters() == m.num_parameters() > 0


def test_diagram_diffusion_from_records_with_pil_images(tmp_path):
    from edu_flash.diagrams import DiagramDiffusion, sample_diagrams

    records = sample_diagrams(4, 16, seed=0)
    m = DiagramDiffusion(image_size=16, block_channels=(8, 16), batch_size=8, max_steps=2, reference_epochs=1,
                         card_samples=1, sample_steps=2, predict_batch_size=8)
    m.finetune(records, devices=2, run_dir=tmp_path / "run", progress=False)
    _trained_with_two_ranks(m, "train (list of records)")
    (img,) = m.generate(records[0]["label"], n=1, steps=2)
    assert img.size == (16, 16)


pytestmark = pytest.mark.usefixtures("one_thread")
