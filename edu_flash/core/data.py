"""One way in for data: a path (csv/tsv/jsonl/json/parquet), a pandas DataFrame, a `datasets`
Dataset/DatasetDict or a list of dicts all become a DataFrame plus the name to quote in errors.

Tasks then map their logical columns ("text", "score", ...) onto the user's names with
`require_columns`, and check values with the `check_*` helpers, which name file, column and row.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
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


_FALLBACK_ENCODINGS = ["utf-8", "cp1252", "latin-1"]


def _utf8_damage(path: Path) -> DataError | None:
    """A file that is UTF-8 except for a few bad bytes must not be re-read as cp1252 (every accent of
    the good lines would turn into mojibake): name the line of the first bad byte instead. None when
    the file is plainly another encoding (no UTF-8 multi-byte text at all)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError as e:
        pos = e.start
    if not any(ord(ch) > 127 and ch != "\ufffd" for ch in data.decode("utf-8", "replace")):
        return None
    return DataError(f"invalid UTF-8 (byte 0x{data[pos]:02x}) in a file that is otherwise UTF-8: re-save it as "
                     "UTF-8", source=str(path), line=data.count(b"\n", 0, pos) + 1)


def _read_text(path: Path, reader, encoding: str | None):
    """Try UTF-8, then cp1252/latin-1 (common for data exported from spreadsheets and old corpora)."""
    last = None
    for enc in [encoding] if encoding else _FALLBACK_ENCODINGS:
        try:
            return reader(enc)
        except UnicodeDecodeError as e:
            last = e
            damage = _utf8_damage(path) if enc == "utf-8" and not encoding else None
            if damage is not None:
                raise damage from None
    raise DataError(f"cannot decode the file ({last})", source=str(path))


def read_text(path: str | os.PathLike, encoding: str | None = None) -> str:
    """A text file's content with the same encoding rules as the tables (for formats that are not tables)."""
    p = Path(path)
    try:
        return _read_text(p, lambda enc: p.read_text(encoding=enc), encoding)
    except OSError as e:
        raise DataError(f"cannot read the file ({e.strerror or e})", source=str(p)) from None


@contextlib.contextmanager
def _no_csv_field_limit():
    """Python's csv module refuses fields over 131,072 characters; a long essay is a valid field."""
    old = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        yield
    finally:
        csv.field_size_limit(old)


def read_path(path: str | os.PathLike, *, encoding: str | None = None) -> Table:
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise DataError("file not found", source=str(p))
    if p.is_dir():
        raise DataError("is a folder, expected a csv/tsv/jsonl/json/parquet file", source=str(p))
    fmt = "file"
    try:
        fmt = _sniff_format(p)
        if p.stat().st_size == 0:
            raise DataError("the file is empty", source=str(p))
        if fmt == "parquet":
            table = Table(pd.read_parquet(p), str(p), header_lines=-1)
        elif fmt in ("csv", "tsv"):
            # TSV has no quoting convention: a stray '"' in an essay must not swallow the next rows.
            kw = dict(sep="\t", quoting=csv.QUOTE_NONE) if fmt == "tsv" else dict(sep=",")
            with _no_csv_field_limit():
                df = _read_text(p, lambda enc: pd.read_csv(p, encoding=enc, keep_default_na=True, **kw), encoding)
                _check_header(p, df, kw, encoding)
                if fmt == "tsv":
                    for c in _text_columns(df):
                        df[c] = df[c].map(_unquote)
                table = Table(df, str(p), header_lines=1, row_lines=_row_lines(p, df, fmt, encoding))
        else:
            table = _read_json(p, encoding, lines=fmt == "jsonl")
    except DataError:
        raise
    except OSError as e:  # unreadable (permissions, a vanished network drive, ...)
        raise DataError(f"cannot read the file ({e.strerror or e})", source=str(p)) from None
    except Exception as e:  # pandas/pyarrow parse errors carry their own line info
        raise DataError(f"cannot read as {fmt}: {e}", source=str(p)) from e
    if len(table.df) == 0:
        raise DataError("the file has no data rows" + (" (only a header)" if len(table.df.columns) else ""),
                        source=str(p))
    _check_columns(table)
    return table


def _read_json(p: Path, encoding: str | None, *, lines: bool) -> Table:
    """JSON Lines (one object per line) or one JSON array of objects; errors name the line."""
    import pandas as pd

    text = read_text(p, encoding)
    if not lines:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"not valid JSON ({e.msg}, column {e.colno})", source=str(p), line=e.lineno) from None
        if isinstance(obj, dict) and all(isinstance(v, list) for v in obj.values()):
            return Table(pd.DataFrame(obj), str(p), header_lines=-1)
        if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
            raise DataError("expected a JSON array of objects (records) or an object of columns", source=str(p))
        return Table(pd.DataFrame.from_records(obj), str(p), header_lines=-1)
    records, at = [], []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"not valid JSON ({e.msg}, column {e.colno})", source=str(p), line=n) from None
        if not isinstance(obj, dict):
            raise DataError(f"expected one JSON object per line, found {type(obj).__name__}", source=str(p), line=n)
        records.append(obj)
        at.append(n)
    return Table(pd.DataFrame.from_records(records), str(p), header_lines=0, row_lines=at)


