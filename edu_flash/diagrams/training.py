"""What DiagramDiffusion hands the shared trainer: the diffusion TrainJob (loss, fixed-noise validation,
EMA hooks) and the reference classifier that `evaluate` scores generated images with."""
from __future__ import annotations

from pathlib import Path


def _collate(ex):
    import numpy as np
    import torch

    return {"pixels": torch.from_numpy(np.stack([e["pixels"] for e in ex])),
            "labels": torch.tensor([e["label"] for e in ex])}


def _records(prep) -> list[dict]:
    return [{"pixels": x, "label": y} for x, y in zip(prep.pixels, prep.labels)]


# ---------------------------------------------------------------------------------------------- EMA
def new_ema(model, hp):
    """diffusers EMAModel with warm-up, so a short run's EMA is not stuck near the initial weights."""
    from diffusers.training_utils import EMAModel

    return EMAModel(model.parameters(), decay=hp.ema_decay, use_ema_warmup=True, power=hp.ema_power)


def ema_tensors(ema) -> dict:
    """EMA shadow weights and step count, saved in the trainer's checkpoints for exact resume."""
    import torch

    out = {f"ema.{i}": p.detach().cpu() for i, p in enumerate(ema.shadow_params)}
    return {**out, "ema.step": torch.tensor(ema.optimization_step)}


def load_ema_tensors(ema, tensors: dict) -> None:
    for i, p in enumerate(ema.shadow_params):
        p.data.copy_(tensors[f"ema.{i}"].to(p.device))
    ema.optimization_step = int(tensors["ema.step"])


def ema_step(ema, model) -> None:
    """One EMA update after an optimizer step (the shadow follows the parameters' device)."""
    params = list(model.parameters())
    if ema.shadow_params[0].device != params[0].device:
        ema.to(device=params[0].device)
    ema.step(params)


def ema_copy(model, ema):
    """A copy of `model` holding the EMA weights, in eval mode (what sampling uses)."""
    import copy

    out = copy.deepcopy(model).eval()
    ema.copy_to(out.parameters())
    return out


# ---------------------------------------------------------------------------------------------- diffusion
def diffusion_job(task, prep):
    """The UNet (built on the first run, reused after), its loss and validation, as a TrainJob."""
    from diffusers import DDPMScheduler

    from ..core.trainer import TrainJob
    from . import model as M

    hp = task.hparams
    n = len(task.classes)
    if task.model is None:
        hp_arch = hp.replace(attention=hp.attention or task.backbone == "unet2d-attn")
        task.model = M.build_unet(M.unet_config(hp_arch, n, hp.channels), seed=hp.seed)
        task._ema = None
    task.model.train()
    if hp.ema and task._ema is None:
        task._ema = new_ema(task.model, hp)
    sched = DDPMScheduler(**M.noise_scheduler_config(hp))

    def loss(model, batch):
        return M.diffusion_loss(model, batch["pixels"], batch["labels"], null_id=n,
                                label_dropout=hp.label_dropout, scheduler=sched)

    validate = _fixed_noise_validation(prep.val, sched, hp) if prep.val is not None else None
    ema = task._ema is not None
    return TrainJob(model=task.model, train=_records(prep), collate=_collate, loss=loss, validate=validate,
                    monitor="loss" if validate else None, mode="min", after_step=task._on_step if ema else None,
                    state_tensors=task._ema_tensors if ema else None,
                    load_state_tensors=task._load_ema_tensors if ema else None)


def _fixed_noise_validation(val, sched, hp):
    """Validation loss with the same noise and timesteps every time, so epochs compare."""
    import torch

    from . import model as M

    vx, vy = val

    def validate(model):
        g = torch.Generator().manual_seed(1234)
        total, bs = 0.0, hp.predict_batch_size
        dev = next(model.parameters()).device
        for s in range(0, len(vy), bs):
            x = torch.from_numpy(vx[s:s + bs])
            noise = torch.randn(x.shape, generator=g)
            t = torch.randint(0, hp.timesteps, (len(x),), generator=g)
            y = torch.tensor(vy[s:s + bs], device=dev)
            pred = model(sched.add_noise(x, noise, t).to(dev), t.to(dev), class_labels=y, return_dict=False)[0]
            total += float(((pred.float().cpu() - M.target(sched, x, noise, t)) ** 2).mean()) * len(x)
        return {"loss": total / len(vy)}

    return validate


# ---------------------------------------------------------------------------------------------- reference
def train_reference(task, prep, run_dir) -> None:
    """The reference classifier, trained through the shared trainer on the real training images."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from ..core.hparams import TrainHParams
    from ..core.trainer import Trainer, TrainJob
    from . import model as M

    torch.manual_seed(task.hparams.seed)
    net = M.ReferenceNet(task.hparams.channels, len(task.classes))
    hp = TrainHParams(max_epochs=task.hparams.reference_epochs, batch_size=64, lr=2e-3, weight_decay=0.0,
                      warmup_ratio=0.0, scheduler="constant", patience=None, group_by_length=False,
                      seed=task.hparams.seed)
    job = TrainJob(model=net, train=_records(prep), collate=_collate,
                   loss=lambda m, b: F.cross_entropy(m(b["pixels"]), b["labels"]))
    run_dir = Path(run_dir) if run_dir is not None else Path("runs") / task.task_name
    Trainer(hp, run_dir=run_dir / "reference", log=False, progress=False).fit(job)
    task.reference = job.model.cpu().eval()
    _, pred = M.reference_outputs(task.reference, torch.from_numpy(prep.pixels))
    task.card.procedure["reference classifier"] = (
        f"3-stage CNN, {hp.max_epochs} epochs on the training images, training accuracy "
        f"{float(np.mean(pred == np.asarray(prep.labels))):.3f}")
