"""The `gru` backbone: a GRU over the week-by-week features, started from the static features.

Step t of the sequence is the feature vector known at the end of week t (step 0: before the
course), and the GRU is causal, so its output at step w is a risk that uses weeks <= w only. One
pass gives the risk at every week, so one model serves every cutoff; the loss covers the
(student, week) cells in the at-risk population (pos_weight balances the classes).
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Cap torch's intra-op threads for a block (None: leave as is). A GRU this small gains nothing
    from more threads, and on shared cores OpenMP spinning made a step ~50x slower (measured)."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class DropoutGRU(nn.Module):
    def __init__(self, n_dynamic: int, n_static: int, hidden: int = 64, layers: int = 1, dropout: float = 0.1):
        super().__init__()
        self.layers = layers
        self.static = nn.Sequential(nn.Linear(n_static, hidden), nn.Tanh())
        self.inp = nn.Sequential(nn.Linear(n_dynamic, hidden), nn.ReLU())
        self.gru = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, 1)

    def forward(self, seq, static):
        """seq (batch, weeks, n_dynamic), static (batch, n_static) -> log-odds (batch, weeks)."""
        s = self.static(static)
        out, _ = self.gru(self.inp(seq), s.unsqueeze(0).repeat(self.layers, 1, 1).contiguous())
        z = torch.cat([out, s.unsqueeze(1).expand(-1, out.size(1), -1)], dim=-1)
        return self.head(self.drop(z)).squeeze(-1).float()


def examples(seq: np.ndarray, static: np.ndarray, mask: np.ndarray, y: np.ndarray) -> list[dict]:
    return [{"seq": seq[i], "static": static[i], "mask": mask[i], "y": float(y[i])} for i in range(len(seq))]


def collate(batch: list[dict]) -> dict:
    return {"seq": torch.as_tensor(np.stack([b["seq"] for b in batch]), dtype=torch.float32),
            "static": torch.as_tensor(np.stack([b["static"] for b in batch]), dtype=torch.float32),
            "mask": torch.as_tensor(np.stack([b["mask"] for b in batch]), dtype=torch.float32),
            "y": torch.tensor([b["y"] for b in batch], dtype=torch.float32)}


def make_loss(pos_weight: float):
    def loss(model, batch):
        import torch.nn.functional as F

        logits = model(batch["seq"], batch["static"])
        target = batch["y"].unsqueeze(1).expand_as(logits)
        cell = F.binary_cross_entropy_with_logits(logits, target, reduction="none",
                                                  pos_weight=torch.tensor(pos_weight, device=logits.device))
        m = batch["mask"]
        return (cell * m).sum() / m.sum().clamp(min=1.0)
    return loss


@torch.inference_mode()
def logits_at(model: nn.Module, seq: np.ndarray, static: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """(n, weeks) log-odds for every step (not shifted)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for s in range(0, len(seq), batch_size):
        out.append(model(torch.as_tensor(seq[s:s + batch_size], dtype=torch.float32, device=device),
                         torch.as_tensor(static[s:s + batch_size], dtype=torch.float32, device=device)).cpu().numpy())
    model.train(was)
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, seq.shape[1]))


def occlusion(model, seq: np.ndarray, static: np.ndarray, seq_groups: list[str], static_groups: list[str],
              week_means: np.ndarray | None = None):
    """Per-group credit at the last step: log-odds minus log-odds with that group set to the training
    mean at every week (`week_means` (weeks, n_dynamic): the mean of the students in the population
    at each week; else 0, the pooled mean after standardisation). Returns (credits (n, groups), names)."""
    names = list(dict.fromkeys([*static_groups, *seq_groups]))
    base = logits_at(model, seq, static)[:, -1]
    out = np.zeros((len(seq), len(names)))
    sg, dg = np.array(static_groups), np.array(seq_groups)
    fill = np.zeros(seq.shape[1:]) if week_means is None else np.asarray(week_means)[: seq.shape[1]]
    for j, g in enumerate(names):
        s2, d2 = static.copy(), seq.copy()
        s2[:, sg == g] = 0.0
        d2[:, :, dg == g] = fill[None, :, dg == g]
        out[:, j] = base - logits_at(model, d2, s2)[:, -1]
    return out, names
