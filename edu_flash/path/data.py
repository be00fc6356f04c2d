"""Interaction logs -> per-student sequences of (item, correct), and the windows models see.

Long-format logs (student, item, skill(s), correct, time/order) come through core's `read_table`
like every task's data; the DKT three-lines-per-student text format (Piech et al. 2015) has its own
reader because it is not a table. Vocabularies (items, skills and the item -> skills Q-matrix) are
learned once at the first `finetune` and kept, as JSON, in the task state.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.data import Table, check_time, read_text, require_columns, show
from ..core.errors import DataError, UnknownLabelError

_SKILL_SPLIT = re.compile(r"[_;,|~]")


# ------------------------------------------------------------------------------ DKT text format
def is_dkt_file(path) -> bool:
    """Three lines per student: N / N skill ids / N 0-1 flags (trailing commas allowed)."""
    if not isinstance(path, (str, os.PathLike)) or not Path(path).is_file():
        return False
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as fh:
            head = [fh.readline().strip() for _ in range(3)]
    except OSError:  # unreadable: core's reader reports it with the file name
        return False
    return (len(head) == 3 and head[0].isdigit() and bool(re.fullmatch(r"[^,]+(,[^,]*)*", head[1]))
            and bool(re.fullmatch(r"[01](,[01])*,?", head[2])))


def read_dkt(path: str | os.PathLike) -> Table:
    """Read a DKT-format file into a long table (student, item, skill, correct, order).

    The format has no problem ids, so items are the skills themselves (one item per skill).
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", source=str(p))
    lines = read_text(p).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) % 3:
        raise DataError(f"the DKT format has 3 lines per student; the file has {len(lines)} lines", source=str(p))
    students, skills, flags = [], [], []
    for s in range(len(lines) // 3):
        ln = 3 * s + 1  # 1-based line of this student's count
        head, sk, fl = (x.strip().rstrip(",") for x in lines[3 * s:3 * s + 3])
        if not head.isdigit():
            raise DataError(f"expected a response count, found {head[:40]!r}", source=str(p), line=ln)
        n, sk, fl = int(head), sk.split(","), fl.split(",")
        if len(sk) != n or len(fl) != n:
            raise DataError(f"student {s + 1}: count says {n} responses but lines {ln + 1}-{ln + 2} have "
                            f"{len(sk)} skills and {len(fl)} flags", source=str(p), line=ln)
        bad = next((j for j, f in enumerate(fl) if f not in ("0", "1")), None)
        if bad is not None:
            raise DataError(f"correct flag {fl[bad]!r} (response {bad + 1}) is not 0 or 1", source=str(p),
                            column="correct", line=ln + 2)
        students += [s] * n
        skills += sk
        flags += fl
    df = pd.DataFrame({"student": students, "item": skills, "skill": skills, "correct": [int(f) for f in flags]})
    df["order"] = df.groupby("student").cumcount()
    return Table(df, str(p), header_lines=-1)


def as_table(data, name: str):
    """DKT files become Tables here; anything else is left for core's read_table."""
    return read_dkt(data) if is_dkt_file(data) else data


# ------------------------------------------------------------------------------ long-format logs
@dataclass
class Columns:
    student: str = "student"
    item: str = "item"
    skill: str | None = "skill"     # None or absent: each item is its own skill
    correct: str = "correct"
    time: str | None = "time"       # None or absent: the row order is the time order

    @classmethod
    def from_state(cls, state: dict, **given) -> "Columns":
        cols = {**state.get("columns", {}), **{k[:-7]: v for k, v in given.items() if v is not None}}
        return cls(**{k: v for k, v in cols.items() if k in cls.__dataclass_fields__})


@dataclass
class Logs:
    """Per-student sequences, in time order, with the counts the card reports."""

    students: list[str]
    items: list[Any]                # per student: np.int64 array of item indices (1-based; 0 = padding)
    correct: list[Any]              # per student: np.float32 array of 0/1
    source: str
    dropped_students: int = 0       # fewer than 2 interactions
    sorted_rows: int = 0            # rows found out of time order (and sorted)
    rows: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def responses(self) -> int:
        return int(sum(len(x) for x in self.items))


def _split_skills(v) -> list[str]:
    if isinstance(v, (list, tuple)) or type(v).__name__ == "ndarray":
        return [str(x) for x in v]
    s = str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    return [x.strip() for x in _SKILL_SPLIT.split(s) if x.strip()]


def _correct_values(table: Table, col: str):
    import numpy as np
    import pandas as pd

    raw = table.df[col]
    if raw.dtype == bool:
        return raw.to_numpy(np.float32)
    num = pd.to_numeric(raw.map(lambda v: {"true": 1, "false": 0}.get(v.lower(), v) if isinstance(v, str) else v),
                        errors="coerce")
    bad = ~num.isin([0, 1])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"correct must be 0/1 (or true/false), found {show(raw.iloc[i])}", column=col, **table.where(i))
    return num.to_numpy(np.float32)


