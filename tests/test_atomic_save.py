"""Issue 17, "Nothing left behind, nothing lost": an overwriting save_pretrained killed (SIGKILL) at
each of its steps leaves a loadable model at the target, the old one or the new one; the next save
restores or removes what the killed one left beside the target.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edu_flash import EssayScorer
from edu_flash.core import io

_KILL_SCRIPT = r"""
import os, shutil, signal, sys
from pathlib import Path
import torch
from edu_flash import EssayScorer
src, target, point = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
m = EssayScorer.from_pretrained(src)
with torch.no_grad():
    m.model.head.bias += 1.0  # the new model differs from the old one
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
real_replace, real_rmtree, n = os.replace, shutil.rmtree, [0]
ours = lambda p: Path(p).name == target.name or Path(p).name.startswith("." + target.name + ".")
def replace(a, b):
    if ours(a) or ours(b):
        n[0] += 1
        if point == f"rename-{n[0]}":
            die()
    real_replace(a, b)
def rmtree(p, *a, **k):
    if ".old-" in Path(p).name:
        if point == "delete-old":
            die()
        if point == "half-deleted-old":
            os.remove(sorted(Path(p).iterdir())[0])
            die()
    real_rmtree(p, *a, **k)
os.replace, shutil.rmtree = replace, rmtree
real_weights = EssayScorer._save_weights
def weights(self, folder):
    out = real_weights(self, folder)
    if point == "writing":
        die()
    return out
EssayScorer._save_weights = weights
m.save_pretrained(target)
"""

# where the save is killed -> which model the target must hold afterwards
POINTS = {"writing": "old", "rename-1": "old", "rename-2": "old", "rename-3": "new", "delete-old": "new",
          "half-deleted-old": "new", "not-killed": "new"}


def _leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}."))


@pytest.fixture(scope="module")
def old_model(trained, tmp_path_factory):
    return trained.scorer.save_pretrained(tmp_path_factory.mktemp("old") / "essay")


@pytest.mark.parametrize("point", list(POINTS))
def test_a_save_killed_at_each_step_leaves_a_loadable_model(point, old_model, trained, tmp_path):
    import shutil

    target = tmp_path / "models" / "essay"
    shutil.copytree(old_model, target)
    script = tmp_path / "kill.py"
    script.write_text(_KILL_SCRIPT)
    r = subprocess.run([sys.executable, str(script), str(old_model), str(target), point],
                       capture_output=True, text=True, timeout=300)
    if point == "not-killed":
        assert r.returncode == 0, r.stderr[-2000:]
    else:
        assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
        assert _leftovers(target), "the kill left nothing behind: it did not hit the save"

    loaded = EssayScorer.from_pretrained(target)  # restores the folder when the kill hit mid-swap
    old_bias = trained.scorer.model.head.bias.detach()
    got = "old" if torch.equal(loaded.model.head.bias, old_bias) else \
        "new" if torch.allclose(loaded.model.head.bias, old_bias + 1.0) else "neither"
    assert got == POINTS[point]
    assert loaded.predict(trained.test.essay.iloc[0], prompt="1") is not None

    trained.scorer.save_pretrained(target)  # the next save cleans what the killed one left
    assert _leftovers(target) == []
    assert torch.equal(EssayScorer.from_pretrained(target).model.head.bias, old_bias)


def test_an_old_folder_left_by_an_older_release_is_found(old_model, trained, tmp_path):
    """Before this fix the swap left `.<name>.old-PID` and no target; from_pretrained said 'does not exist'."""
    import shutil

    dead = _dead_pid()
    shutil.copytree(old_model, tmp_path / f".essay.old-{dead}")
    loaded = EssayScorer.from_pretrained(tmp_path / "essay")
    assert torch.equal(loaded.model.head.bias, trained.scorer.model.head.bias.detach())
    assert _leftovers(tmp_path / "essay") == []


def test_a_live_writers_temp_folder_is_left_alone(old_model, trained, tmp_path):
    """Only leftovers of dead processes are cleaned: another live process may be saving right now."""
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        target = tmp_path / "essay"
        theirs = tmp_path / f".essay.tmp-{io._host()}-{live.pid}-abcd"
        stale = tmp_path / f".essay.tmp-{io._host()}-{_dead_pid()}-efgh"
        other_host = tmp_path / f".essay.tmp-00000000-{_dead_pid()}-ijkl"
        for p in (theirs, stale, other_host):
            p.mkdir()
        trained.scorer.save_pretrained(target)
        assert theirs.exists() and other_host.exists() and not stale.exists()
    finally:
        live.kill()
        live.wait()


def test_a_failed_swap_puts_the_old_folder_back(old_model, trained, tmp_path, monkeypatch):
    """An exception (not a kill) between the renames restores the old folder at once."""
    import shutil

    target = tmp_path / "essay"
    shutil.copytree(old_model, target)
    real, n = os.replace, [0]

    def failing(a, b):
        n[0] += 1
        if n[0] == 3:  # new -> target
            raise OSError("simulated rename failure")
        real(a, b)

    monkeypatch.setattr(io.os, "replace", failing)
    with pytest.raises(OSError, match="simulated"):
        trained.scorer.save_pretrained(target)
    monkeypatch.setattr(io.os, "replace", real)
    assert _leftovers(target) == []
    assert EssayScorer.from_pretrained(target).predict("An essay.", prompt="1") is not None


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_saved_folder_has_the_permissions_of_any_new_folder(trained, tmp_path):
    """Not the 0700 of a temp folder: a model saved for a team must be readable by the team."""
    mask = os.umask(0)
    os.umask(mask)
    folder = trained.scorer.save_pretrained(tmp_path / "shared-model")
    assert folder.stat().st_mode & 0o777 == 0o777 & ~mask
