"""`finetune` arguments handed to worker processes as files, never as pickles.

The caller of `finetune(devices=N)` writes what the workers need into a folder; each worker reads
it back. Tables go to Parquet (Arrow), a `datasets.Dataset`/`DatasetDict` to its own Arrow format
(`save_to_disk`, memory-mapped again by `load_from_disk`), everything else to tagged JSON. What a
worker gets back is the same kind of object the caller passed (a DataFrame stays a DataFrame, a
list of records a list of records, a core.data.Table keeps its source and line numbers), so the
worker's `read_table` and data adapter see exactly what the caller's saw — same values, same
column types, same names in error messages and in the card.

Values pandas keeps as Python objects (mixed types, bytes, PIL images, numpy arrays, dates) are
written cell by cell as tagged JSON inside the Parquet file; a value with no faithful, code-free
encoding is refused with a `ConfigError` naming the argument, column and row.
"""
from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from .errors import ConfigError

_TAG = "$"
_META_KEY = b"edu_flash"


class Unsupported(TypeError):
    """A value with no pickle-free encoding; `where` says where it was found."""


# ------------------------------------------------------------------------------------------ scalars
def _encode(v, where: str):
    """One value -> JSON-able (recursively); tables are not allowed inside cells."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else {_TAG: "float", "v": repr(v)}
    if isinstance(v, (list, tuple)):
        items = [_encode(x, where) for x in v]
        return items if isinstance(v, list) else {_TAG: "tuple", "items": items}
    if isinstance(v, dict):
        return {_TAG: "dict", "items": [[_encode(k, where), _encode(x, where)] for k, x in v.items()]}
    if isinstance(v, (bytes, bytearray)):
        return {_TAG: "bytes", "v": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, os.PathLike):
        return {_TAG: "path", "v": os.fspath(v)}
    return _encode_library_value(v, where)


def _encode_library_value(v, where: str):
    """numpy, pandas, PIL and datetime values (imported only if the value is one of theirs)."""
    mod = type(v).__module__.split(".")[0]
    if mod == "numpy":
        import numpy as np

        if isinstance(v, np.ndarray):
            if v.dtype.hasobject:
                raise Unsupported(f"{where}: a numpy array of Python objects")
            buf = io.BytesIO()
            np.save(buf, v, allow_pickle=False)
            return {_TAG: "ndarray", "v": base64.b64encode(buf.getvalue()).decode("ascii")}
        if isinstance(v, (np.datetime64, np.timedelta64)):
            return {_TAG: type(v).__name__, "v": str(v)}
        if isinstance(v, np.generic):
            return _encode(v.item(), where)
    if mod == "pandas":
        import pandas as pd

        if v is pd.NaT:
            return {_TAG: "nat"}
        if v is pd.NA:
            return {_TAG: "na"}
        if isinstance(v, pd.Timestamp):
            return {_TAG: "timestamp", "v": v.isoformat()}
        if isinstance(v, pd.Timedelta):
            return {_TAG: "pd_timedelta", "v": int(v.value)}
    if mod == "PIL":
        from PIL import Image

        if isinstance(v, Image.Image):
            return {_TAG: "image", "v": base64.b64encode(_image_bytes(v)).decode("ascii")}
    if isinstance(v, dt.datetime):
        return {_TAG: "datetime", "v": v.isoformat()}
    if isinstance(v, dt.date):
        return {_TAG: "date", "v": v.isoformat()}
    if isinstance(v, dt.time):
        return {_TAG: "time", "v": v.isoformat()}
    if isinstance(v, dt.timedelta):
        return {_TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]}
    if isinstance(v, decimal.Decimal):
        return {_TAG: "decimal", "v": str(v)}
    raise Unsupported(f"{where}: a {type(v).__module__}.{type(v).__qualname__}")


def _image_bytes(img) -> bytes:
    """Lossless: PNG where the mode allows it, else TIFF (float and CMYK images)."""
    buf = io.BytesIO()
    try:
        img.save(buf, format="PNG")
    except (OSError, ValueError, KeyError):
        buf = io.BytesIO()
        img.save(buf, format="TIFF")
    return buf.getvalue()


def _decode(v, folder: Path | None = None):
    """Tagged JSON -> value; table kinds read their files from `folder` (only arguments have them)."""
    if isinstance(v, list):
        return [_decode(x, folder) for x in v]
    if not isinstance(v, dict):
        return v
    kind = v[_TAG]
    if kind == "float":
        return float(v["v"])
    if kind == "tuple":
        return tuple(_decode(x, folder) for x in v["items"])
    if kind == "dict":
        return {_decode(k): _decode(x, folder) for k, x in v["items"]}
    if kind in _TABLE_KINDS and folder is not None:
        return _TABLE_KINDS[kind](v, folder)
    if kind == "bytes":
        return base64.b64decode(v["v"])
    if kind == "path":
        return Path(v["v"])
    if kind == "ndarray":
        import numpy as np

        return np.load(io.BytesIO(base64.b64decode(v["v"])), allow_pickle=False)
    if kind in ("datetime64", "timedelta64"):
        import numpy as np

        return getattr(np, kind)(v["v"])
    if kind in ("nat", "na", "timestamp", "pd_timedelta"):
        import pandas as pd

        return {"nat": lambda: pd.NaT, "na": lambda: pd.NA, "timestamp": lambda: pd.Timestamp(v["v"]),
                "pd_timedelta": lambda: pd.Timedelta(v["v"], unit="ns")}[kind]()
    if kind == "image":
        from PIL import Image

        img = Image.open(io.BytesIO(base64.b64decode(v["v"])))
        img.load()
        return img
    simple = {"datetime": dt.datetime.fromisoformat, "date": dt.date.fromisoformat, "time": dt.time.fromisoformat,
              "timedelta": lambda x: dt.timedelta(*x), "decimal": decimal.Decimal}
    if kind in simple:
        return simple[kind](v["v"])
    raise ValueError(f"unknown hand-over value kind {kind!r}")


# ------------------------------------------------------------------------------------------ tables
def _is_records(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(r, dict) for r in v)


def _column_array(s, where: str):
    """A pandas column -> (Arrow-ready Series, how): "json" for objects written as tagged JSON text,
    "object" for an object column of plain strings (Arrow strings, object dtype restored), else None."""
    import pandas as pd

    if s.dtype != object:
        return s.reset_index(drop=True), None
    if all(isinstance(v, str) for v in s):
        return pd.Series(list(s), dtype=object), "object"
    cells = [json.dumps(_encode(v, f"{where}, row {i + 1}"), allow_nan=False) for i, v in enumerate(s)]
    return pd.Series(cells, dtype=object), "json"


def write_frame(df, path: Path, where: str) -> None:
    """A DataFrame -> Parquet: any column names (stored apart), object cells as tagged JSON, the index kept."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols, how = {}, {}
    for i in range(df.shape[1]):
        cols[f"c{i}"], how[f"c{i}"] = _column_array(df.iloc[:, i], f"{where}, column {df.columns[i]!r}")
    index = None
    if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1):
        values = pd.Series(list(df.index), dtype=object) if df.index.nlevels > 1 else pd.Series(df.index)
        cols["index"], how["index"] = _column_array(values, f"{where}, index")
        index = {"names": [_encode(n, where) for n in df.index.names]}
    meta = {"columns": [_encode(c, where) for c in df.columns], "how": {k: v for k, v in how.items() if v},
            "index": index, "rows": len(df)}
    try:
        table = pa.Table.from_pandas(pd.DataFrame(cols, index=pd.RangeIndex(len(df))), preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise Unsupported(f"{where}: {e}") from None
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta)})
    pq.write_table(table, path)


