"""Batched inference for the torch KT models: sliding-window evaluation (each response after a
student's first scored exactly once) and next-step probabilities for candidate items."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..core.precision import autocast
from .data import eval_windows


def pad(seqs: Sequence[tuple[np.ndarray, np.ndarray]], device=None) -> dict:
    """Right-padded items (0 = padding), responses and lengths."""
    n = max(1, max(len(i) for i, _ in seqs))
    items = torch.zeros(len(seqs), n, dtype=torch.long)
    resp = torch.zeros(len(seqs), n, dtype=torch.float32)
    for b, (i, r) in enumerate(seqs):
        items[b, :len(i)] = torch.as_tensor(i, dtype=torch.long)
        resp[b, :len(r)] = torch.as_tensor(r, dtype=torch.float32)
    lengths = torch.tensor([len(i) for i, _ in seqs], dtype=torch.long)
    out = {"items": items, "resp": resp, "lengths": lengths}
    return {k: v.to(device) for k, v in out.items()} if device is not None else out


def collate(examples: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Training batch: every position but the first of a window is a target."""
    b = pad(examples)
    L = b["items"].shape[1]
    b["mask"] = (torch.arange(L).unsqueeze(0) < b["lengths"].unsqueeze(1)) & (torch.arange(L) > 0).unsqueeze(0)
    return b


def loss(model, batch):
    z = model(batch["items"], batch["resp"])
    m = batch["mask"]
    return torch.nn.functional.binary_cross_entropy_with_logits(z[m].float(), batch["resp"][m])


@torch.inference_mode()
def eval_probs(model, items: list, correct: list, *, window: int, stride: int, batch_size: int = 64,
               precision: str = "32") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, probabilities, student index) for every response after each student's first."""
    device = next(model.parameters()).device
    jobs = [(s, a, e, f) for s, it in enumerate(items) for a, e, f in eval_windows(len(it), window, stride)]
    jobs.sort(key=lambda j: -(j[2] - j[1]))  # similar lengths together: little padding
    ys, ps, ss = [], [], []
    was = model.training
    model.eval()
    with autocast(precision, device.type):
        for k in range(0, len(jobs), batch_size):
            chunk = jobs[k:k + batch_size]
            b = pad([(items[s][a:e], correct[s][a:e]) for s, a, e, _ in chunk], device)
            p = torch.sigmoid(model(b["items"], b["resp"]).float()).cpu().numpy()
            for row, (s, a, e, f) in enumerate(chunk):
                ps.append(p[row, f - a:e - a])
                ys.append(correct[s][f:e])
                ss.append(np.full(e - f, s))
    model.train(was)
    if not ps:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=int)
    return np.concatenate(ys), np.concatenate(ps), np.concatenate(ss)


@torch.inference_mode()
def next_probs(model, hists: list[tuple[np.ndarray, np.ndarray]], cand: np.ndarray, *, window: int,
               batch_size: int = 256) -> np.ndarray:
    """[H, C] P(correct) on each candidate item as the next response after each history (its last
    `window - 1` responses: the context the model was trained with)."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    c = torch.as_tensor(np.asarray(cand, dtype=np.int64), device=device)
    out = np.zeros((len(hists), len(cand)), dtype=np.float64)
    for k in range(0, len(hists), batch_size):
        chunk = [(i[-(window - 1):], r[-(window - 1):]) if len(i) else (i, r) for i, r in hists[k:k + batch_size]]
        b = pad(chunk, device)
        out[k:k + len(chunk)] = torch.sigmoid(model.next_logits(b["items"], b["resp"], b["lengths"], c).float()).cpu().numpy()
    model.train(was)
    return out
