"""Callbacks for the tests, in a module of their own so the worker processes of `devices=2` can
import them by name (callbacks travel to workers as JSON: import path + constructor arguments)."""
from __future__ import annotations

import json
from pathlib import Path

from edu_flash.callbacks import Callback


class Recorder(Callback):
    """Records every event with the state fields a callback is promised."""

    def __init__(self):
        self.events: list[tuple] = []

    def on_train_start(self, state):
        self.events.append(("train_start", state.step, state.epoch, state.total_steps))

    def on_step_end(self, state):
        self.events.append(("step_end", state.step, state.epoch, state.train_loss, state.lr))

    def on_validation_end(self, state):
        self.events.append(("validation_end", state.step, state.epoch, dict(state.metrics)))

    def on_checkpoint(self, state):
        self.events.append(("checkpoint", state.step, state.checkpoint_path))

    def on_train_end(self, state):
        self.events.append(("train_end", state.step, state.model is not None))


class StopAtStep(Callback):
    """Rank 0 alone asks to stop at `step`; every rank writes what it did into `out_dir`."""

    def __init__(self, step: int, out_dir: str | None = None):
        self.step, self.out_dir = step, out_dir

    def on_step_end(self, state):
        if state.is_main and state.step >= self.step:
            state.stop(f"step {self.step} reached")

    def on_train_end(self, state):
        if self.out_dir:
            Path(self.out_dir).mkdir(parents=True, exist_ok=True)
            (Path(self.out_dir) / f"rank{state.rank}.json").write_text(json.dumps(
                {"rank": state.rank, "world": state.world_size, "step": state.step}))
