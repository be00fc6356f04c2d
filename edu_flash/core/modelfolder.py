"""Reading a model folder that may come from a stranger.

config.json is validated like data (size, encoding, nesting, required keys and their types);
weights are safetensors only (a pickle in their place is named as such, never opened); a folder
that asks transformers to run its own Python code (`auto_map`) is refused; and whatever else
goes wrong while loading ends in a CheckpointError that names the folder and the problem.
Training checkpoints (core.checkpoint) go through the same checks.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from .errors import CheckpointError, EduFlashError

MAX_JSON_BYTES = 64 * 2**20
MAX_DEPTH = 64
# What an edu-flash config.json must hold, and the JSON type of each entry.
REQUIRED = {"config_version": int, "task": str, "backbone": str, "hparams": dict, "weights": dict}
OPTIONAL = {"task_class": str, "state": dict, "card": dict, "engine": str, "edu_flash_version": str, "tensors": dict}
_TYPE_NAMES = {int: "an integer", str: "a string", dict: "an object", list: "a list"}
_PICKLE_HINT = "edu-flash never loads pickles; re-save the model with save_pretrained"


def read_json_file(path: str | os.PathLike, folder: str | os.PathLike | None = None):
    """Parse a JSON file, turning every way it can be broken into a CheckpointError."""
    path = Path(path)
    where = f"{folder if folder is not None else path.parent}: {path.name}"
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"{where} is missing") from None
    if size > MAX_JSON_BYTES:
        raise CheckpointError(f"{where} is {size:,} bytes, more than a config can be ({MAX_JSON_BYTES:,})")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{where} is not UTF-8 text (invalid byte at offset {e.start})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{where} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise CheckpointError(f"{where} nests deeper than {MAX_DEPTH} levels") from None
    if _depth(obj) > MAX_DEPTH:
        raise CheckpointError(f"{where} nests deeper than {MAX_DEPTH} levels")
    return obj


def _depth(obj) -> int:
    """Nesting depth without recursion (a hostile file must not exhaust the stack)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (dict, list)):
            deepest = max(deepest, d)
            if d > MAX_DEPTH:
                return d
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return deepest


def read_config(folder: str | os.PathLike) -> dict:
    """config.json of an edu-flash model folder, checked entry by entry."""
    folder = Path(folder)
    cfg = read_json_file(folder / "config.json", folder)
    where = f"{folder}: config.json"
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{where} must hold a JSON object, found {type(cfg).__name__}")
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        if "config_version" in missing:
            raise CheckpointError(f"{where}: missing config_version; not an edu-flash config")
        raise CheckpointError(f"{where} lacks {', '.join(map(repr, missing))} (an edu-flash config has "
                              f"{', '.join(REQUIRED)})")
    for k, t in {**REQUIRED, **OPTIONAL}.items():
        v = cfg.get(k)
        if k in cfg and not (isinstance(v, t) and not isinstance(v, bool)) and not (k in OPTIONAL and v is None):
            raise CheckpointError(f"{where}: {k!r} must be {_TYPE_NAMES[t]}, got {type(v).__name__}")
    _refuse_remote_code(cfg["weights"], f"{where} ('weights')")
    return cfg


def _refuse_remote_code(obj, where: str) -> None:
    """An embedded Hugging Face config with `auto_map` would make transformers import code."""
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            if "auto_map" in o:
                raise CheckpointError(f"{where} asks to run Python code from the model folder (auto_map "
                                      f"{_short(o['auto_map'])}); edu-flash never runs code from a model folder")
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)


def check_no_remote_code(folder: str | os.PathLike) -> None:
    """Refuse a Hugging Face folder whose configs point transformers at Python files in the folder."""
    folder = Path(folder)
    for p in sorted(folder.glob("*.json")):
        if p.name == "tokenizer.json" or p.stat().st_size > MAX_JSON_BYTES:
            continue  # the vocabulary, not a config; no config is that large
        try:
            top = json.loads(p.read_bytes().decode("utf-8"))
        except (ValueError, RecursionError):
            continue  # unreadable here: the loader that needs it reports it
        if isinstance(top, dict) and ("auto_map" in top or "custom_pipelines" in top):
            key = "auto_map" if "auto_map" in top else "custom_pipelines"
            raise CheckpointError(f"{folder}: {p.name} asks to run Python code from the folder ({key} "
                                  f"{_short(top[key])}); edu-flash never runs code from a model folder "
                                  "(trust_remote_code=False)")


def check_weight_files(folder: str | os.PathLike, manifest: dict | None = None) -> None:
    """Every *.safetensors file must be one (headers read, no tensor loaded), model.safetensors must
    exist, and each tensor must have the name, dtype and shape `manifest` (config.json) records."""
    folder = Path(folder)
    if not (folder / "model.safetensors").exists():
        raise CheckpointError(f"{folder}: model.safetensors is missing")
    for p in sorted(folder.glob("*.safetensors")):
        try:
            found = _tensors(p)
        except Exception as e:  # SafetensorError, OSError, ValueError: all mean the file is not usable
            kind = _sniff(p)
            if kind:
                raise CheckpointError(f"{folder}: {p.name} is a {kind}, not a safetensors file; {_PICKLE_HINT}") \
                    from None
            raise CheckpointError(f"{folder}: {p.name} is not a valid safetensors file ({_first_line(e)})") from None
        expected = (manifest or {}).get(p.name)
        if isinstance(expected, dict) and found != expected:
            raise CheckpointError(f"{folder}: {p.name} does not hold the tensors config.json records "
                                  f"({_difference(expected, found)})")


