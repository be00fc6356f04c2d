"""`finetune(profile=True)`: where a training step's time goes, and a torch.profiler trace.

Every step of the run is split into phases timed with perf_counter (on a GPU after a
synchronize, so each phase owns its kernels):

    data        slicing the batch plan, the task's collate, moving the batch to the device
    forward     the task's loss (model forward + loss) under autocast
    backward    the backward pass
    optimizer   gradient clipping, optimizer and scheduler step, zero_grad, the task's after-step hook
    other       the rest of the loop: logging, callbacks, progress bar

Validation, checkpoint writes and the profiler's own work (writing the trace) are timed apart
and not counted as step time. A few steps
(`wait`, `warmup`, `active`: torch.profiler's schedule) are also traced by torch.profiler, with
the phases as named ranges; the trace goes to `<run>/profile/` (open it in Perfetto /
chrome://tracing, or TensorBoard's profiler plugin). `<run>/profile/summary.md` and `summary.json`
hold the shares, steps/s and the operators that took longest in the traced steps.
"""
from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from .errors import ConfigError

log = logging.getLogger("edu_flash.profiling")
PHASES = ("data", "forward", "backward", "optimizer")
_NULL = contextlib.nullcontext()


def check(profile) -> dict | None:
    """profile=True, False/None, or a dict of torch.profiler schedule settings (wait, warmup, active)."""
    if profile is None or profile is False:
        return None
    if profile is True:
        return {"wait": 1, "warmup": 1, "active": 3}
    if isinstance(profile, dict):
        unknown = set(profile) - {"wait", "warmup", "active"}
        if unknown:
            raise ConfigError(f"profile settings {sorted(unknown)} are unknown; use wait, warmup, active")
        out = {"wait": 1, "warmup": 1, "active": 3, **profile}
        if not all(isinstance(v, int) and v >= 0 for v in out.values()) or out["active"] < 1:
            raise ConfigError(f"profile wait/warmup must be ints >= 0 and active >= 1, got {out}")
        return out
    raise ConfigError(f"profile must be True, False or a dict of wait/warmup/active, got {profile!r}")


class NoProfiler:
    """What the trainer uses when profiling is off: every call is (almost) free."""

    enabled = False

    def phase(self, name: str):
        return _NULL

    def step_done(self) -> None:
        pass

    def start(self) -> None:
        pass

    def finish(self, *, steps: int, examples: int, world_size: int) -> None:
        return None


class StepProfiler:
    enabled = True

    def __init__(self, run_dir: Path, settings: dict, *, device, rank: int, main: bool):
        self.dir = Path(run_dir) / "profile"
        self.settings, self.device, self.rank, self.main = settings, device, rank, main
        self.totals = {p: 0.0 for p in (*PHASES, "validation", "checkpoint", "profiler")}
        self.torch_prof = None
        self.traced = 0
        self.t_loop = self.t_step = 0.0

    def start(self) -> None:
        import torch
        from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

        self.dir.mkdir(parents=True, exist_ok=True)
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device.type == "cuda" else [])
        s = self.settings
        self.torch_prof = profile(activities=acts, schedule=schedule(wait=s["wait"], warmup=s["warmup"],
                                                                     active=s["active"], repeat=1),
                                  on_trace_ready=tensorboard_trace_handler(str(self.dir), worker_name=f"rank{self.rank}"))
        self.torch_prof.__enter__()
        self._n_sched = s["wait"] + s["warmup"] + s["active"]
        self._sync = torch.cuda.synchronize if self.device.type == "cuda" else None
        self.t_loop = self.t_step = time.perf_counter()

    @contextlib.contextmanager
    def phase(self, name: str):
        from torch.profiler import record_function

        t = time.perf_counter()
        with record_function(f"edu_flash/{name}"):
            yield
            if self._sync is not None:
                self._sync()
        self.totals[name] += time.perf_counter() - t

    def step_done(self) -> None:
        if self.torch_prof is not None:  # the profiler's own work (writing the trace) is not step time
            t = time.perf_counter()
            self.torch_prof.step()
            self.traced += 1
            if self.traced >= self._n_sched:  # the schedule is over: stop tracing, keep timing
                self._close_trace()
            self.totals["profiler"] += time.perf_counter() - t

    def _close_trace(self) -> None:
        prof, self.torch_prof = self.torch_prof, None
        prof.__exit__(None, None, None)
        try:
            self.ops = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
        except Exception:  # no events recorded (a run shorter than the schedule)
            self.ops = ""

    def finish(self, *, steps: int, examples: int, world_size: int) -> dict | None:
        if self.torch_prof is not None:
            t = time.perf_counter()
            self._close_trace()
            self.totals["profiler"] += time.perf_counter() - t
        loop = time.perf_counter() - self.t_loop
        stepping = max(loop - self.totals["validation"] - self.totals["checkpoint"] - self.totals["profiler"], 1e-9)
        phases = {p: self.totals[p] for p in PHASES}
        phases["other"] = max(stepping - sum(phases.values()), 0.0)
        summary = {"steps": steps, "examples": examples, "world_size": world_size, "step_time_s": stepping,
                   "steps_per_s": steps / stepping, "examples_per_s": examples / stepping,
                   "share": {p: v / stepping for p, v in phases.items()},
                   "seconds": {**phases, **{k: self.totals[k] for k in ("validation", "checkpoint", "profiler")}},
                   "traced_steps": self.settings["active"], "trace_dir": str(self.dir)}
        if self.main:
            from .io import write_json

            write_json(self.dir / "summary.json", summary)
            (self.dir / "summary.md").write_text(_markdown(summary, getattr(self, "ops", "")), encoding="utf-8")
            log.info("profile: %.2f steps/s; data %.0f%%, forward %.0f%%, backward %.0f%%, optimizer %.0f%%, "
                     "other %.0f%% of step time (%s)", summary["steps_per_s"],
                     *(100 * summary["share"][p] for p in (*PHASES, "other")), self.dir / "summary.md")
        return summary


def make(profile: dict | None, run_dir: Path, *, device, rank: int, main: bool):
    return StepProfiler(run_dir, profile, device=device, rank=rank, main=main) if profile else NoProfiler()


def _markdown(s: dict, ops: str) -> str:
    rows = "\n".join(f"| {p} | {s['seconds'][p]:.3f} | {100 * s['share'][p]:.1f}% |" for p in (*PHASES, "other"))
    verdict = ("the data pipeline (collate / transfer) is the bottleneck" if s["share"]["data"] > 0.3
               else "the model (forward / backward) dominates" if s["share"]["forward"] + s["share"]["backward"] > 0.6
               else "no single phase dominates")
    return (f"# Training profile\n\n{s['steps']} optimizer steps, {s['examples']} examples, {s['world_size']} "
            f"process(es): **{s['steps_per_s']:.2f} steps/s**, {s['examples_per_s']:.1f} examples/s "
            f"({s['step_time_s']:.2f} s of step time; validation {s['seconds']['validation']:.2f} s, checkpoints "
            f"{s['seconds']['checkpoint']:.2f} s and the profiler's own {s['seconds']['profiler']:.2f} s not "
            "counted).\n\n"
            f"| phase | seconds | share of step time |\n|---|---|---|\n{rows}\n\nReading: {verdict}.\n\n"
            f"torch.profiler trace of {s['traced_steps']} steps: `{s['trace_dir']}` (Perfetto / chrome://tracing, "
            "or TensorBoard's profiler plugin).\n\n"
            + (f"Operators by self CPU time in the traced steps:\n\n```\n{ops}\n```\n" if ops else ""))