def read_frame(path: Path):
    import pandas as pd
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[_META_KEY])
    df = table.to_pandas()
    for c, how in meta["how"].items():
        df[c] = pd.Series([_decode(json.loads(x)) for x in df[c]] if how == "json" else list(df[c]), dtype=object)
    index = pd.RangeIndex(meta["rows"])
    if meta["index"] is not None:
        names = [_decode(n) for n in meta["index"]["names"]]
        values = df.pop("index")
        index = pd.MultiIndex.from_tuples(list(values), names=names) if len(names) > 1 else \
            pd.Index(values, name=names[0])
    out = df.set_axis(index, axis=0) if df.shape[1] else pd.DataFrame(index=index)
    out.columns = pd.Index([_decode(c) for c in meta["columns"]]) if meta["columns"] else out.columns
    return out


# ------------------------------------------------------------------------------------------ arguments
class Writer:
    """Packs finetune arguments into `folder`; tables become files, the rest tagged JSON."""

    def __init__(self, folder: Path):
        self.folder, self.n = Path(folder), 0

    def _file(self, stem: str) -> str:
        self.n += 1
        return f"{stem}-{self.n}"

    def pack(self, value, where: str):
        try:
            return self._pack(value, where)
        except Unsupported as e:
            raise ConfigError(f"finetune(devices=N) hands its arguments to worker processes as files, without "
                              f"pickle, and cannot hand over {e}. Pass a file path or a table of plain values "
                              "(text, numbers, dates, bytes, images, arrays)") from None

    def _pack(self, v, where: str):
        from .data import Table

        mod = type(v).__module__
        if isinstance(v, Table):
            name = self._file("table") + ".parquet"
            write_frame(v.df, self.folder / name, where)
            return {_TAG: "table", "file": name, "source": v.source, "header_lines": v.header_lines,
                    "row_lines": v.row_lines}
        if mod.startswith("pandas") and type(v).__name__ == "DataFrame":
            name = self._file("frame") + ".parquet"
            write_frame(v, self.folder / name, where)
            return {_TAG: "frame", "file": name}
        if mod.startswith("datasets.") and hasattr(v, "save_to_disk"):  # Dataset / DatasetDict
            from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

            name, quiet = self._file("dataset"), are_progress_bars_disabled()
            disable_progress_bars()
            try:
                v.save_to_disk(str(self.folder / name))
            finally:
                if not quiet:
                    enable_progress_bars()
            return {_TAG: "dataset", "file": name}
        if _is_records(v):
            import pandas as pd

            name = self._file("records") + ".parquet"
            try:
                frame = pd.DataFrame(v)
            except Exception:  # not a table after all: keep it as JSON
                return _encode(v, where)
            write_frame(frame, self.folder / name, where)
            return {_TAG: "records", "file": name}
        if isinstance(v, dict):
            return {_TAG: "dict", "items": [[_encode(k, where), self._pack(x, f"{where}[{k!r}]")] for k, x in v.items()]}
        if isinstance(v, (list, tuple)):
            items = [self._pack(x, f"{where}[{i}]") for i, x in enumerate(v)]
            return items if isinstance(v, list) else {_TAG: "tuple", "items": items}
        return _encode(v, where)


def _read_table(obj, folder: Path):
    from .data import Table

    return Table(read_frame(folder / obj["file"]), obj["source"], obj["header_lines"], obj["row_lines"])


def _read_dataset(obj, folder: Path):
    from datasets import load_from_disk

    return load_from_disk(str(folder / obj["file"]))


_TABLE_KINDS = {"table": _read_table, "frame": lambda o, f: read_frame(f / o["file"]),
                "records": lambda o, f: read_frame(f / o["file"]).to_dict("records"), "dataset": _read_dataset}


def unpack(obj, folder: Path):
    """The inverse of `Writer.pack`, in a worker."""
    return _decode(obj, Path(folder))


def dumps(obj) -> str:
    """Strict JSON (non-finite floats are tagged, never written as NaN)."""
    return json.dumps(obj, allow_nan=False)


def loads(text: str) -> Any:
    return json.loads(text)
