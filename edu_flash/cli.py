"""The `edu-flash` command line: every subcommand is a thin layer over the Python API, and the tasks
and backbones it offers come from the registry, so a new task folder shows up here by itself."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _catalogue() -> str:
    from .core.registry import discover

    lines = ["tasks and backbones (default first):"]
    for name, cls in sorted(discover().items()):
        names = [cls.default_backbone] + [b for b in cls.available_backbones() if b != cls.default_backbone]
        lines.append(f"  {cls.__name__} ({name}): {', '.join(names)}")
    return "\n".join(lines)


def _value(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _settings(pairs: list[str] | None) -> dict:
    out = {}
    for p in pairs or []:
        key, eq, val = p.partition("=")
        if not eq or not key:
            from .core.errors import ConfigError

            raise ConfigError(f"--set expects key=value, got {p!r}")
        out[key.strip()] = _value(val)
    return out


def _input(text: str):
    """An existing file stays a path (the task reads it); otherwise JSON/YAML if it parses to a
    structure, else the literal text (one essay, one class name)."""
    try:
        if len(text) < 4096 and Path(text).exists():
            return text
    except OSError:  # a long text is no file name
        pass
    v = _value(text)
    return v if isinstance(v, (dict, list)) else text


def _show(obj, out: str | None):
    """Print a result as JSON; DataFrames as records; PIL images saved to --out (a folder)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None
    items = obj if isinstance(obj, list) else [obj]
    if Image is not None and items and all(isinstance(x, Image.Image) for x in items):
        folder = Path(out or "generated")
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, im in enumerate(items):
            im.save(folder / f"{i:03d}.png")
            paths.append(str(folder / f"{i:03d}.png"))
        return print(json.dumps({"images": paths}, indent=2))
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):
        obj = obj.to_dict("records")
    text = json.dumps(obj, indent=2, default=str)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
    print(text)


def _load(folder: str):
    from .core.task import Task

    return Task.from_pretrained(folder)


def _check_keywords(fn, kwargs: dict, flag: str) -> None:
    """A misspelt --set key (`promt=1`) fails with the valid names, not as a TypeError."""
    import inspect

    from .core.errors import ConfigError
    from .core.registry import closest

    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD
                                                                          and p.default is not p.empty)]
    for k in kwargs:
        if k not in valid:
            guess = closest(k, valid)
            raise ConfigError(f"{flag} {k}=...: {fn.__qualname__.split('.')[0]}.{fn.__name__} has no argument {k!r}"
                              + (f"; did you mean {guess!r}?" if guess else "") + f" (valid: {valid})")


def _check_path(value, what: str) -> None:
    """An input named on the command line must exist and be readable before anything trains."""
    import os

    from .core.errors import DataError

    p = Path(value)
    if not p.exists():
        raise DataError(f"{what}: not found", source=str(value))
    ok = os.access(p, os.R_OK) and (not p.is_dir() or os.access(p, os.X_OK))
    if ok:
        try:
            if p.is_dir():
                next(iter(os.scandir(p)), None)
            else:
                with open(p, "rb") as fh:
                    fh.read(1)
        except OSError:
            ok = False
    if not ok:
        raise DataError(f"{what}: cannot be read (permissions?)", source=str(value))


def _check_out(out: str) -> None:
    """--out must be writable: finding out after training would lose the model."""
    import os

    from .core.errors import ConfigError

    p = Path(out).absolute()
    if p.exists() and not p.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: cannot write into {parent}")


def _looks_like_file(v) -> bool:
    return isinstance(v, str) and ("/" in v or Path(v).suffix.lower() in (
        ".csv", ".tsv", ".jsonl", ".json", ".parquet", ".txt")) and "\n" not in v and len(v) < 4096


def _preflight_finetune(a, cls, settings: dict, eval_settings: dict) -> None:
    """Every input of `finetune` checked before training: the files, and what `--test` will need."""
    from .core.errors import ConfigError

    _check_path(a.data, "training data")
    _check_out(a.out)
    if a.val:
        _check_path(a.val, "--val")
    for k, v in {**settings, **eval_settings}.items():
        if _looks_like_file(v):
            _check_path(v, f"{k}=")
    if a.test:
        _check_path(a.test, "--test")
        _check_keywords(cls.evaluate, eval_settings, "--eval-set")
        import inspect

        takes = inspect.signature(cls.evaluate).parameters
        for k, v in settings.items():  # data files given to finetune that evaluate takes too (activity=...)
            if k in takes and k not in eval_settings and _looks_like_file(v) and Path(v).is_file():
                raise ConfigError(f"--test: finetune was given {k}={v}, so evaluate needs the test set's own "
                                  f"{k} too: add --eval-set {k}=FILE")
    elif eval_settings:
        raise ConfigError("--eval-set is for evaluating on --test; give --test too")