def read_logs(table: Table, cols: Columns, *, vocab: dict | None = None, min_len: int = 2,
              unknown: str = "error") -> tuple[Logs, dict]:
    """Validate a table and turn it into sequences; learn the vocabulary unless one is given.

    unknown="error" raises UnknownLabelError on items/skills the vocabulary lacks; "skip" drops those
    rows (counted in logs.extra["unknown_skipped"]).
    """
    import numpy as np
    import pandas as pd

    skill_col = cols.skill if cols.skill and cols.skill in table.df.columns else None
    time_col = cols.time if cols.time and cols.time in table.df.columns else None
    require_columns(table, {"student": cols.student, "item": cols.item, "correct": cols.correct})
    df = table.df
    if not len(df):
        raise DataError("no interactions (the table is empty)", source=table.source)
    for c in [cols.student, cols.item] + ([skill_col] if skill_col else []):
        miss = df[c].isna().to_numpy()
        if miss.any():
            raise DataError("value is missing (NaN/None)", column=c, **table.where(int(np.flatnonzero(miss)[0])))
    correct = _correct_values(table, cols.correct)
    key = lambda s: s.map(label)
    student, item = key(df[cols.student]).to_numpy(), key(df[cols.item]).to_numpy()
    skills = df[skill_col].map(_split_skills).tolist() if skill_col else [[i] for i in item]
    tv = check_time(table, time_col) if time_col else np.arange(len(df))
    order = np.lexsort((np.arange(len(df)), tv, pd.factorize(student)[0]))  # stable by (student, time)
    pos = pd.Series(tv).groupby(pd.factorize(student)[0]).diff().to_numpy()
    sorted_rows = int(np.sum(pos < 0))
    if vocab is None:
        vocab = build_vocab(item, skills)
    item_ix = vocab_index(vocab, item, skills, table, cols, skill_col, unknown)
    student, item_ix, correct = student[order], item_ix[order], correct[order]
    cut = np.flatnonzero(student[1:] != student[:-1]) + 1
    names, seqs_i, seqs_c, dropped = [], [], [], 0
    for a, b in zip(np.r_[0, cut], np.r_[cut, len(student)]):
        keep = item_ix[a:b] > 0  # unknown="skip" leaves 0s
        if keep.sum() < min_len:
            dropped += 1
            continue
        names.append(student[a])
        seqs_i.append(item_ix[a:b][keep].astype(np.int64))
        seqs_c.append(correct[a:b][keep].astype(np.float32))
    if not names:
        raise DataError(f"no student has {min_len} or more interactions", source=table.source)
    logs = Logs(names, seqs_i, seqs_c, table.source, dropped, sorted_rows, len(df))
    logs.extra["unknown_skipped"] = int((item_ix == 0).sum())
    return logs, vocab


def label(v) -> str:
    """Ids as strings, so 7, "7" and 7.0 (a csv column with gaps) are the same item."""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def items_are_skills(vocab: dict) -> bool:
    return vocab["items"] == vocab["skills"] and all(q == [i + 1] for i, q in enumerate(vocab["q"]))


def build_vocab(items, skills) -> dict:
    """items/skills as strings; q[i] = skill indices (1-based) of item i+1 (union over its rows)."""
    item_names = list(dict.fromkeys(items))
    skill_names = list(dict.fromkeys(s for ss in skills for s in ss))
    s_ix = {s: j + 1 for j, s in enumerate(skill_names)}
    q: dict[str, set] = {i: set() for i in item_names}
    for i, ss in zip(items, skills):
        q[i].update(s_ix[s] for s in ss)
    return {"items": item_names, "skills": skill_names, "q": [sorted(q[i]) for i in item_names]}


