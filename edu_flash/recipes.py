"""Task recipes (`tasks/<task>.yaml`): which data, split how, which backbones with which settings,
and the published results to compare against. `bench` runs one end to end and publishes the
leaderboard and the best model's card under `model_cards/<task>/`.

A recipe is data, not code: the task, its data adapter and `compare` do the work, so a new task
needs only its own YAML file here.
"""
from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .core.errors import ConfigError, DataError

_TOP = {"task", "title", "data", "backbones", "hparams", "metric", "quick", "reference_results", "notes", "report",
        "tune"}
_DATA = {"name", "citation", "license", "source", "n", "loader", "loader_args", "val", "test", "split", "limit",
         "finetune_args", "evaluate_args"}
_SPLIT = {"ids", "test_fraction", "val_fraction", "group", "stratify", "seed"}
_QUICK = {"limit", "hparams", "n", "backbones", "report", "tune"}
_REF = {"system", "metric", "value", "citation", "protocol"}


@dataclass
class Recipe:
    path: Path
    task: str
    title: str
    data: dict
    backbones: dict[str, dict]
    hparams: dict = field(default_factory=dict)
    metric: str | None = None
    quick: dict = field(default_factory=dict)
    reference_results: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report: dict = field(default_factory=dict)   # options of the best model's `_bench_report` (task-specific)
    tune: dict = field(default_factory=dict)     # a search space for `edu-flash tune` (edu_flash.tuning)

    @property
    def task_class(self):
        from .core.registry import get_task

        return get_task(self.task)

    def quick_version(self) -> "Recipe":
        """The smoke-test variant: `quick` limits and hyperparameters on top of the recipe's."""
        q = self.quick
        data = {**self.data, "limit": {**self.data.get("limit", {}), **q.get("limit", {})}}
        if "n" in q:
            data["n"] = q["n"]
        names = q.get("backbones") or list(self.backbones)
        return Recipe(self.path, self.task, self.title + " (quick)", data,
                      {b: {**self.backbones[b], **q.get("hparams", {})} for b in names}, self.hparams, self.metric,
                      {}, self.reference_results, self.notes,
                      {**self.report, **(q.get("report") or {})} if self.report else {},
                      {**self.tune, **(q.get("tune") or {})} if self.tune else {})


def _check_keys(where: str, d: Any, allowed: set, path: Path) -> dict:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: `{where}` must be a mapping, got {type(d).__name__}")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown} in `{where}`; allowed: {sorted(allowed)}")
    return d


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Parse and check a recipe: keys, task, backbones and their hyperparameters, before anything runs."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    raw = _check_keys("(top level)", raw, _TOP, path)
    for key in ("task", "data", "backbones"):
        if key not in raw:
            raise ConfigError(f"{path}: missing `{key}`")
    data = _check_keys("data", raw["data"], _DATA, path)
    if "source" not in data:
        raise ConfigError(f"{path}: `data.source` is required (a path under --data-root, or builtin)")
    _check_keys("data.split", data.get("split"), _SPLIT, path)
    quick = _check_keys("quick", raw.get("quick"), _QUICK, path)
    backbones = raw["backbones"]
    if isinstance(backbones, list):
        backbones = {b: {} for b in backbones}
    if not isinstance(backbones, dict) or not backbones:
        raise ConfigError(f"{path}: `backbones` must be a non-empty list or mapping of backbone -> hyperparameters")
    refs = raw.get("reference_results") or []
    for i, r in enumerate(refs):
        _check_keys(f"reference_results[{i}]", r, _REF, path)
        missing = {"system", "metric", "value", "citation"} - set(r)
        if missing:
            raise ConfigError(f"{path}: reference_results[{i}] lacks {sorted(missing)}")
    recipe = Recipe(path, str(raw["task"]), str(raw.get("title") or path.stem), data,
                    {str(k): dict(v or {}) for k, v in backbones.items()}, dict(raw.get("hparams") or {}),
                    raw.get("metric"), quick, list(refs), list(raw.get("notes") or []),
                    dict(_check_keys("report", raw.get("report"), set(raw.get("report") or {}), path)),
                    dict(raw.get("tune") or {}))
    try:
        cls = recipe.task_class
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    for b, hp in recipe.backbones.items():
        if b not in cls.backbones:
            raise ConfigError(f"{path}: backbone {b!r} is not registered for {cls.__name__} "
                              f"(available: {cls.available_backbones()})")
        try:
            cls(b, **{**recipe.hparams, **hp})
        except ConfigError as e:
            raise ConfigError(f"{path}: backbone {b!r}: {e}") from None
    _check_report(recipe, cls, path)
    if recipe.tune or quick.get("tune"):
        from .tuning import check_recipe_tune

        check_recipe_tune(recipe, cls, path)
    unknown_q = sorted(set(quick.get("backbones") or []) - set(recipe.backbones))
    if unknown_q:
        raise ConfigError(f"{path}: quick.backbones names backbones the recipe does not compare: {unknown_q}")
    return recipe


