"""Task recipes: checked before anything runs, split as written, and `bench` publishes a card whose
figures are the run's."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from edu_flash import ConfigError, DataError
from edu_flash.core.cardcheck import check_card
from edu_flash.core.registry import discover
from edu_flash.recipes import bench, load_recipe, load_splits

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "tasks").glob("*.yaml"))


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture()
def essay_root(tmp_path, essays):
    """A data root laid out like ASAP: one TSV with ids, and id lists per split."""
    root = tmp_path / "data"
    (root / "folds").mkdir(parents=True)
    df = essays.assign(essay_id=range(1000, 1000 + len(essays)))
    df.to_csv(root / "essays.csv", index=False)
    ids = df.essay_id.astype(str).tolist()
    (root / "folds" / "train.txt").write_text("\n".join(ids[:150]) + "\n")
    (root / "folds" / "dev.txt").write_text("\n".join(ids[150:180]) + "\n")
    (root / "folds" / "test.txt").write_text("\n".join(ids[180:]) + "\n")
    return root


ESSAY_RECIPE = """\
task: essay_scoring
title: essays on a laptop
data:
  name: sample essays
  citation: "edu-flash sample essays"
  source: essays.csv
  split:
    ids: {column: essay_id, train: folds/train.txt, val: folds/dev.txt, test: folds/test.txt}
  finetune_args: {text_column: essay, score_column: score, prompt_column: prompt}
backbones:
  tfidf-ridge: {ngram_max: 1}
metric: qwk_avg
reference_results:
  - {system: a published system, metric: qwk_avg, value: 0.7, citation: "Someone (2020)"}
