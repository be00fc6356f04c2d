"""Issue 15, item 8: a task in another installed package registers through the entry-point group
`edu_flash.tasks` and then appears in `edu-flash --help`, `compare` and recipes like a built-in one.

The package (tests/plugin_pkg, a toy regression task) is installed with pip into a temporary
folder, which the subprocesses below get on PYTHONPATH: a real install (a wheel built from its
pyproject, with its entry-point metadata), without touching the test environment itself."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = Path(__file__).resolve().parent / "plugin_pkg"


def _install(src: Path, target: Path) -> None:
    work = target.parent / f"src-{src.name}"
    shutil.copytree(src, work)  # the build writes build/ and *.egg-info beside the sources: not in the repo
    args = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(target)]
    if importlib.util.find_spec("setuptools") is None:  # pragma: no cover - then pip fetches it to build
        args.remove("--no-index")
    else:
        args.append("--no-build-isolation")
    proc = subprocess.run(args + [str(work)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The toy plugin installed, plus a broken one and one that reuses a built-in task's name."""
    root = tmp_path_factory.mktemp("plugins")
    target = root / "site"
    _install(PKG, target)
    bad = root / "bad_pkg"
    (bad / "edu_flash_bad").mkdir(parents=True)
    (bad / "edu_flash_bad" / "__init__.py").write_text("")
    (bad / "edu_flash_bad" / "broken.py").write_text("raise ImportError('this plugin is broken')\n")
    (bad / "edu_flash_bad" / "clash.py").write_text(textwrap.dedent("""
        from edu_flash.essay.task import EssayScorer

        class FakeEssays(EssayScorer):
            task_name = "essay_scoring"
        """))
    (bad / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "edu-flash-bad"
        version = "0.1.0"
        [project.entry-points."edu_flash.tasks"]
        broken = "edu_flash_bad.broken"
        clash = "edu_flash_bad.clash:FakeEssays"
        [tool.setuptools.packages.find]
        include = ["edu_flash_bad*"]
        """))
    _install(bad, root / "bad_site")
    return target, root / "bad_site"


def _run(site_dirs, *args, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, site_dirs), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, env=env, cwd=cwd)


def test_a_plugin_task_is_listed_by_the_cli(site):
    out = _run([site[0]], "-m", "edu_flash", "--help")
    assert out.returncode == 0, out.stderr
    assert "ToyRegressor (toy_regression): mlp, ridge" in out.stdout
    assert "EssayScorer (essay_scoring)" in out.stdout
    # without the package installed, it is not there
    assert "ToyRegressor" not in _run([], "-m", "edu_flash", "--help").stdout


def test_compare_and_load_a_plugin_task(site, tmp_path):
    out = _run([site[0]], "-m", "edu_flash", "compare", "toy_regression", "--builtin", "--backbones", "mlp", "ridge",
               "--run-dir", str(tmp_path / "runs"), "--save-dir", str(tmp_path / "models"), "--csv",
               str(tmp_path / "board.csv"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    import pandas as pd

    board = pd.read_csv(tmp_path / "board.csv")
    assert sorted(board["backbone"]) == ["mlp", "ridge"] and (board["rmse"] < 0.5).all()
    code = ("import edu_flash; from edu_flash import Task\n"
            f"m = Task.from_pretrained({str(tmp_path / 'models' / 'ridge')!r})\n"
            "print(type(m).__name__, round(m.predict([{'x1': 1.0, 'x2': 0.0, 'x3': 0.0}])[0], 1),"
            " edu_flash.ToyRegressor.task_name)")
    loaded = _run([site[0]], "-c", code)
    assert loaded.stdout.split() == ["ToyRegressor", "2.0", "toy_regression"], loaded.stderr[-2000:]


def test_a_recipe_runs_a_plugin_task(site, tmp_path):
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(textwrap.dedent("""
        task: toy_regression
        data: {source: builtin, n: 200}
        backbones: {ridge: {}, mlp: {max_epochs: 3}}
        metric: rmse
        """))
    out = _run([site[0]], "-m", "edu_flash", "bench", str(recipe), "--out", str(tmp_path / "cards"), "--run-root",
               str(tmp_path / "runs"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    card = (tmp_path / "cards" / "toy_regression" / "README.md").read_text()
    assert "Toy regression" in card and "Backbone comparison" in card


def test_a_broken_or_clashing_plugin_is_skipped_with_a_warning(site):
    code = ("import edu_flash\nfrom edu_flash.core import registry\n"
            "t = edu_flash.tasks()\n"
            "print(sorted(t), t['essay_scoring'].__name__, sorted(registry.plugins()))")
    out = _run([site[0], site[1]], "-c", code)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "'toy_regression'" in out.stdout and "EssayScorer" in out.stdout  # the built-in task is kept
    assert "['broken', 'clash', 'toy_regression']" in out.stdout
    assert "task plugin 'broken'" in out.stderr and "this plugin is broken" in out.stderr
    assert "uses the name 'essay_scoring' of a built-in task" in out.stderr
    assert _run([site[0], site[1]], "-m", "edu_flash", "--help").returncode == 0
