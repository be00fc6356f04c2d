"""One way in for data: a path (csv/tsv/jsonl/json/parquet), a pandas DataFrame, a `datasets`
Dataset/DatasetDict or a list of dicts all become a DataFrame plus the name to quote in errors.

Tasks then map their logical columns ("text", "score", ...) onto the user's names with
`require_columns`, and check values with the `check_*` helpers, which name file, column and row.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .errors import DataError, MissingColumnError

_READERS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
            ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class Table:
    """A DataFrame that remembers where it came from, so errors can point at the right line."""

    df: Any
    source: str
    header_lines: int = 0  # lines before the first data row in a text file (csv header = 1); -1: no lines
    row_lines: list[int] | None = None  # first line of each row, when quoted fields span several lines

    def where(self, i: int) -> dict:
        if self.row_lines is not None:
            return {"source": self.source, "row": i + 1, "line": self.row_lines[i]}
        line = i + 1 + self.header_lines if self.header_lines >= 0 else None
        return {"source": self.source, "row": i + 1, "line": line}

    def __len__(self) -> int:
        return len(self.df)


def _sniff_format(path: Path) -> str:
    fmt = _READERS.get(path.suffix.lower())
    if fmt:
        return fmt
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head[:4] == b"PAR1":
        return "parquet"
    text = head.decode("utf-8", "replace").lstrip()
    if text.startswith("{"):
        return "jsonl"
    if text.startswith("["):
        return "json"
    first = text.splitlines()[0] if text else ""
    return "tsv" if first.count("\t") > first.count(",") else "csv"


def _read_text(path: Path, reader, encoding: str | None):
    """Try UTF-8, then cp1252/latin-1 (common for data exported from spreadsheets and old corpora)."""
    encodings = [encoding] if encoding else ["utf-8", "cp1252", "latin-1"]
    last = None
    for enc in encodings:
        try:
            return reader(enc)
        except UnicodeDecodeError as e:
            last = e
    raise DataError(f"cannot decode the file ({last})", source=str(path))


def read_path(path: str | os.PathLike, *, encoding: str | None = None) -> Table:
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise DataError("file not found", source=str(p))
    if p.is_dir():
        raise DataError("is a folder, expected a csv/tsv/jsonl/json/parquet file", source=str(p))
    fmt = _sniff_format(p)
    try:
        if fmt == "parquet":
            return Table(pd.read_parquet(p), str(p), header_lines=-1)
        if fmt in ("csv", "tsv"):
            # TSV has no quoting convention: a stray '"' in an essay must not swallow the next rows.
            kw = dict(sep="\t", quoting=csv.QUOTE_NONE) if fmt == "tsv" else dict(sep=",")
            df = _read_text(p, lambda enc: pd.read_csv(p, encoding=enc, keep_default_na=True, **kw), encoding)
            if fmt == "tsv":
                for c in _text_columns(df):
                    df[c] = df[c].map(_unquote)
            return Table(df, str(p), header_lines=1, row_lines=_row_lines(p, df, fmt, encoding))
        if fmt == "jsonl":
            return Table(_read_text(p, lambda enc: pd.read_json(p, lines=True, encoding=enc, dtype=False),
                                    encoding), str(p), header_lines=0)
        return Table(_read_text(p, lambda enc: pd.read_json(p, encoding=enc, dtype=False), encoding),
                     str(p), header_lines=-1)
    except DataError:
        raise
    except Exception as e:  # pandas/pyarrow parse errors carry their own line info
        raise DataError(f"cannot read as {fmt}: {e}", source=str(p)) from e


def _unquote(v):
    """A TSV field written by a csv library as "...""..." (quoted, with doubled quotes inside)."""
    if isinstance(v, str) and len(v) > 1 and v[0] == v[-1] == '"':
        return v[1:-1].replace('""', '"')
    return v


def _text_columns(df) -> list:
    """Columns holding strings (object dtype in pandas 2, the str dtype in pandas 3)."""
    import pandas as pd

    return [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c].dtype)]


def _row_lines(path: Path, df, fmt: str, encoding: str | None) -> list[int] | None:
    """Line numbers per row, computed only when some quoted csv field holds a newline."""
    if fmt != "csv" or not any(df[c].astype(str).str.contains("\n", regex=False).any()
                               for c in _text_columns(df)):
        return None
    for enc in [encoding] if encoding else ["utf-8", "cp1252", "latin-1"]:
        try:
            with open(path, newline="", encoding=enc) as fh:
                reader, starts, prev = csv.reader(fh), [], 0
                for k, _ in enumerate(reader):
                    if k:  # skip the header
                        starts.append(prev + 1)
                    prev = reader.line_num
            return starts if len(starts) == len(df) else None
        except UnicodeDecodeError:
            continue
    return None


def read_table(data: Any, *, name: str = "data", split: str = "train") -> Table:
    """Any supported input -> Table. `split` picks the part of a DatasetDict."""
    import pandas as pd

    if isinstance(data, Table):
        return data
    if isinstance(data, (str, os.PathLike)):
        return read_path(data)
    if isinstance(data, pd.DataFrame):
        return Table(data.reset_index(drop=True), f"{name} (DataFrame)", header_lines=-1)
    mod = type(data).__module__
    if mod.startswith("datasets"):
        if hasattr(data, "keys") and not hasattr(data, "to_pandas"):  # DatasetDict
            if split not in data:
                raise DataError(f"DatasetDict has splits {list(data.keys())}, need {split!r}", source=name)
            return Table(data[split].to_pandas(), f"{name} (Dataset split {split!r})", header_lines=-1)
        return Table(data.to_pandas(), f"{name} (Dataset)", header_lines=-1)
    if isinstance(data, dict):
        return Table(pd.DataFrame(data), f"{name} (dict of columns)", header_lines=-1)
    if isinstance(data, Iterable):
        rows = list(data)
        if rows and not all(isinstance(r, dict) for r in rows):
            bad = next(i for i, r in enumerate(rows) if not isinstance(r, dict))
            raise DataError(f"expected a list of dicts (records), item is {type(rows[bad]).__name__}",
                            source=f"{name} (list)", row=bad + 1)
        return Table(pd.DataFrame(rows), f"{name} (list of records)", header_lines=-1)
    raise DataError(f"unsupported data type {type(data).__name__}: pass a file path, a pandas DataFrame, "
                    "a datasets.Dataset/DatasetDict or a list of dicts", source=name)


def require_columns(table: Table, columns: dict[str, str | None]) -> None:
    """columns: role -> user's column name (None = optional role not used)."""
    have = [str(c) for c in table.df.columns]
    for role, col in columns.items():
        if col is not None and col not in table.df.columns:
            raise MissingColumnError(
                f"{table.source}: missing {role} column {col!r}; the columns are {have} "
                f"(map yours with {role}_column=...)", source=table.source, column=col)


