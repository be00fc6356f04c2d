"""Shared fixtures: a tiny BERT built from a config (no download), sample essays, and one trained
EssayScorer reused by the tests that only read from it.

Everything runs offline on CPU; every test runs inside its own temporary working directory so a
forgotten `run_dir=` can never write into the repository.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Small model settings shared by the neural tests: fast on 2 CPU cores.
TINY = dict(max_length=64, batch_size=16, lr=1e-3, precision="32")
PICKLE_SUFFIXES = {".bin", ".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".npy", ".npz"}


def reset_accelerate() -> None:
    """accelerate keeps process-wide singletons; reset them so tests do not depend on their order."""
    if "accelerate.state" in sys.modules:
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state()


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reset_accelerate()
    yield
    reset_accelerate()


@pytest.fixture(scope="session")
def essays():
    """240 synthetic essays over three prompts with ranges 1-6, 0-3 and 2-12, and an ELL subgroup."""
    from edu_flash.essay.sample import sample_essays

    return sample_essays(240, seed=0)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory, essays) -> Path:
    from edu_flash.core.tiny import make_tiny_encoder

    return make_tiny_encoder(tmp_path_factory.mktemp("tiny") / "bert", essays.essay, hidden=32, layers=2, heads=2,
                             vocab_size=1000, max_positions=128)


@dataclass
class Trained:
    scorer: object
    train: object
    val: object
    test: object
    run_dir: Path


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_encoder, essays) -> Trained:
    """One neural EssayScorer trained once (2 epochs, 160 essays, validation on 40), shared read-only."""
    from edu_flash import EssayScorer

    reset_accelerate()
    train, val, test = essays.iloc[:160], essays.iloc[160:200], essays.iloc[200:240]
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    s = EssayScorer(backbone=str(tiny_encoder), max_epochs=2, **TINY)
    out = s.finetune(train, val=val, text_column="essay", score_column="score", prompt_column="prompt",
                     subgroup_columns="group", run_dir=run_dir, progress=False)
    assert out is s
    reset_accelerate()
    return Trained(s, train.reset_index(drop=True), val.reset_index(drop=True), test.reset_index(drop=True), run_dir)


def quality(df):
    """Each sample essay's score as a share of its prompt's range (0 = lowest, 1 = highest): the
    sample data re-scored on other rubrics keeps its order of quality."""
    from edu_flash.essay.sample import SCORE_RANGES

    lo = df["prompt"].map(lambda p: SCORE_RANGES[p][0])
    hi = df["prompt"].map(lambda p: SCORE_RANGES[p][1])
    return (df["score"] - lo) / (hi - lo)


def has_pickle(folder: Path) -> list[str]:
    """Files that are (or look like) pickles: by suffix, or by the pickle protocol's magic bytes."""
    bad = []
    for p in Path(folder).rglob("*"):
        if not p.is_file():
            continue
        if p.suffix.lower() in PICKLE_SUFFIXES:
            bad.append(str(p))
            continue
        with open(p, "rb") as fh:
            head = fh.read(2)
        if len(head) == 2 and head[0] == 0x80 and head[1] in (2, 3, 4, 5):  # pickle PROTO opcode
            bad.append(str(p))
        elif head == b"PK":  # torch.save's zip container
            bad.append(str(p))
    return bad


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: one thread is as fast, and far faster when the cores are shared with other work."""
    import torch
    from threadpoolctl import threadpool_limits

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)


@pytest.fixture()
def unreadable(monkeypatch):
    """make(path): reading `path` (a file, or listing a folder) raises PermissionError, as chmod 000
    does for a normal user (tests may run as root, which chmod does not stop)."""
    import builtins
    import io

    blocked: set[str] = set()
    real_open, real_scandir, real_listdir = builtins.open, os.scandir, os.listdir

    def _blocked(p) -> bool:
        try:
            return os.path.abspath(os.fspath(p)) in blocked
        except TypeError:
            return False

    def guard(real):
        def call(p, *a, **k):
            if _blocked(p):
                raise PermissionError(13, "Permission denied", os.fspath(p))
            return real(p, *a, **k)
        return call

    monkeypatch.setattr(builtins, "open", guard(real_open))
    monkeypatch.setattr(io, "open", guard(real_open))
    monkeypatch.setattr(os, "scandir", guard(real_scandir))
    monkeypatch.setattr(os, "listdir", guard(real_listdir))
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: not _blocked(p))

    def make(path):
        blocked.add(os.path.abspath(os.fspath(path)))
        return path

    return make