def cmd_finetune(a) -> None:
    from .core.errors import EduFlashError
    from .core.registry import get_task

    cls = get_task(a.task)
    settings, eval_settings = _settings(a.set), _settings(a.eval_set)
    _preflight_finetune(a, cls, settings, eval_settings)
    obj = cls(a.backbone) if not a.model else cls.from_pretrained(a.model)
    obj.finetune(a.data, a.val, devices=a.devices, strategy=a.strategy, resume=a.resume,
                 run_dir=a.run_dir, threads=a.threads, **settings)
    if a.test:
        try:
            metrics = obj.evaluate(a.test, **eval_settings)
        except Exception as e:  # the trained model is not thrown away: save it first, then say where
            saved = obj.save_pretrained(a.out)
            if isinstance(e, EduFlashError):
                raise type(e)(f"{e} (evaluation on --test failed after training; the trained model is saved, "
                              f"without results, at {saved})") from e
            print(f"edu-flash finetune: evaluation on --test failed after training; the trained model is saved, "
                  f"without results, at {saved}", file=sys.stderr)
            raise
        _show(metrics, None)
    print(f"saved: {obj.save_pretrained(a.out)}")


def cmd_predict(a) -> None:
    obj = _load(a.model)
    settings = _settings(a.set)
    _check_keywords(obj.predict, settings, "--set")
    _show(obj.predict(_input(a.input), **settings), a.out)


def cmd_evaluate(a) -> None:
    obj = _load(a.model)
    settings = _settings(a.set)
    _check_keywords(obj.evaluate, settings, "--set")
    metrics = obj.evaluate(a.data, **settings)
    _show({k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}, None)
    if a.save:
        obj.save_pretrained(a.model)
        print(f"card updated: {Path(a.model) / 'README.md'}")


def cmd_compare(a) -> None:
    from .core.registry import get_task
    from .leaderboard import compare

    cls = get_task(a.task)
    if a.builtin:
        s = cls.builtin_data(a.n, seed=0)
        train, val, test, fin, ev = s.train, s.val, s.test, s.finetune_args, s.evaluate_args
    else:
        if not (a.train and a.test):
            raise SystemExit("compare: give --train and --test, or --builtin")
        train, val, test, fin, ev = a.train, a.val, a.test, {}, {}
    board = compare(cls, a.backbones, train, test, val=val, metric=a.metric, hparams=_settings(a.set),
                    finetune_args={**fin, **_settings(a.data_set)}, evaluate_args=ev, run_dir=a.run_dir,
                    save_dir=a.save_dir, plot=a.plot, devices=a.devices, on_error="record")
    print(board.to_string(index=False))
    if a.csv:
        board.to_csv(a.csv, index=False)


def cmd_bench(a) -> None:
    from .recipes import bench

    board = bench(a.recipe, data_root=a.data_root, out=a.out, run_root=a.run_root, backbones=a.backbones,
                  quick=a.quick, devices=a.devices, command=" ".join(["edu-flash", *sys.argv[1:]]))
    print(board.drop(columns=[c for c in ("model_dir",) if c in board]).to_string(index=False))
    print(f"written: {Path(a.out)}")


def cmd_tune(a) -> None:
    from .tuning import tune_recipe

    res = tune_recipe(a.recipe, data_root=a.data_root, out=a.out, quick=a.quick, n_trials=a.n_trials)
    cols = [c for c in res.table.columns if c not in ("duration",)]
    print(res.table[cols].to_string(index=False))
    print(f"best: {res.metric} {res.best_value:.4f} with {res.best_params}")
    test = {k: v for k, v in (res.test_metrics or {}).items() if isinstance(v, (int, float))}
    print(f"best model on the test split: {json.dumps(test)}")
    print(f"written: {Path(a.out) / res.best_task.task_name} (trials.csv, best/)")


def cmd_card(a) -> None:
    from .core.cardcheck import check_card

    path = Path(a.path)
    if not path.exists():  # never a hub lookup: cards are read from disk
        from .core.errors import CheckpointError

        raise CheckpointError(f"{path}: no such model folder or card file")
    readme = path / "README.md" if path.is_dir() else path
    if a.validate:
        info = check_card(readme)
        if not info["results"]:
            print(f"{readme}: valid (no results recorded yet: the card says so)")
        else:
            print(f"{readme}: valid ({info['results']} model-index results; metrics: {', '.join(info['metrics'])})")
        return
    if path.is_dir() and (path / "config.json").exists() and a.rewrite:
        obj = _load(str(path))
        obj.save_pretrained(path)
    print(readme.read_text(encoding="utf-8"))