def tensor_manifest(folder: str | os.PathLike) -> dict:
    """{file: {tensor: {dtype, shape}}} of every *.safetensors file in `folder`, for config.json."""
    return {p.name: _tensors(p) for p in sorted(Path(folder).glob("*.safetensors"))}


def _tensors(path: Path) -> dict:
    """{tensor: {dtype, shape}} from a safetensors header (no tensor data is read)."""
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return {k: {"dtype": f.get_slice(k).get_dtype(), "shape": list(f.get_slice(k).get_shape())} for k in f.keys()}


def _difference(expected: dict, found: dict) -> str:
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or extra:
        return ", ".join(x for x in (f"missing {missing[:3]}" if missing else "",
                                     f"unexpected {extra[:3]}" if extra else "") if x)
    k = next(k for k in sorted(expected) if expected[k] != found[k])
    return f"{k!r} is {found[k]['dtype']}{found[k]['shape']}, config.json says {expected[k]['dtype']}{expected[k]['shape']}"


def _sniff(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        return "pickle"
    if head == b"PK\x03\x04":
        return "zip archive (torch.save's format, which holds a pickle)"
    return None


@contextlib.contextmanager
def loading(folder: str | os.PathLike, what: str = "cannot load the model"):
    """Turn any error raised while loading from `folder` into a CheckpointError naming it."""
    try:
        yield
    except EduFlashError as e:
        if isinstance(e, CheckpointError) and str(folder) in str(e):
            raise
        raise CheckpointError(f"{folder}: {what}: {e}") from e
    except Exception as e:
        raise CheckpointError(f"{folder}: {what}: {describe(e)}") from e


def describe(e: BaseException) -> str:
    """A short, user-facing account of a low-level loading error."""
    if isinstance(e, FileNotFoundError):
        return f"{Path(e.filename).name} is missing" if e.filename else f"a file is missing ({_first_line(e)})"
    if isinstance(e, KeyError):
        return f"config.json or a weights file lacks the entry {e.args[0]!r}" if e.args else "an entry is missing"
    if isinstance(e, RecursionError):
        return "a config nests too deeply"
    text = str(e)
    if isinstance(e, RuntimeError) and ("size mismatch" in text or "Missing key" in text or "Unexpected key" in text):
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return "the weights do not fit the model config.json describes: " + " ".join(lines[:3])[:500]
    return f"{type(e).__name__}: {_first_line(e)}"


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return (lines[0] if lines else type(e).__name__)[:300]


def _short(o) -> str:
    s = json.dumps(o) if not isinstance(o, str) else o
    return s if len(s) <= 120 else s[:117] + "..."


CONFIG_VERSION = 1


def missing_folder(path) -> Path:
    from .registry import closest, download_model, is_hub_id

    if is_hub_id(str(path)):
        return download_model(str(path))
    p = Path(path)
    near = closest(p.name, [c.name for c in p.parent.iterdir() if c.is_dir()]) if p.parent.is_dir() else None
    hint = f"; did you mean {str(p.parent / near)!r}?" if near else ""
    raise CheckpointError(f"model folder {str(path)!r} does not exist{hint}")


def _a(name: str) -> str:
    return ("an " if name[:1] in "AEIOU" else "a ") + name


def wrong_task(folder, task: str, cls) -> str:
    from .registry import discover

    held = discover().get(task)
    if held is None:
        return f"{folder} holds a model of task {task!r}, which this edu-flash does not know, not {_a(cls.__name__)}"
    return (f"{folder} holds {_a(held.__name__)} model (task {task!r}), not {_a(cls.__name__)}: load it with "
            f"{held.__name__}.from_pretrained(...) or edu_flash.Task.from_pretrained(...)")


def migrate_config(cfg: dict, where) -> dict:
    """Bring an older config.json up to CONFIG_VERSION (none older exists yet)."""
    v = cfg.get("config_version")
    if v is None or not isinstance(v, int):
        raise CheckpointError(f"{where}: missing config_version; not an edu-flash config")
    if v > CONFIG_VERSION:
        raise CheckpointError(f"{where}: config_version {v} is newer than this edu-flash understands "
                              f"({CONFIG_VERSION}); upgrade edu-flash")
    return cfg


def open_model_folder(path, cls) -> tuple[Path, dict]:
    """The folder `from_pretrained(path)` loads and its checked config: a save killed mid-swap is put
    back, an explicit hub id is downloaded, anything else missing fails here; the config must be an
    edu-flash one of a version this code reads, for `cls`'s task (any task when called on Task)."""
    from .io import recover

    folder = Path(path)
    if not folder.exists() and not recover(folder):
        folder = missing_folder(path)
    if not (folder / "config.json").exists():
        raise CheckpointError(f"{folder} has no config.json: not an edu-flash model folder")
    cfg = migrate_config(read_config(folder), folder / "config.json")  # validated like data
    if cls.task_name and cfg["task"] != cls.task_name:
        raise CheckpointError(wrong_task(folder, cfg["task"], cls))
    return folder, cfg