def check_text(table: Table, col: str) -> list[str]:
    """Non-empty strings, or a DataError naming the first bad row."""
    values = table.df[col].tolist()
    for i, v in enumerate(values):
        if not isinstance(v, str):
            what = "missing (NaN/None)" if v is None or v != v else f"not text ({type(v).__name__}: {v!r})"
            raise DataError(f"value is {what}", column=col, **table.where(i))
        if not v.strip():
            raise DataError("text is empty", column=col, **table.where(i))
    return values


def check_numeric(table: Table, col: str) -> list[float]:
    """Finite numbers (numeric strings accepted), or a DataError naming the first bad row."""
    import math

    out = []
    for i, v in enumerate(table.df[col].tolist()):
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise DataError(f"value {v!r} is not a number", column=col, **table.where(i)) from None
        if isinstance(v, bool) or not math.isfinite(f):
            raise DataError(f"value {v!r} is not a finite number", column=col, **table.where(i))
        out.append(f)
    return out


def check_labels(table: Table, col: str) -> list[str]:
    """Category ids as strings (so 1, "1" and 1.0 from a csv are the same prompt)."""
    out = []
    for i, v in enumerate(table.df[col].tolist()):
        if v is None or (isinstance(v, float) and v != v):
            raise DataError("value is missing (NaN/None)", column=col, **table.where(i))
        out.append(label_str(v))
    return out


def label_str(v) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)
