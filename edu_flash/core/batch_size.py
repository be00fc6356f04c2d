"""`batch_size="auto"`: the largest per-device batch that fits, found before training starts.

On CUDA the probe is a real training step at the longest sequence length, and "does not fit" is a
real `torch.cuda.OutOfMemoryError` (grow by doubling, then binary search; at most 10 probes).
On CPU a real overrun is not an exception but a SIGKILL from the kernel (memory is overcommitted),
so nothing may be allowed to overrun: two small real steps are measured with torch's MemTracker
(tensor memory: weights, gradients, optimizer state, activations), the peak is fitted as
`max(optimizer step, fixed + per_example * batch)` (linear in the batch at a fixed length), and
the largest batch whose fitted peak stays within the `max_memory` budget is taken.
"""
from __future__ import annotations

import contextlib
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Callable

from .errors import ConfigError
from .precision import autocast

log = logging.getLogger("edu_flash.batch_size")

MAX_PROBES = 10
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_memory(value) -> int:
    """'4GB', '512MiB', '1.5 gb' or a number of bytes -> bytes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS or float(m.group(1)) <= 0:
        raise ConfigError(f"max_memory must be a positive size like '4GB' or '512MiB', got {value!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@dataclass
class SearchResult:
    batch_size: int
    probes: list[tuple[int, bool]] = field(default_factory=list)  # (batch, fits) in probe order


def search(fits: Callable[[int], bool], *, start: int = 1, limit: int | None = None,
           max_probes: int = MAX_PROBES, known_fit: int = 0) -> SearchResult:
    """Largest b in [1, limit] with fits(b): double from `start` until a failure or the limit,
    then binary-search between the last fit and the first failure. Never more than `max_probes`
    calls; if they run out, the largest batch seen to fit is returned. `known_fit`: a batch
    already shown to fit (a lower bound)."""
    limit = limit or 2**31
    lo, hi, b, probes = known_fit, None, max(1, min(start, limit)), []
    while len(probes) < max_probes:
        ok = bool(fits(b))
        probes.append((b, ok))
        if ok:
            lo = b
            if b >= limit:
                break
            b = min(b * 2, limit) if hi is None else (lo + hi) // 2
        else:
            hi = b
            b = (lo + hi) // 2
        if hi is not None and hi - lo <= 1:
            break
    if lo == 0:
        raise ConfigError(f"batch_size='auto': not even a batch of {hi} fits in memory "
                          f"(probes: {probes}); use a smaller max_length, precision='bf16-mixed', "
                          "or a larger max_memory")
    return SearchResult(lo, probes)


@dataclass
class LinearFit:
    """Peak bytes = max(floor, fixed + per_example * batch): the forward/backward peak grows
    linearly with the batch at a fixed length; the optimizer step's peak (weights, gradients,
    optimizer state) does not depend on it and can be the larger one for small models."""

    fixed: float
    per_example: float
    floor: float = 0.0

    @classmethod
    def from_points(cls, b1: int, m1: float, b2: int, m2: float, floor: float = 0.0) -> "LinearFit":
        per = max((m2 - m1) / (b2 - b1), 1.0)
        return cls(fixed=m1 - per * b1, per_example=per, floor=floor)

    def __call__(self, batch: int) -> float:
        return max(self.floor, self.fixed + self.per_example * batch)

    def largest_within(self, budget: float) -> int:
        return -1 if self.floor > budget else int((budget - self.fixed) // self.per_example)


def _tracker(model, opt):
    try:
        from torch.distributed._tools.mem_tracker import MemTracker
    except ImportError as e:  # torch < 2.5
        raise ConfigError("batch_size='auto' on CPU needs torch >= 2.5 (MemTracker); pass an int") from e
    tracker = MemTracker()
    tracker.track_external(model, opt)
    return tracker


def _peak(tracker) -> int:
    snap = tracker.get_tracker_snapshot("peak")
    return int(sum(v.get("Total", 0) for d, v in snap.items() if str(d).startswith("cpu")))


class _Prober:
    """Runs one real training step (forward, backward, AdamW step with lr=0, so weights do not
    move) at the worst-case length, and restores RNG and buffers so the probe leaves no trace."""

    def __init__(self, job, precision: str, device):
        self.job, self.precision, self.device = job, precision, device
        n = len(job.train)
        order = sorted(range(n), key=lambda i: -job.lengths[i]) if job.lengths is not None else range(n)
        self.pool = [job.train[i] for i in list(order)[:max(1, min(n, 64))]]

    def batch(self, b: int):
        from .trainer import _to_device

        longest = self.pool[0] if self.job.lengths is not None else None
        examples = [longest] * b if longest is not None else [self.pool[i % len(self.pool)] for i in range(b)]
        return _to_device(self.job.collate(examples), self.device)

    def step(self, b: int, measure: bool = False):
        """One step; with measure=True (CPU) returns the tensor-memory peaks of forward+backward
        (with the optimizer state a running trainer holds by then) and of the optimizer step."""
        import torch

        model = self.job.model
        rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None
        buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
        was_training = model.training
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.0, weight_decay=0.0)
        try:
            batch = self.batch(b)
            model.train()
            fwd = _tracker(model, opt) if measure else contextlib.nullcontext()
            with fwd:
                with autocast(self.precision, self.device.type):
                    loss = self.job.loss(model, batch)
                loss.backward()
            del loss
            upd = _tracker(model, opt) if measure else contextlib.nullcontext()
            with upd:
                opt.step()
            if measure:
                state = sum(t.numel() * t.element_size() for st in opt.state.values() for t in st.values()
                            if torch.is_tensor(t))
                return _peak(fwd) + state, _peak(upd)
        finally:
            model.zero_grad(set_to_none=True)
            del opt
            model.train(was_training)
            with torch.no_grad():
                for k, v in model.named_buffers():
                    v.copy_(buffers[k])
            torch.set_rng_state(rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)

    def cpu_peak(self, b: int) -> tuple[int, int]:
        return self.step(b, measure=True)

    def cuda_fits(self, b: int, budget: int | None) -> bool:
        import gc

        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self.device)
        try:
            self.step(b)
            torch.cuda.synchronize(self.device)
            return budget is None or torch.cuda.max_memory_allocated(self.device) <= budget
        except torch.cuda.OutOfMemoryError:
            return False
        finally:
            gc.collect()
            torch.cuda.empty_cache()


@dataclass
class Found:
    batch_size: int
    probes: int
    budget: int | None
    fit: LinearFit | None
    card: dict  # one line for the model card's training procedure


def find_batch_size(job, *, precision: str, device, world: int = 1, max_memory=None) -> Found:
    """The per-device batch for `job.model` (already cast and on `device`). `max_memory` bounds
    one process's tensor memory; on CPU it defaults to half the available RAM over the processes."""
    limit = max(1, math.ceil(len(job.train) / world))
    prober = _Prober(job, precision, device)
    budget = parse_memory(max_memory) if max_memory is not None else None
    if device.type == "cuda":
        import torch

        # Two small steps give a first guess to start from (peak memory is linear in the batch);
        # then real out-of-memory decides, growing from the guess or bisecting below it.
        if not prober.cuda_fits(1, budget):
            raise ConfigError("batch_size='auto': not even a batch of 1 fits in GPU memory at the longest "
                              "length; shorten max_length or use precision='bf16-mixed'")
        m1, start, known, fit = torch.cuda.max_memory_allocated(device), 1, 1, None
        if limit >= 2 and prober.cuda_fits(2, budget):
            fit = LinearFit.from_points(1, m1, 2, torch.cuda.max_memory_allocated(device))
            total = budget or torch.cuda.mem_get_info(device)[1]
            guess = (total - fit.fixed) / fit.per_example
            start, known = max(4, 2 ** int(math.log2(max(1.0, guess)))), 2
        res = search(lambda b: prober.cuda_fits(b, budget), start=start, limit=limit,
                     max_probes=MAX_PROBES - 2, known_fit=known)
        best, probes = res.batch_size, 2 + len(res.probes)
        how = f"CUDA, real out-of-memory probes{'' if budget is None else f', budget {budget / 1e9:.2f} GB'}"
    else:
        if budget is None:
            import psutil

            budget = int(psutil.virtual_memory().available * 0.5 / world)
        b1, b2 = (1, 2) if limit < 4 else (2, 4)
        b2 = min(b2, limit)
        (f1, o1), (f2, o2) = prober.cpu_peak(b1), prober.cpu_peak(b2)
        fit = LinearFit.from_points(b1, f1, b2, f2, floor=max(o1, o2)) if b2 > b1 else LinearFit(f1, 1.0, o1)
        best, probes = min(limit, fit.largest_within(budget)), 2
        if best < 1:
            raise ConfigError(f"batch_size='auto': max_memory={budget / 1e6:.0f} MB is too small: one example at "
                              f"the longest length needs about {fit(1) / 1e6:.0f} MB of tensor memory")
        how = (f"CPU, tensor-memory budget {budget / 1e6:.0f} MB; measured {fit(b1) / 1e6:.1f} MB at batch {b1}, "
               f"{fit(b2) / 1e6:.1f} MB at {b2}; fit {fit.fixed / 1e6:.1f} MB + {fit.per_example / 1e6:.2f} "
               f"MB/example, optimizer step {fit.floor / 1e6:.1f} MB")
    card = {"batch size finder": f"auto -> {best} per device ({how}; {probes} probes"
                                 f"{', capped by the data size' if best == limit else ''})"}
    log.info("batch_size='auto' -> %d per device (%s)", best, how)
    return Found(best, probes, budget, fit, card)