def _check_report(recipe: Recipe, cls, path: Path) -> None:
    """`report:` options must name the task's `_bench_report` keywords (checked before training)."""
    import inspect

    from .core.task import Task

    if not recipe.report and not recipe.quick.get("report"):
        return
    if cls._bench_report is Task._bench_report:
        raise ConfigError(f"{path}: {cls.__name__} has no bench report; remove `report:`")
    params = inspect.signature(cls._bench_report).parameters
    names = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY} - {"run_dir"}
    unknown = sorted((set(recipe.report) | set(recipe.quick.get("report") or {})) - names)
    if unknown:
        raise ConfigError(f"{path}: unknown `report` option(s) {unknown}; {cls.__name__} takes {sorted(names)}")


# ---------------------------------------------------------------------------------------- data
def _resolve(root: Path, rel, what: str, recipe: Recipe) -> Path:
    p = Path(rel) if Path(rel).is_absolute() else root / rel
    if not p.exists():
        raise DataError(f"{what} not found (recipe {recipe.path.name}, --data-root {root})", source=str(p))
    return p


def _load(path: Path, data: dict):
    if not data.get("loader"):
        return path
    mod, _, fn = str(data["loader"]).rpartition(".")
    try:
        loader = getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"data.loader {data['loader']!r} is not an importable function") from None
    return loader(path, **(data.get("loader_args") or {}))


def _frame(obj, what: str):
    """Data that must be split or limited here: a table read by the one data path."""
    from .core.data import read_table

    return read_table(obj, name=what).df


def _fraction_split(obj, fraction: float, seed: int, group, stratify):
    """(rest, held_out) with whole groups on one side; objects with their own split() use it."""
    if hasattr(obj, "split") and callable(obj.split) and not hasattr(obj, "iloc"):
        return obj.split(fraction, seed=seed)
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    df = _frame(obj, "data")
    for col in (group, stratify):
        if col is not None and col not in df.columns:
            raise DataError(f"split column {col!r} not in the data (columns: {list(df.columns)})", column=col)
    if group is not None:
        a, b = next(GroupShuffleSplit(1, test_size=fraction, random_state=seed).split(df, groups=df[group]))
    else:
        a, b = train_test_split(range(len(df)), test_size=fraction, random_state=seed,
                                stratify=df[stratify] if stratify else None)
    return df.iloc[sorted(a)].reset_index(drop=True), df.iloc[sorted(b)].reset_index(drop=True)


def _id_split(obj, ids: dict, root: Path, recipe: Recipe) -> dict:
    column = ids.get("column")
    df = _frame(obj, "data")
    if column not in df.columns:
        raise DataError(f"split.ids.column {column!r} not in the data (columns: {list(df.columns)})", column=column)
    col = df[column]
    if col.dtype.kind == "f" and col.dropna().apply(float.is_integer).all():
        col = col.astype("Int64")  # 1000.0 -> 1000, as the id lists write it
    keys = col.astype(str).str.strip()
    out = {}
    for part in ("train", "val", "test"):
        if ids.get(part):
            path = _resolve(root, ids[part], f"split.ids.{part}", recipe)
            wanted = {line.strip() for line in path.read_text().splitlines() if line.strip()}
            missing = wanted - set(keys)
            if missing:
                raise DataError(f"{len(missing)} id(s) of {path.name} are not in the data, e.g. {sorted(missing)[:3]}",
                                source=str(path), column=column)
            out[part] = df[keys.isin(wanted)].reset_index(drop=True)
    return out