def cmd_demo(a) -> None:
    from .demo import tour

    tour(a.tasks, out=a.out, n=a.n)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edu-flash", description="Ready-made educational AI tasks on one trainer.",
                                epilog=_catalogue(), formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__

    p.add_argument("--version", action="version", version=f"edu-flash {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")
    setting = dict(action="append", metavar="KEY=VALUE",
                   help="a hyperparameter or data argument (YAML value), repeatable")

    f = sub.add_parser("finetune", help="train a task on a data file and save it with its card")
    f.add_argument("task", help="task name or class, e.g. EssayScorer")
    f.add_argument("data")
    f.add_argument("--val")
    f.add_argument("--test", help="evaluate on this file after training (results go into the card)")
    f.add_argument("--backbone")
    f.add_argument("--model", help="continue training this saved model folder instead")
    f.add_argument("--out", required=True, help="model folder to write")
    f.add_argument("--run-dir", help="metrics, logs and resume checkpoints (default: a new runs/<task>/version_N; "
                                     "with --resume the newest one that has a checkpoint)")
    f.add_argument("--devices", type=int, default=1)
    f.add_argument("--strategy", default="auto", choices=["auto", "ddp", "fsdp"])
    f.add_argument("--resume", action="store_true")
    f.add_argument("--threads", type=int, help="CPU threads for training (default: the free cores; 0: torch's own)")
    f.add_argument("--set", **setting)
    f.add_argument("--eval-set", action="append", metavar="KEY=VALUE", help="an evaluate() argument")
    f.set_defaults(fn=cmd_finetune)

    pr = sub.add_parser("predict", help="run a saved model on a file, a JSON value or a text")
    pr.add_argument("model")
    pr.add_argument("input", help="a data file, a JSON/YAML value, or plain text")
    pr.add_argument("--out", help="write the result here (JSON; a folder for images)")
    pr.add_argument("--set", action="append", metavar="KEY=VALUE", help="a predict() argument")
    pr.set_defaults(fn=cmd_predict)

    e = sub.add_parser("evaluate", help="score a saved model on labelled data")
    e.add_argument("model")
    e.add_argument("data")
    e.add_argument("--set", action="append", metavar="KEY=VALUE", help="an evaluate() argument")
    e.add_argument("--save", action="store_true", help="write the results into the model's card")
    e.set_defaults(fn=cmd_evaluate)

    c = sub.add_parser("compare", help="train several backbones on the same data and rank them")
    c.add_argument("task")
    c.add_argument("--backbones", nargs="+", help="default: every backbone the task registers")
    c.add_argument("--train")
    c.add_argument("--val")
    c.add_argument("--test")
    c.add_argument("--builtin", action="store_true", help="use the task's built-in data")
    c.add_argument("--n", type=int, help="size of the built-in data")
    c.add_argument("--metric")
    c.add_argument("--set", **setting)
    c.add_argument("--data-set", action="append", metavar="KEY=VALUE", help="a data argument (column names...)")
    c.add_argument("--run-dir", default="runs/compare")
    c.add_argument("--save-dir", help="save every trained model here")
    c.add_argument("--plot", help="PNG of the leaderboard")
    c.add_argument("--csv", help="write the leaderboard as CSV")
    c.add_argument("--devices", type=int, default=1)
    c.set_defaults(fn=cmd_compare)

    b = sub.add_parser("bench", help="run a task recipe (tasks/<task>.yaml) end to end and publish its card")
    b.add_argument("recipe")
    b.add_argument("--data-root", default="../shared/datasets")
    b.add_argument("--out", default="model_cards")
    b.add_argument("--run-root", default="runs/bench")
    b.add_argument("--backbones", nargs="+", help="only these of the recipe's backbones")
    b.add_argument("--quick", action="store_true", help="the recipe's small smoke-test settings")
    b.add_argument("--devices", type=int, default=1)
    b.set_defaults(fn=cmd_bench)

    t = sub.add_parser("tune", help="search a recipe's hyperparameter space (its `tune:` section) with Optuna")
    t.add_argument("recipe")
    t.add_argument("--data-root", default="../shared/datasets")
    t.add_argument("--out", default="runs/tune", help="writes <out>/<task>/trials.csv and the best model")
    t.add_argument("--n-trials", type=int, help="default: the recipe's tune.n_trials")
    t.add_argument("--quick", action="store_true", help="the recipe's small smoke-test settings")
    t.set_defaults(fn=cmd_tune)

    cd = sub.add_parser("card", help="show a model card, or validate it (front matter and model-index)")
    cd.add_argument("path", help="a model folder or a README.md")
    cd.add_argument("--validate", action="store_true")
    cd.add_argument("--rewrite", action="store_true", help="re-render the card from config.json first")
    cd.set_defaults(fn=cmd_card)

    d = sub.add_parser("demo", help="a short tour of every task on built-in data")
    d.add_argument("tasks", nargs="*", help="only these tasks (default: all)")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--n", type=int, help="size of each task's built-in data (default: the task's own)")
    d.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    from .core.errors import EduFlashError

    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except (EduFlashError, OSError) as e:  # the user's input, a file or a folder: one line, exit 2
        print(f"edu-flash {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except TypeError as e:
        if "unexpected keyword argument" not in str(e):
            raise
        print(f"edu-flash {args.command}: error: unknown --set argument: {e}", file=sys.stderr)
        return 2
    return 0


def _one_line(e: BaseException) -> str:
    text = str(e) if not isinstance(e, OSError) or not e.filename else f"{e.filename}: {e.strerror or e}"
    return " ".join(text.split()) if isinstance(e, OSError) else text


if __name__ == "__main__":
    sys.exit(main())