def _check_header(p: Path, df, kw: dict, encoding: str | None) -> None:
    """pandas renames a repeated header name `x` to `x.1`, which would then be used as its own column."""
    import re

    cols = [str(c) for c in df.columns]
    if not any(re.fullmatch(r"(.+)\.\d+", c) and re.fullmatch(r"(.+)\.\d+", c).group(1) in cols for c in cols):
        return
    import pandas as pd

    header = _read_text(p, lambda enc: pd.read_csv(p, encoding=enc, header=None, nrows=1, dtype=str, **kw),
                        encoding).iloc[0].tolist()
    _refuse_duplicates(header, str(p))


def _refuse_duplicates(names, source: str) -> None:
    from collections import Counter

    dup = [n for n, k in Counter(str(n) for n in names).items() if k > 1]
    if dup:
        raise DataError(f"the column name {dup[0]!r} appears {list(map(str, names)).count(dup[0])} times in the "
                        "header; rename the columns so each name is used once", source=source, column=dup[0])


def _check_columns(table: Table) -> None:
    _refuse_duplicates(list(table.df.columns), table.source)


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
    for enc in [encoding] if encoding else _FALLBACK_ENCODINGS:
        try:
            with open(path, newline="", encoding=enc) as fh, _no_csv_field_limit():
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
    if isinstance(data, Table):
        return data
    if isinstance(data, (str, os.PathLike)):
        return read_path(data)
    table = _read_memory(data, name, split)
    _check_columns(table)
    return table


def _read_memory(data: Any, name: str, split: str) -> Table:
    import pandas as pd

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
                f"missing {role} column {col!r}; the columns are {have} (map yours with {role}_column=...)",
                source=table.source, column=col)


def show(v) -> str:
    """A value as the user wrote it, for error messages: numpy scalars as plain numbers, long text cut."""
    if hasattr(v, "item") and getattr(v, "ndim", None) == 0:
        v = v.item()
    text = repr(v)
    return text if len(text) <= 80 else text[:60] + f"... ({len(text)} characters)"


def check_rows(table: Table, what: str = "rows") -> None:
    """A DataError when a table has no rows (a header-only file, an empty list or DataFrame)."""
    if len(table.df) == 0:
        raise DataError(f"no {what}: the data is empty", source=table.source)


def check_text(table: Table, col: str) -> list[str]:
    """Non-empty strings, or a DataError naming the first bad row."""
    values = table.df[col].tolist()
    for i, v in enumerate(values):
        if not isinstance(v, str):
            what = "missing (NaN/None)" if v is None or v != v else f"not text ({type(v).__name__}: {show(v)})"
            raise DataError(f"value is {what}", column=col, **table.where(i))
        if not v.strip():
            raise DataError("text is empty", column=col, **table.where(i))
    return values


def check_numeric(table: Table, col: str, *, max_abs: float | None = None, what: str = "value") -> list[float]:
    """Finite numbers (numeric strings accepted), or a DataError naming the first bad row.

    max_abs: refuse magnitudes no real value of this column can have (a score of 1e300), instead of
    letting them stretch a range or a scale silently."""
    import math

    out = []
    for i, v in enumerate(table.df[col].tolist()):
        if isinstance(v, (bytes, bytearray)):
            raise DataError(f"{what} {show(v)} is bytes, not a number", column=col, **table.where(i))
        try:
            f = float(v)
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"{what} {show(v)} is not a number", column=col, **table.where(i)) from None
        if isinstance(v, bool) or not math.isfinite(f):
            raise DataError(f"{what} {show(v)} is not a finite number", column=col, **table.where(i))
        if max_abs is not None and abs(f) > max_abs:
            raise DataError(f"{what} {show(v)} is implausibly large (more than {max_abs:g} in size)", column=col,
                            **table.where(i))
        out.append(f)
    return out


def check_time(table: Table, col: str):
    """A time column -> sortable float64 values (numbers as given; dates as nanoseconds since 1970, UTC).

    The column is numbers or dates, decided by the majority, so the error names the row that is unlike
    the rest (row 41's "yesterday" in a column of numbers), a missing value, or an infinite one."""
    import numpy as np
    import pandas as pd

    raw = table.df[col]
    missing = raw.isna().to_numpy()
    if missing.any():
        raise DataError("time is missing", column=col, **table.where(int(np.flatnonzero(missing)[0])))
    if pd.api.types.is_datetime64_any_dtype(raw):
        return raw.astype("int64").to_numpy(np.float64)
    num = pd.to_numeric(raw.map(lambda v: v if not isinstance(v, (bytes, bool)) else None), errors="coerce")
    num = num.astype(float).to_numpy()
    is_num = ~np.isnan(num)
    if is_num.sum() * 2 >= len(num):  # a column of numbers
        bad = ~is_num | ~np.isfinite(num)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = ("is not a finite number" if is_num[i] else "is a date in a column of numbers"
                    if pd.notna(pd.to_datetime(raw.iloc[i], errors="coerce", format="mixed"))
                    else "is neither a number nor a date")
            raise DataError(f"time {show(raw.iloc[i])} {what}", column=col, **table.where(i))
        return num
    dates = pd.to_datetime(raw.where(~is_num).map(lambda v: None if isinstance(v, (bytes, bool)) else v),
                           errors="coerce", format="mixed", utc=True)
    bad = dates.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "is a number in a column of dates" if is_num[i] else "is neither a number nor a date"
        raise DataError(f"time {show(raw.iloc[i])} {what}", column=col, **table.where(i))
    return dates.astype("int64").to_numpy(np.float64)


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
