"""Toy training jobs and checks shared by tests/test_trainer*.py."""
from __future__ import annotations

import torch
from torch import nn

from edu_flash.core.hparams import TrainHParams
from edu_flash.core.trainer import Trainer, TrainJob

from conftest import reset_accelerate


# ------------------------------------------------------------------------------------------- toy jobs
def _toy_job(n=32, seed=0, validate=None, monitor=None, mode="max"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    data = [{"x": x[i], "y": y[i]} for i in range(n)]

    def collate(ex):
        return {"x": torch.stack([e["x"] for e in ex]), "y": torch.stack([e["y"] for e in ex])}

    def loss(m, b):
        return nn.functional.mse_loss(m(b["x"]).squeeze(-1), b["y"])

    return TrainJob(model=model, train=data, collate=collate, loss=loss, validate=validate, monitor=monitor,
                    mode=mode)


def _hp(**kw):
    base = dict(max_epochs=1, batch_size=8, lr=0.05, precision="32", group_by_length=False, warmup_ratio=0.0,
                scheduler="constant", clip_norm=None, weight_decay=0.0, patience=None)
    return TrainHParams(**{**base, **kw})


def _fit(hp, job, run_dir, **kw):
    reset_accelerate()
    return Trainer(hp, run_dir=run_dir, progress=False, **kw).fit(job)


def _same_weights(a: nn.Module, b: nn.Module) -> list[str]:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return [k for k in sa if not torch.equal(sa[k], sb[k])]
