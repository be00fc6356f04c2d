"""Issue 15: every python snippet of the README's "The trainer's tools" section runs as written
(trackers, callbacks, lr_find, export, tune, profiling), each in a fresh process and folder."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## The trainer's tools")
    section = text[start:text.index("\n## ", start + 10)]
    out, title = [], ""
    for part in re.split(r"\n(?=### )", section):
        title = part.splitlines()[0].lstrip("# ").strip() or title
        out += [(title, b) for b in re.findall(r"```python\n(.*?)```", part, re.S)]
    return out


@pytest.mark.parametrize("title, code", _blocks(), ids=[f"{t}-{i}" for i, (t, _) in enumerate(_blocks())])
def test_readme_snippet_runs(title, code, tmp_path):
    needs = {"Experiment trackers": "tensorboard", "Export for deployment (ONNX)": "onnxruntime",
             "Hyperparameter search": "optuna", "Learning-rate finder": "matplotlib"}
    if title in needs:
        pytest.importorskip(needs[title], reason=f"the {title} snippet needs {needs[title]}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env=env)
    assert out.returncode == 0, f"{title}:\n{out.stderr[-3000:]}"
