"""How many CPU threads training uses when the user does not say.

torch starts one thread per physical core. On a machine whose cores are busy with other work,
OpenMP threads then wait on each other: on a loaded 2-core machine one thread trained 4-20x faster
than torch's two (BENCHMARKS.md). So, by default, `finetune` lowers the thread count (torch's, and
the BLAS / OpenMP pools scikit-learn uses) to the cores that are free when it starts — the cores this
process may run on minus the 1-minute load average, shared among the processes of a distributed run
on this machine — and restores it afterwards. It never raises a count the user set.

Choose yourself with `finetune(..., threads=N)` or `EDU_FLASH_THREADS=N`; `threads=0` (or setting
OMP_NUM_THREADS) leaves the thread counts alone.

On CPU the thread count changes the last bits of the trained weights (parallel reductions are split
differently), so checkpoints record it and `resume=True` with the automatic choice trains on with the
checkpoint's count: the resumed run stays bit-identical to an uninterrupted one even when the load
changed in between (`resume_threads`).
"""
from __future__ import annotations

import contextlib
import os

from .errors import ConfigError

ENV = "EDU_FLASH_THREADS"
_automatic = False  # True while training_threads chose the count itself (the user set none)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def free_cores() -> int:
    """Usable cores minus the 1-minute load average (rounded), per local process of a distributed run."""
    n = usable_cores()
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows): assume a quiet machine
        busy = 0.0
    local = int(os.environ.get("LOCAL_WORLD_SIZE") or os.environ.get("WORLD_SIZE") or 1)
    return max(1, int(max(n - busy, 0) + 0.5) // max(local, 1))


def check_threads(threads) -> int | None:
    """`threads` argument -> an explicit count, 0 (leave alone) or None (automatic)."""
    if threads is None:
        env = os.environ.get(ENV)
        if env is None:
            return 0 if any(os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")) else None
        try:
            threads = int(env)
        except ValueError:
            raise ConfigError(f"{ENV}={env!r} must be a whole number (0: leave thread counts alone)") from None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ConfigError(f"threads must be a whole number >= 0 (0: leave thread counts alone) or None "
                          f"(automatic), got {threads!r}")
    return threads


@contextlib.contextmanager
def training_threads(threads=None):
    """Apply the thread count for the duration of a finetune (see the module docstring)."""
    n = check_threads(threads)
    automatic = n is None
    if n == 0:
        yield None
        return
    import torch

    old = torch.get_num_threads()
    if n is None:
        if torch.cuda.is_available():  # CPU threads barely matter to GPU training
            yield None
            return
        n = min(old, free_cores())
    from threadpoolctl import threadpool_limits

    global _automatic
    torch.set_num_threads(n)
    was, _automatic = _automatic, automatic
    try:
        with threadpool_limits(n):
            yield n
    finally:
        torch.set_num_threads(old)
        _automatic = was


def resume_threads(recorded: int | None, where) -> int | None:
    """Resuming a CPU run from a checkpoint trained with `recorded` threads: under the automatic choice,
    train on with that count (returned) so the weights stay bit-identical to an uninterrupted run; under
    a count the user chose, keep it and warn that the resumed weights will differ in the last bits."""
    import torch

    now = torch.get_num_threads()
    if not recorded or recorded == now:
        return None
    if _automatic:
        torch.set_num_threads(recorded)
        return recorded
    import warnings

    warnings.warn(f"{where} was trained with {recorded} CPU threads and this run uses {now}: on CPU the "
                  f"resumed weights then differ from an uninterrupted run's in the last bits; pass "
                  f"threads={recorded} (or leave threads unset) for an exact resume", stacklevel=2)
    return None
