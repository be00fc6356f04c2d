"""The examples run as a user runs them (a subprocess, from the repository root), on small data."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path, script: str, *args: str) -> str:
    r = subprocess.run([sys.executable, str(REPO / "examples" / script), *args], cwd=tmp_path, capture_output=True,
                       text=True, timeout=600, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_every_task_has_an_example():
    from edu_flash.core.registry import discover

    names = {p.stem for p in (REPO / "examples").glob("*.py")}
    assert {cls.task_name for cls in discover().values()} <= names
    assert {"compare_backbones", "distributed_finetune"} <= names


def test_dropout_example(tmp_path):
    out = _run(tmp_path, "dropout_prediction.py", "--n", "240", "--out", "m")
    assert "ROC-AUC" in out and (tmp_path / "m" / "README.md").exists()


@pytest.mark.parametrize("task, word", [("DropoutPredictor", "logreg"), ("PathRecommender", "pfa")])
def test_compare_backbones_example(tmp_path, task, word):
    args = ["--task", task, "--n", "60" if task == "PathRecommender" else "240", "--out", "c"]
    if task == "PathRecommender":
        args += ["--backbones", "pfa"]
    out = _run(tmp_path, "compare_backbones.py", *args)
    assert word in out and (tmp_path / "c" / "leaderboard.png").exists()
