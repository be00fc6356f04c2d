"""Model cards: a dataclass of card data, filled while training and evaluating, rendered as
Hugging Face-compatible markdown (YAML front matter with `model-index`) on every save.

Rendering never touches the network, and a card that fails to render never fails a save.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)
from .registry import HUB_ID as _HUB_ID  # only hub dataset ids belong in the metadata
# What a card with no results says instead of an Evaluation section; `card --validate` accepts such a
# card because it claims nothing (cardcheck.py).
NO_RESULTS = "_No evaluation recorded: call `evaluate(data)` before saving to add results here._"


@dataclass
class CardText:
    """The fixed prose a task declares once on its class."""

    title: str
    summary: str
    intended_use: str
    out_of_scope: str
    limitations: str
    how_to_use: str  # python snippet; {folder} and {cls} are filled in
    hf_task_type: str = "other"
    tags: tuple[str, ...] = ()
    headline_metrics: tuple[str, ...] = ()  # scalar metrics that go into model-index


@dataclass
class CardData:
    """Everything a card says that is learned from the run, kept in config.json so it survives a reload."""

    task: str = ""
    backbone: str = ""
    base_model: str | None = None
    datasets: list[str] = field(default_factory=list)
    training_data: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    procedure: dict[str, Any] = field(default_factory=dict)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sections: list[dict[str, str]] = field(default_factory=list)  # {"title", "markdown"}, e.g. a benchmark

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "CardData":
        d = d or {}
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})

    def add_evaluation(self, dataset: str, metrics: dict[str, float], tables: dict[str, list[dict]] | None = None,
                       split: str = "test") -> None:
        """Keep the latest evaluation per dataset (re-evaluating replaces it)."""
        self.evaluations = [e for e in self.evaluations if e["dataset"] != dataset]
        self.evaluations.append({"dataset": dataset, "split": split, "metrics": metrics, "tables": tables or {}})

    def add_section(self, title: str, markdown: str) -> None:
        """A free-form section after Evaluation (replacing one of the same title)."""
        self.sections = [x for x in self.sections if x["title"] != title] + [{"title": title, "markdown": markdown}]


def _is_hub_dataset(name) -> bool:
    import os

    return bool(name and _HUB_ID.match(name) and not os.path.exists(name)
                and not name.lower().endswith((".csv", ".tsv", ".jsonl", ".json", ".parquet")))


def _fmt(v) -> str:
    if isinstance(v, float):
        return "n/a" if v != v else f"{v:.4g}"
    return str(v)


def md_table(rows: list[dict]) -> str:
    if not rows:
        return "_(none)_"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def _metadata(text: CardText, data: CardData, model_name: str) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    results = []
    for ev in data.evaluations:
        for name in text.headline_metrics:
            v = ev["metrics"].get(name)
            if isinstance(v, (int, float)) and v == v:
                results.append(EvalResult(task_type=text.hf_task_type, task_name=text.title,
                                          dataset_type=ev["dataset"], dataset_name=ev["dataset"],
                                          dataset_split=ev.get("split"), metric_type=name, metric_name=name,
                                          metric_value=round(float(v), 6)))
    meta = ModelCardData(model_name=model_name, library_name="edu-flash", tags=["edu-flash", *text.tags],
                         base_model=data.base_model if data.base_model and "/" in data.base_model
                         and not data.base_model.startswith(("/", ".")) else None,
                         datasets=[d for d in data.datasets if _is_hub_dataset(d)] or None,
                         eval_results=results or None)
    return meta.to_yaml()


def render(text: CardText, data: CardData, *, model_name: str, folder: str, cls_name: str) -> str:
    """The whole README.md; falls back to a minimal card (and logs why) if anything goes wrong."""
    try:
        return _render(text, data, model_name=model_name, folder=folder, cls_name=cls_name)
    except Exception as e:  # a card must never break a save
        log.warning("model card rendering failed (%s); writing a minimal card", e)
        return (f"---\nlibrary_name: edu-flash\n---\n\n# {model_name}\n\n{text.summary}\n\n"
                f"_The full card could not be rendered: {e}_\n")


def _render(text: CardText, data: CardData, *, model_name: str, folder: str, cls_name: str) -> str:
    s = [f"---\n{_metadata(text, data, model_name).rstrip()}\n---\n", f"# {model_name}\n", text.summary + "\n",
         f"- **Task:** {text.title} (`{cls_name}`, edu-flash)\n- **Backbone:** `{data.backbone}`\n"]
    s += ["## Intended use\n", text.intended_use + "\n", "## Out-of-scope use\n", text.out_of_scope + "\n"]
    s.append("## Training data\n")
    if data.training_data:
        s.append("\n".join(f"- **{k}:** {_fmt(v)}" for k, v in data.training_data.items()) + "\n")
    else:
        s.append("_Not trained yet._\n")
    s.append("## Evaluation\n")
    if not data.evaluations:
        s.append(NO_RESULTS + "\n")
    for ev in data.evaluations:
        s.append(f"### {ev['dataset']} ({ev.get('split', 'test')})\n")
        scalars = [{"metric": k, "value": v} for k, v in ev["metrics"].items() if isinstance(v, (int, float))]
        s.append(md_table(scalars) + "\n")
        for title, rows in ev.get("tables", {}).items():
            s.append(f"**{title}**\n\n{md_table(rows)}\n")
    for sec in data.sections:
        s.append(f"## {sec['title']}\n\n{sec['markdown'].strip()}\n")
    s += ["## Limitations and bias\n", text.limitations + "\n"]
    if data.notes:
        s.append("\n".join(f"- {n}" for n in data.notes) + "\n")
    s.append("## Training procedure\n")
    if data.procedure:
        s.append("\n".join(f"- **{k}:** {_fmt(v)}" for k, v in data.procedure.items()) + "\n")
    if data.hyperparameters:
        s.append("**Hyperparameters**\n\n" + md_table([{"name": k, "value": v}
                                                      for k, v in data.hyperparameters.items()]) + "\n")
    s += ["## How to use\n", "```python\n" + text.how_to_use.format(folder=folder, cls=cls_name).strip()
          + "\n```\n"]
    return "\n".join(s)


def dataset_label(data, source: str, name: str | None = None) -> str:
    """What the card calls a data set: the user's `dataset_name`, else a file's name, else what it is."""
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"dataset_name must be a non-empty string, got {name!r}")
        return name.strip()
    if isinstance(data, (str, os.PathLike)) or os.path.exists(source):
        return Path(source).name or source
    if source.endswith(" (DataFrame)"):
        return "an in-memory pandas DataFrame (name it with dataset_name=)"
    return source
