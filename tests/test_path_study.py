"""Issue 13: the published card carries the policy table and real recommend / plan_path outputs
(`edu-flash bench` with a recipe's `report:`), from three groups of students that never overlap."""
from __future__ import annotations

import textwrap

import pytest

from edu_flash import ConfigError
from edu_flash.path import PathRecommender
from edu_flash.path.sample import sample_logs
from edu_flash.path.study import split_students
from edu_flash.recipes import bench, load_recipe

pytestmark = pytest.mark.usefixtures("one_thread")

RECIPE = """\
task: path_recommendation
data: {source: builtin, n: 160}
backbones: [pfa]
metric: auc
report: {simulators: [pfa, bkt], max_students: 20, steps: 3, samples: 2, history_len: 8}
"""


def test_bench_report_puts_the_policy_table_and_sample_outputs_on_the_card(tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE)
    bench(load_recipe(tmp_path / "r.yaml"), out=tmp_path / "cards", run_root=tmp_path / "runs")
    card = (tmp_path / "cards" / "path_recommendation" / "README.md").read_text()
    for text in ["simulated practice paths", "recommender minus this [95% CI]", "round-robin", "weakest-first",
                 "oracle", "share of the oracle's gain over random", "Sample recommendations and paths",
                 "drawn at random", "plan_path(history, goal, steps=6)", "expected goal mastery",
                 "next-response AUC on the path students", "Does the recommender beat the simple rules?",
                 "share of pfa's oracle", "oracle of bkt", "all exact models, minimax regret",
                 "pfa trained on 16 simulator students of path_recommendation"]:
        assert text in card, text
    assert "**The bar is not met.**" in card or "**The bar is met**" in card
    assert "trained on an in-memory" not in card          # the simulators' training data is named
    assert card.count("**Student ") == 2


def test_a_report_the_task_does_not_take_is_refused_before_training(tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE.replace("steps: 3", "stepz: 3"))
    with pytest.raises(ConfigError, match="stepz"):
        load_recipe(tmp_path / "r.yaml")
    (tmp_path / "d.yaml").write_text(textwrap.dedent("""\
        task: dropout_prediction
        data: {source: builtin, n: 100}
        backbones: [logreg]
        report: {steps: 3}
        """))
    with pytest.raises(ConfigError, match="no bench report"):
        load_recipe(tmp_path / "d.yaml")


def test_simulator_and_path_students_are_disjoint():
    df = sample_logs(50, seed=4)
    a, b = split_students(PathRecommender("pfa"), df, 0.5, seed=0)
    assert set(a.student).isdisjoint(b.student) and len(a) + len(b) == len(df)
    assert a.student.nunique() == 25