def _limit(obj, n: int | None, seed: int):
    if n is None:
        return obj
    if hasattr(obj, "iloc"):
        return obj if len(obj) <= n else obj.sample(n=int(n), random_state=seed).sort_index().reset_index(drop=True)
    if hasattr(obj, "subset") and hasattr(obj, "students"):  # a multi-table bundle: keep n whole students
        ids = obj.students[obj.columns.get("id_column", "student")]
        return obj if len(ids) <= n else obj.subset(ids.sample(n=int(n), random_state=seed))
    return _limit(_frame(obj, "data"), n, seed)


def load_splits(recipe: Recipe, data_root: str | os.PathLike = "../shared/datasets"):
    """The recipe's train / val / test, in the forms the task's finetune and evaluate take."""
    from .core.task import Splits

    data, root = recipe.data, Path(data_root)
    split = data.get("split") or {}
    seed = int(split.get("seed", recipe.hparams.get("seed", 0)))
    if data["source"] == "builtin":
        s = recipe.task_class.builtin_data(data.get("n"), seed)
        parts = {"train": s.train, "val": s.val, "test": s.test}
        fin, ev = {**s.finetune_args, **(data.get("finetune_args") or {})}, {**s.evaluate_args,
                                                                             **(data.get("evaluate_args") or {})}
    else:
        src = _load(_resolve(root, data["source"], "data.source", recipe), data)
        fin, ev = dict(data.get("finetune_args") or {}), dict(data.get("evaluate_args") or {})
        if data.get("test"):
            parts = {"train": src, "test": _load(_resolve(root, data["test"], "data.test", recipe), data)}
            if data.get("val"):
                parts["val"] = _load(_resolve(root, data["val"], "data.val", recipe), data)
        elif split.get("ids"):
            parts = _id_split(src, split["ids"], root, recipe)
        elif split.get("test_fraction"):
            rest, test = _fraction_split(src, float(split["test_fraction"]), seed, split.get("group"),
                                         split.get("stratify"))
            parts = {"train": rest, "test": test}
        else:
            raise ConfigError(f"{recipe.path}: give data.test, data.split.ids or data.split.test_fraction")
        if "val" not in parts and split.get("val_fraction"):
            parts["train"], parts["val"] = _fraction_split(parts["train"], float(split["val_fraction"]), seed + 1,
                                                           split.get("group"), split.get("stratify"))
    if "train" not in parts or "test" not in parts:
        raise ConfigError(f"{recipe.path}: the split gives no {'train' if 'train' not in parts else 'test'} part")
    limit = data.get("limit") or {}
    parts = {k: _limit(v, limit.get(k), seed) for k, v in parts.items()}
    name = data.get("name") or recipe.task
    ev.setdefault("name", f"{name} (test split)")
    return Splits(parts["train"], parts.get("val"), parts["test"], finetune_args=fin, evaluate_args=ev,
                  about=name)


# ---------------------------------------------------------------------------------------- bench
def _size(obj) -> int | str | None:
    """Rows of a split for the card; a split the task reads from a file itself is named by its file."""
    if isinstance(obj, (str, os.PathLike)):
        return Path(obj).name
    for attr in ("students", "df"):
        if hasattr(obj, attr):
            return len(getattr(obj, attr))
    try:
        return len(obj)
    except TypeError:
        return None


def _comparison_markdown(recipe: Recipe, board, splits, command: str, others: list[str]) -> str:
    """others: the backbones below the best whose own cards are published under backbones/."""
    from .core.card import md_table
    from .leaderboard import _folder_name

    cols = ["backbone", *([recipe.metric] if recipe.metric in board else []),
            *[c for c in board.columns if c not in ("backbone", recipe.metric, "model_dir", "error")],
            *(["error"] if "error" in board else [])]
    rows = [{c: r[c] for c in cols if c in r and r[c] == r[c]} for r in board.to_dict("records")]
    d = recipe.data
    sizes = ", ".join(f"{k} {_size(v)}" for k, v in (("train", splits.train), ("val", splits.val),
                                                      ("test", splits.test)) if v is not None)
    out = [f"Recipe `{recipe.path.as_posix()}`, run with `{command}`.",
           f"Data: {d.get('name', d['source'])} ({sizes}). "
           + (f"Citation: {d['citation']}." if d.get("citation") else ""),
           f"Ranked by `{recipe.metric}`; train_s / eval_s are wall seconds, peak_rss_mb the process's resident "
           "memory above its level before that backbone, parameters the learned numbers stored.",
           md_table(rows)]
    if recipe.reference_results:
        out += ["**Published reference results** (their protocols differ from this run where noted; they are "
                "quoted, not reproduced):",
                md_table([{"system": r["system"], "metric": r["metric"], "value": r["value"],
                           "protocol": r.get("protocol", ""), "citation": r["citation"]}
                          for r in recipe.reference_results])]
    out += [f"- {n}" for n in recipe.notes]
    if others:
        out.append("The other backbones' own cards (their evaluation, examples and settings) are published beside "
                   "this one: " + ", ".join(f"`backbones/{_folder_name(b)}.md`" for b in others) + ".")
    return "\n\n".join(out)


