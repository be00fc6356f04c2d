"""Issue 12, item 3 (and issue 16's card items for EssayScorer): the card says what is true of this
model: only the settings its backbone uses, truncation only where it truncates, a snippet that runs
as written against the saved model, a regression task type, predictions drawn at random."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from edu_flash import EssayScorer

from conftest import TINY

REPO = Path(__file__).resolve().parent.parent


def snippet(card: str) -> str:
    section = card.split("## How to use", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_snippet(card: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", snippet(card)], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture(scope="module")
def ridge_folder(essays, tmp_path_factory):
    s = EssayScorer(backbone="tfidf-ridge").finetune(essays.iloc[:180], text_column="essay", prompt_column="prompt",
                                                     subgroup_columns="group")
    s.evaluate(essays.iloc[180:], name="held-out", min_group_size=10)
    return s, s.save_pretrained(tmp_path_factory.mktemp("card") / "ridge-model")


def test_ridge_card_lists_only_its_own_settings_and_the_chosen_alphas(ridge_folder):
    s, folder = ridge_folder
    card = (folder / "README.md").read_text()
    table = card.split("**Hyperparameters**", 1)[1].split("## How to use", 1)[0]
    for name in ("ngram_max", "min_df", "max_features", "ridge_alpha", "surface_features"):
        assert f"| {name} |" in table
    for name in ("lr", "batch_size", "precision", "max_length", "max_epochs", "dropout", "pooling"):
        assert f"| {name} |" not in table, name
    alphas = re.search(r"\| ridge alpha chosen per prompt \(GCV\) \| (.*) \|", table).group(1)
    assert alphas == ", ".join(f"{p}: {m['alpha']:g}" for p, m in s.model.prompts.items())
    assert "truncated" not in card


def test_ridge_card_snippet_runs_as_written(ridge_folder, tmp_path):
    s, folder = ridge_folder
    card = (folder / "README.md").read_text()
    assert str(folder) in snippet(card)
    out = run_snippet(card, tmp_path)
    value = float(out.strip().splitlines()[-1])
    assert value == s.predict("Computers help people learn because they can find information fast.", prompt="1")


def test_card_metadata_is_a_regression_task_and_shows_random_predictions(ridge_folder, essays):
    s, folder = ridge_folder
    card = ModelCard.load(folder / "README.md")
    assert {r.task_type for r in card.data.eval_results} == {"text-regression"}
    text = (folder / "README.md").read_text()
    table = text.split("**Predictions on essays drawn at random (not chosen)**", 1)[1].split("\n\n**", 1)[0]
    rows = [r for r in table.splitlines() if r.startswith("| ") and "essay (start)" not in r]
    assert len(rows) == 5
    test = essays.iloc[180:].reset_index(drop=True)
    for r in rows:  # each row is a real essay with its real human score and the model's score
        cells = [c.strip() for c in r.strip("|").split("|")]
        start = cells[0].removesuffix(" ...")[:60]
        match = test[test["essay"].map(lambda e: " ".join(e.split()).startswith(start))]
        assert len(match) >= 1
        assert float(cells[2]) in set(match["score"].astype(float))
        assert float(cells[3]) in {s.predict(e, prompt=p) for e, p in zip(match["essay"], match["prompt"])}


def test_neural_card_names_truncation_and_lists_trainer_settings(essays, tiny_encoder, tmp_path):
    s = EssayScorer(backbone=str(tiny_encoder), max_steps=2, **TINY)
    s.finetune(essays.iloc[:64], text_column="essay", prompt_column="prompt", run_dir=tmp_path / "run",
               progress=False)
    folder = s.save_pretrained(tmp_path / "neural")
    card = (folder / "README.md").read_text()
    assert f"longer than {TINY['max_length']} tokens are truncated" in card
    table = card.split("**Hyperparameters**", 1)[1]
    assert "| lr |" in table and "| max_length |" in table and "| ngram_max |" not in table
    out = run_snippet(card, tmp_path)
    assert float(out.strip().splitlines()[-1]) == s.predict(
        "Computers help people learn because they can find information fast.", prompt="1")


def test_snippet_of_a_model_without_prompts_and_of_several_traits(essays, tmp_path):
    one = essays[essays["prompt"] == "2"].drop(columns=["prompt"]).copy()
    one["style"] = one["score"]
    s = EssayScorer(backbone="tfidf-ridge").finetune(one, text_column="essay", score_column=["score", "style"])
    folder = s.save_pretrained(tmp_path / "traits")
    card = (folder / "README.md").read_text()
    assert "prompt=" not in snippet(card)
    out = run_snippet(card, tmp_path)
    assert out.strip().startswith("{'score': ")


def test_bench_report_puts_the_5_fold_figures_on_the_card(ridge_folder, tmp_path):
    import json

    s, _ = ridge_folder
    fold = {"qwk_per_prompt": {"1": 0.8, "2": 0.7}, "qwk_avg": 0.75, "wall_s": 10.0}
    data = {"args": {"train_limit": None}, "meta": {"command": "benchmarks/essay_asap.py --backbones x",
                                                    "date": "2026-12-01", "cpus": 2, "load_before": [1.5, 1, 1],
                                                    "load_after": [2.0, 1, 1]},
            "results": {"x": {"folds": {"0": fold, "1": fold}, "qwk_per_prompt": {"1": 0.8, "2": 0.7},
                              "qwk_avg": 0.75, "wall_s": 20.0}}}
    (tmp_path / "r.json").write_text(json.dumps(data))
    (tmp_path / "empty.json").write_text(json.dumps({"results": {}}))
    s._bench_report(None, run_dir=tmp_path, five_fold=[str(tmp_path / "r.json"), str(tmp_path / "empty.json")])
    card = s.model_card(str(tmp_path / "m"))
    section = card.split("## ASAP-AES 5-fold leaderboard", 1)[1]
    assert "| x | folds 0, 1 only; 3 of 5 not run | 0.8 | 0.7 | 0.75 | 20 |" in section
    assert "`benchmarks/essay_asap.py --backbones x` (2026-12-01, 2 CPUs, load average 1.5 before and 2.0 after)" \
        in section
