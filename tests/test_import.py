"""Issue 2, item 1: `import edu_flash` is fast and imports no heavy engine."""
from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("transformers", "diffusers", "datasets", "accelerate")


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args, "-c", code], capture_output=True, text=True, timeout=120,
                          check=True)


def test_import_edu_flash_imports_no_engines_importtime():
    proc = _run("import edu_flash", "-X", "importtime")
    imported = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            imported.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "edu_flash" in imported, proc.stderr[-2000:]
    assert not imported & set(HEAVY), f"import edu_flash pulled in {sorted(imported & set(HEAVY))}"


def test_essay_scorer_import_and_construction_stay_light():
    code = (
        "import sys, json\n"
        "from edu_flash import EssayScorer\n"
        "import edu_flash\n"
        "s = EssayScorer(backbone='tfidf-ridge', max_epochs=2)\n"
        "b = EssayScorer.available_backbones()\n"
        "t = sorted(edu_flash.tasks())\n"
        f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules], 'backbones': b, 'tasks': t,\n"
        "                   'cls': EssayScorer.__module__}))\n"
    )
    out = json.loads(_run(code).stdout.strip().splitlines()[-1])
    assert out["heavy"] == [], f"from edu_flash import EssayScorer imported {out['heavy']}"
    assert "tfidf-ridge" in out["backbones"]
    assert "essay_scoring" in out["tasks"]
    assert out["cls"] == "edu_flash.essay.task"


def test_unknown_attribute_is_attribute_error():
    import edu_flash

    try:
        edu_flash.NoSuchTask  # noqa: B018
    except AttributeError as e:
        assert "NoSuchTask" in str(e)
    else:
        raise AssertionError("expected AttributeError")
