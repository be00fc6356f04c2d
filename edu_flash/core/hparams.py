"""Typed, validated hyperparameters that round-trip through config.json.

A task's defaults are a dataclass subclassing `HParams`; field metadata gives the allowed values
(`choices`) and bounds (`min`, `max`). Validation runs on construction and on every `replace`, so a
typo or out-of-range value fails before any data is read or any model is built.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import ConfigError

PRECISIONS = ("32", "bf16-mixed", "16-mixed", "bf16-true")
STRATEGIES = ("auto", "ddp", "fsdp")


def choice(default, choices, **kw):
    return field(default=default, metadata={"choices": tuple(choices), **kw})


def bounded(default, min=None, max=None, **kw):
    return field(default=default, metadata={"min": min, "max": max, **kw})


def _type_ok(value, tp) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    return isinstance(value, tp) if isinstance(tp, type) else True


_WORDS = {float: "a number", int: "a whole number", bool: "true or false", str: "text", type(None): "None",
          dict: "a mapping"}


def type_words(tp) -> str:
    """A type annotation as a user reads it: `float | None` -> "a number or None"."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        return " or ".join(dict.fromkeys(type_words(a) for a in args if a is not type(None))) + (
            " or None" if type(None) in args else "")
    if origin in (list, tuple):
        return "a list"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return _WORDS.get(tp, getattr(tp, "__name__", str(tp)))


@dataclass
class HParams:
    """Base for task hyperparameters: validated on creation, JSON round-trip, `replace` with checks."""

    kind: ClassVar[str] = "hparams"

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and f.type in (int, "int") and v.is_integer():
                v = int(v)
                setattr(self, f.name, v)
            if isinstance(v, str) and not _type_ok(v, hints[f.name]) and _type_ok(1.0, hints[f.name]):
                try:  # YAML 1.1 and command lines hand over "1e-4" as text
                    v = float(v)
                    setattr(self, f.name, v)
                except ValueError:
                    pass
            if not _type_ok(v, hints[f.name]):
                raise ConfigError(f"hyperparameter {f.name} must be {type_words(hints[f.name])}, got {v!r} "
                                  f"({type(self).__name__})")
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"hyperparameter {f.name} must be a finite number, got {v!r} ({type(self).__name__})")
            md = f.metadata
            if "choices" in md and v not in md["choices"]:
                raise ConfigError(f"{type(self).__name__}.{f.name}={v!r} is not one of {list(md['choices'])}")
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if md.get("min") is not None and v < md["min"]:
                    raise ConfigError(f"{type(self).__name__}.{f.name}={v!r} is below its minimum {md['min']}")
                if md.get("max") is not None and v > md["max"]:
                    raise ConfigError(f"{type(self).__name__}.{f.name}={v!r} is above its maximum {md['max']}")
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; subclasses extend."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict, *, strict: bool = True):
        unknown = set(d) - set(cls.names())
        if unknown and strict:
            raise ConfigError(f"unknown hyperparameter(s) {sorted(unknown)} for {cls.__name__}; "
                              f"valid: {cls.names()}")
        return cls(**{k: v for k, v in d.items() if k in cls.names()})

    def replace(self, **changes):
        unknown = set(changes) - set(self.names())
        if unknown:
            raise ConfigError(f"unknown hyperparameter(s) {sorted(unknown)} for {type(self).__name__}; "
                              f"valid: {self.names()}")
        return dataclasses.replace(self, **changes)


@dataclass
class TrainHParams(HParams):
    """What the shared trainer needs; every torch task's hyperparameters extend this."""

    max_epochs: int = bounded(3, min=1)
    max_steps: int | None = None
    batch_size: int | str = 16
    lr: float = bounded(5e-5, min=0.0)  # or "auto": core.lr_finder's range test picks it in finetune
    weight_decay: float = bounded(0.01, min=0.0)
    warmup_ratio: float = bounded(0.1, min=0.0, max=1.0)
    scheduler: str = choice("linear", ("linear", "cosine", "constant", "constant_with_warmup"))
    grad_accum: int = bounded(1, min=1)
    clip_norm: float | None = 1.0
    precision: str = choice("32", PRECISIONS)
    patience: int | None = 2
    checkpoint_every: int | None = None
    keep_checkpoints: bool = False  # keep the run's resume checkpoint after a run that ended normally
    group_by_length: bool = True
    seed: int = 0
    # What early stopping and the returned best weights follow (None: the task's own metric / its direction)
    monitor: str | None = None
    mode: str | None = choice(None, (None, "max", "min"))
    # Seconds a distributed run may wait: on one collective, or for a silent worker of devices=N
    # (core.launch's heartbeat). Past it the run fails with a DistributedError naming the rank.
    timeout: float = bounded(300.0, min=1.0)

    def __post_init__(self):
        auto_lr = self.lr == "auto"  # a task's `lr: float` field takes "auto" too
        if auto_lr:
            self.lr = 0.0
        try:
            super().__post_init__()
        finally:
            if auto_lr:
                self.lr = "auto"

    def validate(self) -> None:
        super().validate()
        if isinstance(self.batch_size, str) and self.batch_size != "auto":
            raise ConfigError(f"batch_size must be a positive int or 'auto', got {self.batch_size!r}")
        if isinstance(self.batch_size, int) and self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be >= 1 or None, got {self.checkpoint_every}")
