"""What surrounds every task's `finetune`, through any task override that calls core's: the CPU
thread count it trains with, the wall time the card reports, closing the run's trackers, and the
exception that carries a probe's result (lr_find, tune) out without training."""
from __future__ import annotations

import functools
import time


class Probed(Exception):
    """Carries a probe's result out of `finetune` (through any task override) without training."""

    def __init__(self, result):
        super().__init__("finetune probe")
        self.result = result


def whole_finetune(fn):
    """Time `finetune` from its first line to its return, through any task override that calls core's
    (data checks, feature building, the fit, thresholds, a reference model: everything the user waits for),
    under the CPU thread count it trains with (core/threads.py); then send the finished card to the run's
    trackers and close them."""
    @functools.wraps(fn)
    def finetune(self, *args, **kwargs):
        if getattr(self, "_finetune_t0", None) is not None:  # an override calling super().finetune
            return fn(self, *args, **kwargs)
        from .threads import training_threads

        self._finetune_t0, ok = time.perf_counter(), False
        try:
            with training_threads(kwargs.get("threads")) as n:
                out = fn(self, *args, **kwargs)
            ok = True
        finally:
            t0, self._finetune_t0 = self._finetune_t0, None
            trackers = self.__dict__.pop("_run_trackers", None)
            if trackers is not None and not ok:
                trackers.close()
        if isinstance(self.card.procedure, dict) and n:
            self.card.procedure.setdefault("CPU threads", n)
        if isinstance(self.card.procedure, dict) and "wall time (s)" in self.card.procedure:
            self.card.procedure["wall time (s)"] = round(time.perf_counter() - t0, 1)
        if trackers is not None:
            trackers.close(card=self._card_or_none())
        return out

    return finetune


def probe_finetune(task, probe, data, val=None, **kwargs):
    """Run `finetune`'s whole data path (every task's own data forms and checks) on a deep copy of
    `task`, then `probe(task_copy, prepared, hp, run_dir)` in place of training; its result is
    returned. The task and the RNG states are left as they were (lr_find, tune)."""
    import copy

    from .checkpoint import rng_state, set_rng_state

    rng, clone = rng_state(), copy.deepcopy(task)
    clone._probe = probe
    kwargs = {**{k: v for k, v in kwargs.items() if k not in ("callbacks", "profile")}, "loggers": None}
    try:
        clone.finetune(data, val, **kwargs)
    except Probed as done:
        return done.result
    finally:
        set_rng_state(*rng)
    raise RuntimeError(f"{type(task).__name__}.finetune returned without reaching the probe")


def check_data_kwargs(task, kwargs: dict) -> None:
    """A misspelt keyword must fail with the valid names, not as a TypeError deep inside."""
    import inspect

    from .errors import ConfigError

    params = inspect.signature(task._prepare).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    data_args = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(kwargs) - set(data_args))
    if unknown:
        raise ConfigError(f"unknown finetune argument(s) {unknown}; hyperparameters: "
                          f"{task.hparams_cls.names()}; data arguments: {data_args}")