"""


def test_every_shipped_recipe_is_valid_and_every_task_has_one():
    assert RECIPES, "tasks/*.yaml missing"
    tasks = {load_recipe(p).task for p in RECIPES}
    assert tasks == set(discover()), "each registered task needs tasks/<task>.yaml"
    for p in RECIPES:
        r = load_recipe(p)
        assert p.stem == r.task
        q = r.quick_version()  # the smoke-test variant must be valid too
        cls = r.task_class
        for b, hp in q.backbones.items():
            cls(b, **{**q.hparams, **hp})
        assert r.metric in cls.card_text.headline_metrics, (p.name, r.metric)


def test_id_split_and_bench_publish_the_runs_figures(essay_root, tmp_path):
    recipe = load_recipe(_write(tmp_path / "essay_scoring.yaml", ESSAY_RECIPE))
    s = load_splits(recipe, essay_root)
    assert (len(s.train), len(s.val), len(s.test)) == (150, 30, 60)
    out = tmp_path / "cards"
    board = bench(recipe, data_root=essay_root, out=out, run_root=tmp_path / "runs")
    folder = out / "essay_scoring"
    assert {p.name for p in folder.iterdir()} >= {"README.md", "leaderboard.csv", "leaderboard.md", "leaderboard.png"}
    info = check_card(folder / "README.md")
    assert "qwk_avg" in info["metrics"]
    csv = pd.read_csv(folder / "leaderboard.csv")
    assert csv.qwk_avg.iloc[0] == pytest.approx(board.qwk_avg.iloc[0])
    text = (folder / "README.md").read_text()
    assert f"{board.qwk_avg.iloc[0]:.4g}" in text and "Someone (2020)" in text and "Backbone comparison" in text
    from huggingface_hub import ModelCard

    res = {r.metric_type: r.metric_value for r in ModelCard.load(folder / "README.md").data.eval_results}
    assert res["qwk_avg"] == pytest.approx(board.qwk_avg.iloc[0], abs=1e-6)
    # the published folder replaces the old one atomically: nothing half-written stays beside it
    bench(recipe, data_root=essay_root, out=out, run_root=tmp_path / "runs")
    assert sorted(p.name for p in out.iterdir()) == ["essay_scoring"]


def test_fraction_split_keeps_groups_apart_and_builtin_data(tmp_path):
    from edu_flash.path.sample import sample_logs

    root = tmp_path / "d"
    root.mkdir()
    sample_logs(60, seed=0).to_csv(root / "logs.csv", index=False)
    recipe = load_recipe(_write(tmp_path / "r.yaml", """\
        task: path_recommendation
        data:
          source: logs.csv
          split: {test_fraction: 0.25, val_fraction: 0.2, group: student, seed: 3}
          limit: {test: 400}
        backbones: [pfa]
        """))
    s = load_splits(recipe, root)
    sets = [set(x.student) for x in (s.train, s.val, s.test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert len(s.test) == 400 and sum(map(len, sets)) == 60
    built = load_recipe(_write(tmp_path / "b.yaml", """\
        task: dropout_prediction
        data: {source: builtin, n: 200}
        backbones: [logreg]
        """))
    b = load_splits(built, root)
    assert len(b.train) + len(b.val) + len(b.test) == 200


@pytest.mark.parametrize("body, error, words", [
    ("task: essay_scoring\ndata: {source: x.tsv, colums: {}}\nbackbones: [tfidf-ridge]\n", ConfigError, "colums"),
    ("task: essay_scorer\ndata: {source: x.tsv}\nbackbones: [tfidf-ridge]\n", ConfigError, "unknown task"),
    ("task: essay_scoring\ndata: {source: x.tsv}\nbackbones: [no-such-net]\n", ConfigError, "no-such-net"),
    ("task: essay_scoring\ndata: {source: x.tsv}\nbackbones: {tfidf-ridge: {lr: fast}}\n", ConfigError, "lr"),
    ("task: essay_scoring\nbackbones: [tfidf-ridge]\n", ConfigError, "data"),
    ("task: essay_scoring\ndata: {source: x.tsv}\nbackbones: [tfidf-ridge]\n"
     "reference_results: [{system: s, metric: qwk, value: 1}]\n", ConfigError, "citation"),
])
def test_bad_recipes_are_refused_with_the_reason(tmp_path, body, error, words):
    with pytest.raises(error, match=words) as e:
        load_recipe(_write(tmp_path / "bad.yaml", body))
    assert "bad.yaml" in str(e.value)


def test_missing_data_and_ids_are_named_before_training(essay_root, tmp_path):
    recipe = load_recipe(_write(tmp_path / "essay_scoring.yaml", ESSAY_RECIPE))
    with pytest.raises(DataError, match="essays.csv"):
        bench(recipe, data_root=tmp_path / "nowhere", out=tmp_path / "cards", run_root=tmp_path / "runs")
    (essay_root / "folds" / "test.txt").write_text("1\n2\n")
    with pytest.raises(DataError, match="test.txt"):
        bench(recipe, data_root=essay_root, out=tmp_path / "cards", run_root=tmp_path / "runs")
    assert not (tmp_path / "cards").exists() and not (tmp_path / "runs").exists()


def test_published_cards_cover_every_recipe_and_match_their_leaderboards():
    """model_cards/<task>/ as committed: a valid card per recipe whose model-index figures are the
    best leaderboard row's (the card and the leaderboard come from the same run)."""
    import math

    from huggingface_hub import ModelCard

    cards = {p.parent.name: p for p in (REPO / "model_cards").glob("*/README.md")}
    assert set(cards) == {load_recipe(p).task for p in RECIPES}
    for task, path in cards.items():
        check_card(path)
        recipe = load_recipe(REPO / "tasks" / f"{task}.yaml")
        best = pd.read_csv(path.parent / "leaderboard.csv").iloc[0]
        results = {r.metric_type: r.metric_value for r in ModelCard.load(path).data.eval_results}
        assert math.isclose(results[recipe.metric], best[recipe.metric], abs_tol=1e-6), task
        assert "Backbone comparison" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(discover()))
def test_every_task_has_builtin_data(name):
    """The Splits contract the demo, examples, compare --builtin and `source: builtin` rely on."""
    from edu_flash.core.task import Splits

    cls = discover()[name]
    s = cls.builtin_data(40, seed=1)
    assert isinstance(s, Splits) and s.train is not None and s.test is not None and s.example is not None
    assert s.backbone is None or s.backbone in cls.backbones
    cls(s.backbone, **s.hparams)  # the demo settings are valid hyperparameters
    again = cls.builtin_data(40, seed=1)
    assert repr(again.example) == repr(s.example)  # deterministic by seed


def test_card_sizes_name_a_split_the_task_reads_from_its_file(tmp_path):
    """A split given as a file (a DKT file, GSM8K's jsonl) is named on the card, not 'None'."""
    import pandas as pd

    from edu_flash.recipes import _size

    assert _size(tmp_path / "builder_train.csv") == "builder_train.csv"
    assert _size(str(tmp_path / "train.jsonl")) == "train.jsonl"
    assert _size(pd.DataFrame({"a": [1, 2, 3]})) == 3


def test_builtin_data_is_named_on_the_card():
    from edu_flash import PathRecommender

    s = PathRecommender.builtin_data(40, seed=3)
    assert s.finetune_args["dataset_name"] == "edu-flash built-in path_recommendation data (seed 3)"
    task = PathRecommender("pfa").finetune(s.train, s.val, **s.finetune_args)
    assert "edu-flash built-in path_recommendation data (seed 3)" in task.model_card()
