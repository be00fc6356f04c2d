"""The neural essay scorer: a Hugging Face encoder, mean pooling and a sigmoid regression head.

Scores are trained on each prompt's range scaled to [0, 1] (as in Taghipour & Ng), so one head
serves prompts with different ranges; an analytic rubric gets one output per trait.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..core.precision import autocast

_ATTN_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")


class EncoderRegressor(nn.Module):
    def __init__(self, encoder: nn.Module, dropout: float = 0.1, pooling: str = "mean", n_outputs: int = 1):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.n_outputs = n_outputs
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, n_outputs)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kw = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kw).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        out = torch.sigmoid(self.head(self.dropout(pooled)).float())
        return out.squeeze(-1) if self.n_outputs == 1 else out  # (batch,) or (batch, traits)


def _drop_pooler(encoder: nn.Module) -> nn.Module:
    # An unused pooler gets no gradient, which makes DDP fail ("Expected to have finished reduction").
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder


def _encoder_config(config, attention_dropout: float):
    for k in _ATTN_DROPOUT_KEYS:
        if hasattr(config, k):
            setattr(config, k, attention_dropout)
    return config


def build_pretrained(source: str, *, dropout: float, attention_dropout: float, pooling: str, n_outputs: int = 1):
    """Encoder weights from a folder or hub id (the user's choice of backbone)."""
    from transformers import AutoModel

    from ..core import hfload

    config = _encoder_config(hfload.auto_config(source), attention_dropout)
    encoder = hfload.auto_model(AutoModel, source, config=config)
    tokenizer = hfload.auto_tokenizer(source)
    return EncoderRegressor(_drop_pooler(encoder), dropout, pooling, n_outputs), tokenizer


def build_from_config(config_dict: dict, tokenizer_folder: str, *, dropout: float, pooling: str, n_outputs: int = 1):
    """The same architecture, weights to be filled from model.safetensors (no download)."""
    from transformers import AutoModel

    from ..core import hfload

    encoder = _drop_pooler(hfload.model_from_config(AutoModel, hfload.config_from_dict(config_dict)))
    return EncoderRegressor(encoder, dropout, pooling, n_outputs), hfload.auto_tokenizer(tokenizer_folder)


def collate(examples: Sequence[dict], pad_id: int) -> dict:
    """Dynamic padding to the longest sequence in the batch."""
    n = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), n), dtype=torch.long)
    for i, e in enumerate(examples):
        ids[i, :len(e["input_ids"])] = torch.tensor(e["input_ids"])
        mask[i, :len(e["input_ids"])] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if "target" in examples[0]:
        batch["target"] = torch.tensor([e["target"] for e in examples], dtype=torch.float32)
    return batch


@torch.inference_mode()
def predict_scaled(model: nn.Module, tokenizer, texts: Sequence[str], *, max_length: int, batch_size: int | None,
                   precision: str = "32", device=None) -> list:
    """Scaled [0, 1] predictions (a float per essay, or a list per essay for several traits);
    longest-first batches with dynamic padding, original order back."""
    device = device or next(model.parameters()).device
    batch_size = batch_size or (32 if device.type == "cuda" else 8)
    was_training = model.training
    model.eval()
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(enc)), key=lambda i: -len(enc[i]))
    out = [0.0] * len(enc)
    pad = tokenizer.pad_token_id or 0
    with autocast(precision, device.type):
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            batch = collate([{"input_ids": enc[i]} for i in idx], pad)
            pred = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            for i, p in zip(idx, pred.float().cpu().tolist()):
                out[i] = p
    model.train(was_training)
    return out