def vocab_index(vocab, items, skills, table: Table, cols: Columns, skill_col, unknown: str):
    import numpy as np

    ix = {name: j + 1 for j, name in enumerate(vocab["items"])}
    out = np.fromiter((ix.get(i, 0) for i in items), dtype=np.int64, count=len(items))
    if unknown == "error" and (out == 0).any():
        r = int(np.flatnonzero(out == 0)[0])
        raise UnknownLabelError(f"item {items[r]!r} was never seen in training ({len(ix)} known items)",
                                column=cols.item, **table.where(r))
    if skill_col and unknown == "error":
        known = set(vocab["skills"])
        for r, ss in enumerate(skills):
            bad = [s for s in ss if s not in known]
            if bad:
                raise UnknownLabelError(f"skill {bad[0]!r} was never seen in training", column=skill_col,
                                        **table.where(r))
    return out


def index_of(vocab: dict, kind: str, names):
    """1-based indices of item or skill names, or UnknownLabelError naming the first unknown one."""
    import numpy as np

    ix = {n: j + 1 for j, n in enumerate(vocab[kind])}
    bad = [n for n in names if label(n) not in ix]
    if bad:
        raise UnknownLabelError(f"{kind[:-1]} {bad[0]!r} was never seen in training ({len(ix)} known {kind})")
    return np.array([ix[label(n)] for n in names], dtype=np.int64)


def q_matrix(vocab: dict):
    """[n_items + 1, max skills per item] long tensor of skill indices (0 = none; row 0 = padding)."""
    import torch

    k = max(len(q) for q in vocab["q"])
    m = torch.zeros(len(vocab["items"]) + 1, k, dtype=torch.long)
    for i, q in enumerate(vocab["q"]):
        m[i + 1, :len(q)] = torch.tensor(q, dtype=torch.long)
    return m


def histories(history, cols: Columns, vocab: dict) -> tuple[list[str], list]:
    """One student's history (list of (item, correct) pairs or records) or a table of several, as
    (student names, [(item indices, responses)])."""
    import numpy as np
    import pandas as pd

    from ..core.data import read_table

    if isinstance(history, (list, tuple)) and all(isinstance(x, (list, tuple)) and len(x) == 2 for x in history):
        history = pd.DataFrame([{cols.item: i, cols.correct: c} for i, c in history], columns=[cols.item, cols.correct])
    table = read_table(as_table(history, "history"), name="history")
    if len(table.df) == 0:
        return ["student"], [(np.zeros(0, np.int64), np.zeros(0, np.float32))]
    if cols.student not in table.df.columns:
        table.df = table.df.assign(**{cols.student: "student"})
    logs, _ = read_logs(table, cols, vocab=vocab, min_len=0)
    return logs.students, list(zip(logs.items, logs.correct))


# ------------------------------------------------------------------------------ windows
def train_windows(logs: Logs, window: int) -> list[tuple[Any, Any]]:
    """Non-overlapping chunks of `window`; a chunk needs 2 responses to score anything."""
    out = []
    for it, c in zip(logs.items, logs.correct):
        for s in range(0, len(it), window):
            if len(it) - s >= 2:
                out.append((it[s:s + window], c[s:s + window]))
    return out


def eval_windows(n: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(start, end, first scored) per window so that positions 1..n-1 are each scored exactly once.

    The first window scores all its positions but the first; each later window moves the end by
    `stride` and scores only the new part, which keeps at least `window - stride` responses of context.
    """
    if n < 2:
        return []
    stride = max(1, min(stride, window - 1))
    out, end, prev = [], min(window, n), 1
    while True:
        out.append((max(0, end - window), end, prev))
        if end >= n:
            return out
        prev, end = end, min(end + stride, n)


def split_students(logs: Logs, fraction: float, seed: int) -> tuple[Logs, Logs | None]:
    """Hold out a fraction of students (not of responses) for validation and early stopping."""
    import numpy as np

    if fraction <= 0 or len(logs.students) < 2:
        return logs, None
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(logs.students))
    n_val = max(1, int(round(fraction * len(idx))))
    pick = lambda ix: Logs([logs.students[i] for i in ix], [logs.items[i] for i in ix],
                           [logs.correct[i] for i in ix], logs.source)
    return pick(sorted(idx[n_val:])), pick(sorted(idx[:n_val]))
