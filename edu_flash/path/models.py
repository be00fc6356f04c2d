"""Knowledge-tracing networks: DKT (Piech et al. 2015), SAKT (Pandey & Karypis 2019) and simpleKT
(Liu et al. 2023: Rasch-embedded questions, attention over past interactions).

Every model reads items through the Q-matrix (item -> skills), so the same code serves data where
items are the skills (the DKT ASSISTments files) and data with many items per skill. Two entry points:

- `forward(items, resp)` -> logits [B, L]; position t is predicted from positions < t only (the
  trainer and `evaluate` use this).
- `next_logits(items, resp, lengths, cand)` -> logits [B, C] for each candidate item as the next
  response after each history (predict/recommend/plan use this: one pass per history, not per item).

Responses may be fractional (a soft 0-1 value blends the two interaction embeddings); training
only ever sees 0 and 1.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _KT(nn.Module):
    def __init__(self, q: torch.Tensor, n_skills: int, n_items: int):
        super().__init__()
        self.register_buffer("q", q, persistent=False)  # rebuilt from the saved vocabulary
        self.n_skills, self.n_items = n_skills, n_items

    def skill_mean(self, table: nn.Embedding, items: torch.Tensor) -> torch.Tensor:
        s = self.q[items]
        m = (s > 0).unsqueeze(-1).to(table.weight.dtype)
        return (table(s) * m).sum(-2) / m.sum(-2).clamp(min=1)

    def interaction(self, e0: nn.Embedding, e1: nn.Embedding, items, resp) -> torch.Tensor:
        r = resp.unsqueeze(-1).to(e0.weight.dtype)
        return self.skill_mean(e0, items) * (1 - r) + self.skill_mean(e1, items) * r


class DKT(_KT):
    """LSTM over (skill, correct) embeddings; a per-skill output layer read at the next item's skills."""

    def __init__(self, q, n_skills, n_items, d_model=200, dropout=0.2, n_layers=1, item_bias=False, **_):
        super().__init__(q, n_skills, n_items)
        self.e0, self.e1 = nn.Embedding(n_skills + 1, d_model), nn.Embedding(n_skills + 1, d_model)
        self.lstm = nn.LSTM(d_model, d_model, num_layers=n_layers, batch_first=True,
                            dropout=dropout if n_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, n_skills + 1)
        # Item ids beyond their skills (Rasch-style, as simpleKT): a difficulty added to the output and
        # a scalar per item scaling a per-skill variation of the input; both start at 0 (= plain DKT).
        self.bias = nn.Embedding(n_items + 1, 1) if item_bias else None
        self.mu = nn.Embedding(n_items + 1, 1) if item_bias else None
        self.dq = nn.Embedding(n_skills + 1, d_model) if item_bias else None
        for e in (self.bias, self.mu):
            if e is not None:
                nn.init.zeros_(e.weight)

    def _read(self, logits: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        s = self.q[items]
        m = (s > 0).to(logits.dtype)
        z = (logits.gather(-1, s) * m).sum(-1) / m.sum(-1).clamp(min=1)
        return z + self.bias(items).squeeze(-1) if self.bias is not None else z

    def _input(self, items, resp):
        x = self.interaction(self.e0, self.e1, items, resp)
        return x + self.mu(items) * self.skill_mean(self.dq, items) if self.mu is not None else x

    def forward(self, items, resp):
        h, _ = self.lstm(self._input(items, resp))
        prev = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], 1)  # state before each response
        return self._read(self.out(self.drop(prev)), items)

    def next_logits(self, items, resp, lengths, cand):
        if items.shape[1] == 0:  # no history at all: the initial state
            items, resp = items.new_zeros(items.shape[0], 1), resp.new_zeros(items.shape[0], 1)
        h, _ = self.lstm(self._input(items, resp))
        # sizes as .shape[0], not len(): an ONNX export by tracing keeps them dynamic
        last = h[torch.arange(h.shape[0], device=h.device), (lengths - 1).clamp(min=0)]
        last = last * (lengths > 0).unsqueeze(-1).to(last.dtype)
        logits = self.out(last).unsqueeze(1).expand(-1, cand.shape[0], -1)
        return self._read(logits, cand.unsqueeze(0).expand(h.shape[0], -1))


class _Attention(nn.Module):
    """Multi-head attention on torch's fused kernel; a query row with nothing to attend to gets zeros."""

    def __init__(self, d, heads, dropout, kq_same=True):
        super().__init__()
        if d % heads:
            raise ValueError(f"d_model {d} is not divisible by n_heads {heads}")
        self.h, self.p = heads, dropout
        self.wq, self.wv, self.wo = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.wk = None if kq_same else nn.Linear(d, d)  # keys through wq (not a tied copy: core checkpoints
                                                        # reject shared tensors)

    def forward(self, q, k, v, mask):  # mask: bool [Q, K] or [B, Q, K], True = may attend
        B, Q, d = q.shape
        split = lambda x: x.view(B, x.shape[1], self.h, d // self.h).transpose(1, 2)
        empty = ~mask.any(-1, keepdim=True)
        mask = mask | (empty & (torch.arange(mask.shape[-1], device=mask.device) == 0))
        m = mask.unsqueeze(-3) if mask.dim() == 3 else mask
        wk = self.wq if self.wk is None else self.wk
        o = F.scaled_dot_product_attention(split(self.wq(q)), split(wk(k)), split(self.wv(v)), attn_mask=m,
                                           dropout_p=self.p if self.training else 0.0)
        o = o.transpose(1, 2).reshape(B, Q, d)
        out = self.wo(o)
        return out * (~empty).to(out.dtype)  # branch-free, so torch.export / ONNX can capture it


class _Block(nn.Module):
    def __init__(self, d, heads, dropout, kq_same=True):
        super().__init__()
        self.attn = _Attention(d, heads, dropout, kq_same)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), nn.Dropout(dropout), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, q, k, v, mask):
        x = self.ln1(q + self.drop(self.attn(q, k, v, mask)))
        return self.ln2(x + self.drop(self.ff(x)))


