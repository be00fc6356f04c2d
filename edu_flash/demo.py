"""`edu-flash demo`: every registered task, trained on its own built-in data, evaluated, asked for
one prediction and saved with its card. It goes through the same public calls a user makes, so a
task that breaks its contract breaks the tour."""
from __future__ import annotations

import time
from pathlib import Path


def _brief(obj, limit: int = 240) -> str:
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):
        obj = obj.to_dict("records")
    try:
        from PIL import Image

        items = obj if isinstance(obj, list) else [obj]
        if items and all(isinstance(x, Image.Image) for x in items):
            return f"{len(items)} image(s), {items[0].size[0]}x{items[0].size[1]} px"
    except ImportError:  # pragma: no cover
        pass
    text = repr(obj)
    return text if len(text) <= limit else text[:limit] + " ..."


def tour(tasks: list[str] | None = None, *, out: str = "runs/demo", n: int | None = None, seed: int = 0) -> dict:
    """Train, evaluate, predict and save each task; returns {task: headline metrics}."""
    from .core.registry import discover, get_task

    classes = [get_task(t) for t in tasks] if tasks else [discover()[k] for k in sorted(discover())]
    summary = {}
    for cls in classes:
        t0 = time.perf_counter()
        s = cls.builtin_data(n, seed)
        task = cls(s.backbone, **s.hparams)
        print(f"\n== {cls.__name__} ({task.backbone}) on {s.about}", flush=True)
        task.finetune(s.train, s.val, run_dir=Path(out) / "runs" / cls.task_name, progress=False, **s.finetune_args)
        metrics = task.evaluate(s.test, **s.evaluate_args)
        heads = cls.card_text.headline_metrics if cls.card_text else ()
        shown = {k: round(float(metrics[k]), 4) for k in heads if isinstance(metrics.get(k), (int, float))}
        print(f"   test: {shown}")
        print(f"   predict({_brief(s.example, 80)}) -> {_brief(task.predict(s.example))}")
        folder = task.save_pretrained(Path(out) / cls.task_name)
        print(f"   saved with its card: {folder}  ({time.perf_counter() - t0:.0f}s)", flush=True)
        summary[cls.__name__] = shown
    return summary
