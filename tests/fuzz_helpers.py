"""Shared by the fuzz tests (tests/test_fuzz*.py): malformed files built in the test's own folder
and the check that an error names file / column / row with nothing written."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from edu_flash import EduFlashError, NotFittedError


BINARY = bytes(range(256)) * 8 + b"\x00\xff\xfe" * 100


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")}


def expect_error(call, root: Path, *, source=None, column=None, row=None, line=None, word=None):
    """call() must raise a library error naming what is given, and write nothing under root."""
    before = _files(root)
    with pytest.raises(EduFlashError) as ei:
        call()
    e, msg = ei.value, str(ei.value)
    assert not isinstance(e, NotFittedError), msg
    assert "Traceback" not in msg and len(msg) < 2000, msg
    if source is not None:
        assert str(source) in msg, f"file {source} not named: {msg}"
    if column is not None:
        assert f"column {column!r}" in msg or f"column {column!r}" in msg.replace('"', "'") or repr(column) in msg, \
            f"column {column!r} not named: {msg}"
    if row is not None:
        assert f"row {row}" in msg, f"row {row} not named: {msg}"
    if line is not None:
        assert f"line {line}" in msg, f"line {line} not named: {msg}"
    if word is not None:
        assert word in msg, f"{word!r} not in: {msg}"
    assert _files(root) == before, "something was written before the error"
    return e


def _csv(root: Path, name: str, df: pd.DataFrame) -> Path:
    p = root / "in" / name
    p.parent.mkdir(exist_ok=True)
    df.to_csv(p, index=False)
    return p


def _raw(root: Path, name: str, content: bytes | str) -> Path:
    p = root / "in" / name
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


def _with(df: pd.DataFrame, col: str, i: int, value) -> pd.DataFrame:
    df = df.copy()
    df[col] = df[col].astype(object)
    df.at[i, col] = value
    return df
