"""The hand-written reference loop's optimizer, shared by essay_speed.py and trainer_overhead.py:
AdamW with weight decay on matrices only (not biases or norms) and a linear warmup/decay schedule,
written out in plain torch so the comparison is against no framework at all."""
from __future__ import annotations


def adamw_linear(model, hp, total_steps: int):
    """(optimizer, scheduler) matching the trainer's defaults for `hp` (lr, weight_decay, warmup_ratio)."""
    import torch

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in n.lower() else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=hp.lr)
    warm = int(hp.warmup_ratio * total_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: s / max(1, warm) if s < warm else max(0.0, (total_steps - s) / max(1, total_steps - warm)))
    return opt, sched