def bench(recipe: Recipe | str | os.PathLike, *, data_root: str | os.PathLike = "../shared/datasets",
          out: str | os.PathLike = "model_cards", run_root: str | os.PathLike = "runs/bench",
          backbones: list[str] | None = None, quick: bool = False, devices: int = 1, progress: bool | None = False,
          command: str | None = None):
    """Run a recipe: compare its backbones, then write `out/<task>/` with leaderboard.csv / .md / .png
    and the best model's card (README.md); the trained models stay under run_root. Returns the board."""
    from .core.io import atomic_folder
    from .leaderboard import _folder_name, compare

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    if quick:
        recipe = recipe.quick_version()
    if backbones:
        unknown = sorted(set(backbones) - set(recipe.backbones))
        if unknown:
            raise ConfigError(f"backbones {unknown} are not in {recipe.path.name} (it has {list(recipe.backbones)})")
        recipe = replace(recipe, backbones={b: recipe.backbones[b] for b in backbones})  # caller's stays whole
    splits = load_splits(recipe, data_root)
    cls = recipe.task_class
    run = Path(run_root) / cls.task_name
    board = compare(cls, list(recipe.backbones), splits.train, splits.test, val=splits.val, metric=recipe.metric,
                    hparams=recipe.hparams, backbone_hparams=recipe.backbones, finetune_args=splits.finetune_args,
                    evaluate_args=splits.evaluate_args, run_dir=run / "train", save_dir=run / "models",
                    devices=devices, progress=progress, on_error="record")
    ok = board[board["error"].isna()] if "error" in board else board
    if ok.empty:
        raise ConfigError(f"every backbone failed:\n{board[['backbone', 'error']].to_string(index=False)}")
    command = command or f"edu-flash bench {recipe.path.as_posix()}" + (" --quick" if quick else "")
    cards = {name: Path(d) / "README.md" for d, name in zip(ok["model_dir"].iloc[1:], ok["backbone"].iloc[1:])
             if (Path(d) / "README.md").exists()}   # every other backbone's own card, published beside the best
    section = _comparison_markdown(recipe, board, splits, command, list(cards))
    best = cls.from_pretrained(ok.iloc[0]["model_dir"])
    best.card.add_section("Backbone comparison", section)
    if recipe.report:
        best._bench_report(splits, run_dir=run / "report", **recipe.report)
    target = Path(out) / cls.task_name
    with atomic_folder(target) as tmp:
        best.save_pretrained(Path(ok.iloc[0]["model_dir"]))  # the card travels with the model too
        for f in Path(ok.iloc[0]["model_dir"]).iterdir():
            if f.suffix in (".png", ".md"):
                shutil.copy2(f, tmp / f.name)
        for name, card in cards.items():
            (tmp / "backbones").mkdir(exist_ok=True)
            shutil.copy2(card, tmp / "backbones" / f"{_folder_name(name)}.md")
        board.drop(columns=[c for c in ("model_dir",) if c in board]).to_csv(tmp / "leaderboard.csv", index=False)
        (tmp / "leaderboard.md").write_text(f"# {recipe.title}\n\n{section}\n", encoding="utf-8")
        from .leaderboard import plot_leaderboard

        try:
            plot_leaderboard(board, tmp / "leaderboard.png", metric=recipe.metric, title=recipe.title)
        except ConfigError:
            pass  # matplotlib missing: the CSV and markdown still carry every figure
    return board
