"""The one training loop every torch task uses, on accelerate.

A task hands over a `TrainJob` (model, examples, collate, loss, optional validation); the trainer
owns devices, precision, optimizer and schedule, gradient accumulation and clipping, early
stopping, checkpoints with exact resume, progress, and the run's trackers (core.tracking),
callbacks (core.callbacks) and step profile (core.profiling).

In a distributed run (started by core.launch or by torchrun) every rank builds the same global
batches and trains on its slice. DDP is accelerate's; FSDP2 is applied with torch's `fully_shard`
(core.sharding), because accelerate ignores its FSDP plugin on CPU. `batch_size="auto"` is
resolved here (core.batch_size), before the model is wrapped.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from . import checkpoint, logger, runs
from .errors import ConfigError
from .hparams import TrainHParams
from .io import isatty
from .trainer_parts import (_accelerator, _full_state, _monitor, _param_groups, _to_device, _validate,  # noqa: F401
                            check_config, hardware_name)

log = logging.getLogger("edu_flash.trainer")


@dataclass
class TrainJob:
    """What a task gives the trainer. `loss(model, batch)` returns a scalar tensor;
    `validate(model)` returns metrics (run on every rank, under eval mode and no grad)."""

    model: Any
    train: Sequence[Any]
    collate: Callable[[list], dict]
    loss: Callable[[Any, dict], Any]
    lengths: Sequence[int] | None = None
    validate: Callable[[Any], dict] | None = None
    monitor: str | None = None
    mode: str = "max"
    # Called after every optimizer step with the unwrapped model (e.g. an EMA update).
    after_step: Callable[[Any], None] | None = None
    # Extra training state the job owns (e.g. EMA weights): tensors saved in checkpoints for exact resume.
    state_tensors: Callable[[], dict] | None = None
    load_state_tensors: Callable[[dict], None] | None = None


@dataclass
class TrainReport:
    """What happened, for the model card and the caller."""

    epochs: int = 0
    steps: int = 0
    wall_time_s: float = 0.0
    examples_per_s: float = 0.0
    final_train_loss: float | None = None
    best_metric: float | None = None
    monitor: str | None = None
    stopped_early: bool = False
    resumed_from: str | None = None
    history: list[dict] = field(default_factory=list)
    precision: str = "32"
    strategy: str = "auto"
    world_size: int = 1
    per_device_batch_size: int = 0
    hardware: str = ""
    extra: dict = field(default_factory=dict)  # more lines for the card's training procedure
    stop_reason: str | None = None  # early stopping or a callback's stop()
    profile: dict | None = None     # profile=True: the step-time summary (core.profiling)
    run_dir: str | None = None      # where metrics, logs and (while training) checkpoints went


def batch_plan(n: int, global_batch: int, *, seed: int, epoch: int, lengths: Sequence[int] | None,
               shuffle: bool = True) -> list[list[int]]:
    """Global batches of example indices for one epoch, identical on every rank.

    With lengths, examples are grouped by length inside shuffled mega-batches (50 batches) so each
    batch pads little, while the batch order stays random (like HF's group_by_length).
    """
    import torch

    g = torch.Generator().manual_seed(seed * 100003 + epoch)
    order = torch.randperm(n, generator=g).tolist() if shuffle else list(range(n))
    if lengths is not None:
        mega = global_batch * 50
        order = [i for s in range(0, n, mega)
                 for i in sorted(order[s:s + mega], key=lambda j: -lengths[j])]
    batches = [order[s:s + global_batch] for s in range(0, n, global_batch)]
    if lengths is not None and shuffle:
        perm = torch.randperm(len(batches), generator=g).tolist()
        batches = [batches[i] for i in perm]
    return batches


class Trainer:
    """`loggers`: see core.tracking ("auto": CSV + TensorBoard when installed); `callbacks`: see
    core.callbacks; `profile`: see core.profiling. `project` / `run_name` name the run in the
    trackers, `config` is what they record as its hyperparameters (default: hp). `schedule`
    (optimizer, total_steps) -> LR scheduler replaces the hp.scheduler one (the LR finder's)."""

    def __init__(self, hp: TrainHParams, *, run_dir: str | os.PathLike, devices: int = 1,
                 strategy: str = "auto", resume: bool = False, progress: bool | None = None,
                 log: bool = True, max_memory: int | str | None = None, loggers="auto", callbacks=None,
                 profile=False, project: str = "edu-flash", run_name: str | None = None, config: dict | None = None,
                 schedule: Callable | None = None):
        from . import callbacks as cb, profiling, tracking

        check_config(hp, strategy, max_memory)
        self._announce = progress is not False  # print where the run folder is (core.runs)
        self.hp, self.run_dir, self.devices, self.strategy = hp, Path(run_dir), devices, strategy
        self.resume, self.log, self.max_memory = resume, log, max_memory
        self.checkpoints = log  # epoch-end (and every `checkpoint_every` steps) checkpoints in run_dir
        self.progress = isatty(sys.stderr) if progress is None else progress  # False under pythonw
        self.loggers = tracking.resolve(loggers if log else None)
        self.callbacks = cb.check(callbacks)
        self.profile = profiling.check(profile)
        self.project, self.run_name, self.config, self.schedule = project, run_name, config, schedule
        self.tracking = None

    def close(self, card: str | None = None) -> None:
        """Send the model card to the trackers and close them (after `fit(..., keep_open=True)`)."""
        if self.tracking is not None:
            self.tracking.finish(card)

    def fit(self, job: TrainJob, *, keep_open: bool = False) -> TrainReport:
        """Train; the trackers stay open with keep_open=True until `close(card)` is called."""
        from .tracking import Tracking

        # the run folder is locked before anything is written to it (main process only; core.runs)
        lock = runs.start(self.run_dir, announce=self._announce) if self.checkpoints and runs.is_main() else None
        try:
            self.tracking = Tracking(self.loggers, self.run_dir, project=self.project,
                                     run_name=self.run_name or self.run_dir.name)
            try:
                report = self._fit(job)
            except BaseException:
                self.tracking.finish(failed=True)
                raise
        finally:
            if lock is not None:
                lock.release()
        if lock is not None:  # ended normally: nothing left to resume
            runs.finish(self.run_dir, keep_checkpoints=self.hp.keep_checkpoints)
        report.run_dir = str(self.run_dir) if self.checkpoints else None
        if not keep_open:
            self.close()
        return report

    def _fit(self, job: TrainJob) -> TrainReport:
        import torch
        from transformers import get_scheduler

        from . import profiling
        from .callbacks import TrainState, dispatch
        from .precision import effective
        from .threads import resume_threads

        hp = self.hp
        precision = effective(hp.precision, "cuda" if torch.cuda.is_available() else "cpu")
        acc = _accelerator(precision, timeout=hp.timeout, **self.tracking.accelerator_kwargs())
        rank, world, main = acc.process_index, acc.num_processes, acc.is_main_process
        if self.devices > 1 and self.devices != world:
            log.warning("devices=%d but the launcher started %d processes; training on %d", self.devices, world, world)
        strategy = "single" if world == 1 else ("fsdp" if self.strategy == "fsdp" else "ddp")
        monitor, mode = _monitor(hp, job)
        model = job.model
        if precision == "bf16-true":
            model = model.to(torch.bfloat16)
        report = TrainReport(precision=precision, strategy=strategy, world_size=world,
                             hardware=hardware_name(acc.device), monitor=monitor)
        if precision != hp.precision:
            report.extra["precision asked"] = f"{hp.precision} (no native bf16 on this hardware: ran in fp32)"
        batch_size = hp.batch_size
        if batch_size == "auto":
            from .batch_size import find_batch_size

            job.model = model.to(acc.device)
            found = find_batch_size(job, precision=precision, device=acc.device, world=world,
                                    max_memory=self.max_memory)
            # Every rank must use the same batch: take the smallest any rank found.
            batch_size = int(acc.gather(torch.tensor([found.batch_size], device=acc.device)).min())
            report.extra.update(found.card)
        report.per_device_batch_size = batch_size
        view = plain = None
        if strategy == "fsdp":
            from .sharding import CheckpointView, shard_model

            plain = copy.deepcopy(model)  # the unsharded model handed back after training
            model = shard_model(model, acc.device)
            optimizer = torch.optim.AdamW(_param_groups(model, hp.weight_decay), lr=hp.lr)
            optimizer = acc.prepare(optimizer)
            view = CheckpointView(model, optimizer)
        else:
            optimizer = torch.optim.AdamW(_param_groups(model, hp.weight_decay), lr=hp.lr)
            model, optimizer = acc.prepare(model, optimizer)
        global_batch = batch_size * world
        n_batches = math.ceil(len(job.train) / global_batch)
        steps_per_epoch = math.ceil(n_batches / hp.grad_accum)
        total = min(hp.max_steps or 10**12, steps_per_epoch * hp.max_epochs)
        scheduler = (self.schedule(optimizer.optimizer, total) if self.schedule is not None else
                     get_scheduler(hp.scheduler, optimizer.optimizer, num_warmup_steps=int(hp.warmup_ratio * total),
                                   num_training_steps=total))
        raw = acc.unwrap_model(model) if view is None else model
        tracker = self.tracking
        tracker.start(acc, {**hp.to_dict(), **(self.config or {})}, main=main)
        prog = {"epoch": 0, "batch": 0, "step": 0, "best": None, "bad_epochs": 0, "history": [],
                "examples": 0, "train_time": 0.0, "global_batch": global_batch, "stopped": None,
                "threads": torch.get_num_threads() if acc.device.type == "cpu" else None}
        best_state = None
        if self.resume:
            ck = checkpoint.latest(self.run_dir)
            if ck is not None:
                prog, best_state = checkpoint.load(ck, model=view or raw, scheduler=scheduler, rank=rank,
                                                   optimizer=view.optimizer_view if view else optimizer,
                                                   load_extra=job.load_state_tensors)
                report.resumed_from = str(ck)
                if main and self.log:  # the steps after the checkpoint are trained, and logged, again
                    logger.truncate(self.run_dir, prog["step"])
                if acc.device.type == "cpu":  # the thread count changes the weights' last bits (core.threads)
                    kept = resume_threads(prog.get("threads"), ck)
                    if kept:
                        report.extra["CPU threads"] = f"{kept} (the checkpoint's, for an exact resume)"
                    prog["threads"] = torch.get_num_threads()
                if prog.get("global_batch", global_batch) != global_batch:  # batch positions would not match
                    raise ConfigError(f"{ck} was written with a global batch of {prog['global_batch']}, this run "
                                      f"has {global_batch} ({world} x {batch_size}): resume with the same "
                                      "batch_size and number of devices")
        sign = 1 if mode == "max" else -1
        bar = None
        if self.progress and main:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=prog["step"], desc="train", unit="step", dynamic_ncols=True)
        t_start, loss_sum, loss_n = time.perf_counter(), 0.0, 0
        done = prog["step"] >= total or bool(prog.get("stopped"))
        examples0, train_time0, step0 = prog["examples"], prog["train_time"], prog["step"]
        prof = profiling.make(self.profile, self.run_dir, device=acc.device, rank=rank, main=main)
        cbs = self.callbacks
        state = TrainState(total_steps=total, max_epochs=hp.max_epochs, monitor=monitor, mode=mode,
                           resumed=report.resumed_from is not None, run_dir=self.run_dir, rank=rank, world_size=world,
                           model=raw, optimizer=optimizer, scheduler=scheduler, accelerator=acc,
                           _log=lambda m: tracker.log(m, step=prog["step"], epoch=prog["epoch"]),
                           _state_dict=lambda: _full_state(raw, view))

        def call(event: str, **fields) -> bool:
            """Run the callbacks' `event`; True when any rank asked to stop."""
            state.step, state.epoch, state.best, state.history = prog["step"], prog["epoch"], prog["best"], prog["history"]
            state.examples, state.elapsed_s = prog["examples"] - examples0, time.perf_counter() - t_start
            for k, v in fields.items():
                setattr(state, k, v)
            stop = dispatch(cbs, event, state)
            if world > 1:  # every rank stops at the same step, or the collectives would hang
                stop = bool(acc.reduce(torch.tensor([float(stop)], device=acc.device), "sum").item() > 0)
            if stop and not prog.get("stopped"):
                prog["stopped"] = state.stop_reason or "stopped by a callback"
            return stop

        def ckpt():  # reads best_state when called
            with prof.phase("checkpoint"):
                path = self._checkpoint(acc, raw, view, optimizer, scheduler, prog, best_state, t_start, train_time0,
                                        job)
            if cbs:
                call("on_checkpoint", checkpoint_path=path)

        prof.start()
        try:
            if cbs and call("on_train_start"):
                done = True
            while prog["epoch"] < hp.max_epochs and not done:
                epoch = prog["epoch"]
                batches = batch_plan(len(job.train), global_batch, seed=hp.seed, epoch=epoch,
                                     lengths=job.lengths if hp.group_by_length else None)
                model.train()
                for b in range(prog["batch"], len(batches)):
                    with prof.phase("data"):
                        # Each rank takes its slice of the global batch (a rank left empty by the last,
                        # short batch repeats its first example, so collectives stay in step).
                        mine = batches[b][rank * batch_size:(rank + 1) * batch_size] or batches[b][:1]
                        batch = _to_device(job.collate([job.train[i] for i in mine]), acc.device)
                    sync = (b + 1) % hp.grad_accum == 0 or b + 1 == len(batches)
                    if view is not None:
                        model.set_requires_gradient_sync(sync)
                    with (contextlib.nullcontext() if sync or view else acc.no_sync(model)), acc.autocast():
                        with prof.phase("forward"):
                            loss = job.loss(model, batch)
                        with prof.phase("backward"):
                            acc.backward(loss / hp.grad_accum)
                    loss_sum, loss_n = loss_sum + float(loss.detach()), loss_n + 1
                    prog["examples"] += len(batches[b])
                    if not sync:
                        continue
                    with prof.phase("optimizer"):
                        if hp.clip_norm:
                            acc.clip_grad_norm_(model.parameters(), hp.clip_norm)
                        optimizer.step()
                        scheduler.step()
                        optimizer.zero_grad(set_to_none=True)
                        if job.after_step is not None:
                            job.after_step(raw)
                    prog["step"] += 1
                    prog["batch"] = b + 1
                    train_loss, lr = loss_sum / loss_n, scheduler.get_last_lr()[0]
                    report.final_train_loss = train_loss
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{train_loss:.4f}", epoch=epoch)
                    tracker.log({"train_loss": train_loss, "lr": lr}, step=prog["step"], epoch=epoch)
                    loss_sum, loss_n = 0.0, 0
                    prof.step_done()
                    done = prog["step"] >= total
                    if cbs and call("on_step_end", train_loss=train_loss, lr=lr):
                        done = True
                    if (self.checkpoints and hp.checkpoint_every and prog["step"] % hp.checkpoint_every == 0
                            and not done and b + 1 < len(batches)):
                        ckpt()
                    if done:
                        break
                if prog["batch"] >= len(batches):
                    prog["epoch"], prog["batch"] = epoch + 1, 0
                if job.validate is not None and (prog["batch"] == 0 or done):
                    with prof.phase("validation"):
                        metrics = _validate(job, model)
                    if monitor is not None and hp.monitor is not None and monitor not in metrics:
                        raise ConfigError(f"monitor={hp.monitor!r} is not a validation metric of this task; "
                                          f"it reports {sorted(metrics)}")
                    prog["history"].append({"epoch": epoch + 1, "step": prog["step"], **metrics})
                    tracker.log({f"val_{k}": v for k, v in metrics.items()}, step=prog["step"], epoch=epoch)
                    cur = metrics.get(monitor) if monitor else None
                    if cur is not None and cur == cur:
                        if prog["best"] is None or sign * (cur - prog["best"]) > 0:
                            prog["best"], prog["bad_epochs"] = cur, 0
                            best_state = _full_state(raw, view)
                        else:
                            prog["bad_epochs"] += 1
                            if hp.patience is not None and prog["bad_epochs"] >= hp.patience:
                                report.stopped_early, done = True, True
                                prog["stopped"] = f"early stopping ({monitor} did not improve for {hp.patience} epochs)"
                    if cbs and call("on_validation_end", metrics=metrics):
                        done = True
                if self.checkpoints:
                    ckpt()
        finally:
            if bar is not None:
                bar.close()
        report.profile = prof.finish(steps=prog["step"] - step0, examples=prog["examples"] - examples0, world_size=world)
        if view is not None:  # hand back a plain model holding the full (best or last) weights
            plain.load_state_dict(best_state if best_state is not None else _full_state(raw, view))
            job.model = plain.to(acc.device)
        else:
            if best_state is not None:
                raw.load_state_dict(best_state)
            # Drop accelerate's autocast wrapper on forward: the returned model predicts in full precision.
            job.model = acc.unwrap_model(model, keep_fp32_wrapper=False)
        report.steps, report.epochs = prog["step"], prog["epoch"]
        report.best_metric, report.history = prog["best"], prog["history"]
        report.stop_reason = prog.get("stopped")
        report.stopped_early = report.stopped_early or bool(prog.get("stopped"))
        report.wall_time_s = train_time0 + (time.perf_counter() - t_start)
        report.examples_per_s = (prog["examples"] - examples0) / max(time.perf_counter() - t_start, 1e-9)
        if cbs:
            state.model = job.model
            call("on_train_end")
        acc.wait_for_everyone()
        return report

    def _checkpoint(self, acc, raw, view, optimizer, scheduler, prog, best_state, t_start, train_time0, job):
        prog["train_time"] = train_time0 + (time.perf_counter() - t_start)
        acc.wait_for_everyone()
        if view is not None:
            state = view.gather()  # collective; the full state lands on rank 0
        else:
            state = {k: v.detach().cpu() for k, v in raw.state_dict().items()} if acc.is_main_process else {}
        path = None
        if acc.is_main_process:
            path = checkpoint.save(self.run_dir, step=prog["step"], model_state=state, scheduler=scheduler,
                                   optimizer=view.optimizer_view if view is not None else optimizer,
                                   progress=prog, best_state=best_state, rank=0,
                                   extra=job.state_tensors() if job.state_tensors else None)
        acc.wait_for_everyone()
        return path
