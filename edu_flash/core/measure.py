"""Peak memory of a block of work, for leaderboards: GPU peak from torch's allocator when CUDA is
in use, else the process's resident memory sampled on a thread (the kernel only keeps a lifetime
maximum, which would charge every backbone with the largest one run before it)."""
from __future__ import annotations

import os
import sys
import threading


def rss_bytes() -> int:
    """Current resident set size of this process (0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        try:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return peak if sys.platform == "darwin" else peak * 1024
        except Exception:  # noqa: BLE001 - no way to measure on this platform
            return 0


class PeakMemory:
    """`with PeakMemory() as m: ...` then m.rss_mb (peak RSS above the start) and m.gpu_mb (or None)."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.rss_mb: float = 0.0
        self.gpu_mb: float | None = None
        self._stop = threading.Event()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self._start = rss_bytes()
        self._peak = self._start
        self._cuda = "torch" in sys.modules and sys.modules["torch"].cuda.is_available()
        if self._cuda:
            sys.modules["torch"].cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, rss_bytes())
        self.rss_mb = (self._peak - self._start) / 2**20
        if self._cuda:
            self.gpu_mb = sys.modules["torch"].cuda.max_memory_allocated() / 2**20
