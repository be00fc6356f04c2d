"""The pieces of a training run around the loop itself (core.trainer): the configuration check
done before any data is read, the Accelerator, the optimizer's parameter groups, moving batches,
validation and the metric the run follows."""
from __future__ import annotations

import os
import platform

from .errors import ConfigError
from .hparams import PRECISIONS, STRATEGIES, TrainHParams


def hardware_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__})"


def check_config(hp: TrainHParams, strategy: str, max_memory=None) -> None:
    """What must stop a run before any data is read or any worker process is started."""
    import torch

    from .batch_size import parse_memory

    if hp.precision not in PRECISIONS:
        raise ConfigError(f"precision {hp.precision!r} is not one of {list(PRECISIONS)}")
    if hp.precision == "16-mixed" and not torch.cuda.is_available():
        raise ConfigError("precision='16-mixed' needs a CUDA GPU; on CPU use 'bf16-mixed' or '32'")
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy {strategy!r} is not one of {list(STRATEGIES)}")
    if not (isinstance(hp.batch_size, int) or hp.batch_size == "auto"):
        raise ConfigError(f"batch_size must be a positive int or 'auto', got {hp.batch_size!r}")
    if max_memory is not None:
        parse_memory(max_memory)


def _accelerator(precision: str, *, timeout: float, **kwargs):
    import datetime

    import torch
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import InitProcessGroupKwargs

    # accelerate keeps one state per process and refuses a second run with another precision;
    # the process group (PartialState) is kept.
    AcceleratorState._reset_state()
    GradientState._reset_state()
    cuda = torch.cuda.is_available()
    mp = {"32": "no", "bf16-mixed": "bf16", "16-mixed": "fp16", "bf16-true": "no"}[precision]
    # cpu=True on a CPU-only machine: a plain Accelerator() under torchrun would not go distributed.
    # `timeout` bounds every collective (the process group is made by the first Accelerator of a process).
    return Accelerator(cpu=not cuda, mixed_precision=mp, **kwargs,
                       kwargs_handlers=[InitProcessGroupKwargs(timeout=datetime.timedelta(seconds=timeout))])


def _monitor(hp: TrainHParams, job) -> tuple[str | None, str]:
    """What early stopping and the returned best weights follow: the `monitor` / `mode`
    hyperparameters when set, else the task's own choice."""
    from .callbacks import default_mode, metric_name

    if hp.monitor is None:
        return job.monitor, hp.mode or job.mode
    if job.validate is None:
        raise ConfigError(f"monitor={hp.monitor!r} needs validation data: pass val=...")
    name = metric_name(hp.monitor)
    return name, hp.mode or (job.mode if name == job.monitor else default_mode(name))


def _full_state(raw, view) -> dict:
    """A CPU copy of the full weights on every rank (gathered from the shards under FSDP)."""
    if view is not None:
        from .sharding import full_state_dict

        return full_state_dict(raw)
    return {k: v.detach().cpu().clone() for k, v in raw.state_dict().items()}


def _validate(job, model) -> dict:
    import torch

    model.eval()
    with torch.inference_mode():
        metrics = job.validate(model)
    model.train()
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def _param_groups(model, weight_decay: float):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in n.lower() else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _to_device(batch, device):
    import torch

    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def card_procedure(report, lr_note: str | None = None) -> dict:
    """The card's "training procedure" lines for a run of the shared trainer (a TrainReport);
    "wall time (s)" is left for core.finetune_scope to fill with the whole finetune."""
    procedure = {"engine": "edu-flash trainer (accelerate)", "hardware": report.hardware,
                 "precision": report.precision, "strategy": report.strategy,
                 "devices": report.world_size, "batch size per device": report.per_device_batch_size,
                 "epochs": report.epochs, "optimizer steps": report.steps,
                 "stopped early": report.stopped_early, "final train loss": report.final_train_loss,
                 "wall time (s)": None, "training loop (s)": round(report.wall_time_s, 1)}
    if report.monitor and report.best_metric is not None:
        procedure[f"best validation {report.monitor}"] = report.best_metric
    if report.stop_reason:
        procedure["stopped by"] = report.stop_reason
    if lr_note:
        procedure["learning rate"] = lr_note
    procedure.update(report.extra)
    return procedure