def _past(L, device):
    """[L, L]: position t sees positions < t."""
    i = torch.arange(L, device=device)
    return i.unsqueeze(1) > i.unsqueeze(0)


def _hist(lengths, L):
    """[B, 1, L]: a next-step query sees every real position of its history."""
    return (torch.arange(L, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(1)


class SAKT(_KT):
    """Queries: the item being answered; keys/values: past interactions + positions."""

    def __init__(self, q, n_skills, n_items, d_model=64, dropout=0.2, n_layers=1, n_heads=8, window=200, **_):
        super().__init__(q, n_skills, n_items)
        self.eq = nn.Embedding(n_skills + 1, d_model)
        self.e0, self.e1 = nn.Embedding(n_skills + 1, d_model), nn.Embedding(n_skills + 1, d_model)
        self.pos = nn.Embedding(window, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads, dropout, kq_same=False) for _ in range(n_layers))
        self.out = nn.Linear(d_model, 1)

    def _memory(self, items, resp):
        return self.interaction(self.e0, self.e1, items, resp) + self.pos.weight[:items.shape[1]]

    def _decode(self, x, kv, mask):
        for b in self.blocks:
            x = b(x, kv, kv, mask)
        return self.out(x).squeeze(-1)

    def forward(self, items, resp):
        return self._decode(self.skill_mean(self.eq, items), self._memory(items, resp), _past(items.shape[1], items.device))

    def next_logits(self, items, resp, lengths, cand):
        x = self.skill_mean(self.eq, cand).unsqueeze(0).expand(items.shape[0], -1, -1)
        return self._decode(x, self._memory(items, resp), _hist(lengths, items.shape[1]))


class SimpleKT(_KT):
    """simpleKT: Rasch question embeddings (skill vector + item difficulty x skill variation), a stack
    of attention blocks whose queries/keys are questions and values interactions, and an MLP head."""

    def __init__(self, q, n_skills, n_items, d_model=64, dropout=0.1, n_layers=2, n_heads=8, window=200, **_):
        super().__init__(q, n_skills, n_items)
        self.c, self.dq = nn.Embedding(n_skills + 1, d_model), nn.Embedding(n_skills + 1, d_model)
        self.e0, self.e1 = nn.Embedding(n_skills + 1, d_model), nn.Embedding(n_skills + 1, d_model)
        self.mu = nn.Embedding(n_items + 1, 1)  # Rasch item difficulty
        nn.init.zeros_(self.mu.weight)
        self.pos = nn.Embedding(window + 1, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads, dropout) for _ in range(n_layers))
        self.head = nn.Sequential(nn.Linear(2 * d_model, d_model), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(d_model, d_model // 2), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(d_model // 2, 1))

    def question(self, items):
        return self.skill_mean(self.c, items) + self.mu(items) * self.skill_mean(self.dq, items)

    def _streams(self, items, resp):
        qe = self.question(items)
        y = qe + self.interaction(self.e0, self.e1, items, resp) + self.pos.weight[:items.shape[1]]
        return qe, qe + self.pos.weight[:items.shape[1]], y

    def forward(self, items, resp):
        qe, x, y = self._streams(items, resp)
        mask = _past(items.shape[1], items.device)
        for b in self.blocks:
            x = b(x, x, y, mask)
        return self.head(torch.cat([x, qe], -1)).squeeze(-1)

    def next_logits(self, items, resp, lengths, cand):
        _, xh, y = self._streams(items, resp)
        qc = self.question(cand).unsqueeze(0).expand(items.shape[0], -1, -1)
        xc = qc + self.pos(lengths.clamp(max=self.pos.num_embeddings - 1)).unsqueeze(1)
        past, seen = _past(items.shape[1], items.device), _hist(lengths, items.shape[1])
        for b in self.blocks:  # candidates attend to the history's stream at every layer
            xc, xh = b(xc, xh, y, seen), b(xh, xh, y, past)
        return self.head(torch.cat([xc, qc], -1)).squeeze(-1)


ARCHS = {"dkt": DKT, "sakt": SAKT, "simplekt": SimpleKT}
DEFAULTS = {"dkt": dict(d_model=200, dropout=0.2, n_layers=1),
            "sakt": dict(d_model=64, dropout=0.2, n_layers=1, n_heads=8),
            "simplekt": dict(d_model=64, dropout=0.1, n_layers=2, n_heads=8)}


def build(arch: str, q: torch.Tensor, cfg: dict) -> nn.Module:
    return ARCHS[arch](q, **cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def init_scale(model: nn.Module) -> None:
    """Attention models: embeddings start small (N(0, 1/sqrt(d))) so the residual stream starts near
    unit scale. DKT keeps torch's N(0, 1): small inputs would barely move the LSTM's gates and
    slow its learning."""
    if isinstance(model, DKT):
        return
    for m in model.modules():
        if isinstance(m, nn.Embedding) and m.embedding_dim > 1:
            nn.init.normal_(m.weight, std=1 / math.sqrt(m.embedding_dim))
