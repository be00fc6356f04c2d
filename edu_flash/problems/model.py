"""The language models behind ProblemGenerator: a causal LM (GPT-2-style by default, built from a
config with a byte-level BPE tokenizer trained on the data) or any seq2seq model (T5).

Conditioning is by control tokens: `<|topic:x|><|difficulty:d|><|problem|>` is the causal LM's
prefix (masked out of the loss) and the seq2seq model's encoder input. Digits are split one per
token so a small model can learn digit-wise arithmetic instead of memorising number tokens.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import torch

from .formats import EOS, PROBLEM, SOLUTION

PAD = "<|pad|>"


def train_tokenizer(texts: Sequence[str], specials: Sequence[str], vocab_size: int, max_length: int = 0):
    """Byte-level BPE from the `tokenizers` library, trained on the training texts (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, EOS, *specials],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD,
                                   additional_special_tokens=list(specials), model_max_length=1_000_000,
                                   clean_up_tokenization_spaces=False)


def build_scratch(texts: Sequence[str], specials: Sequence[str], hp):
    """A randomly initialised GPT-2 of the hyperparameters' size and its freshly trained tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = train_tokenizer(texts, specials, hp.vocab_size, hp.max_length)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=hp.max_length, n_embd=hp.n_embd, n_layer=hp.n_layer,
                     n_head=hp.n_head, resid_pdrop=hp.dropout, embd_pdrop=hp.dropout, attn_pdrop=0.0,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return GPT2LMHeadModel(cfg), tok


def load_backbone(source: str | os.PathLike):
    """Any local folder or hub id: encoder-decoder configs load as seq2seq, the rest as causal LMs."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from ..core import hfload

    config = hfload.auto_config(source)
    cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    return hfload.auto_model(cls, source), hfload.auto_tokenizer(source)


def model_kind(model) -> str:
    return "seq2seq" if getattr(model.config, "is_encoder_decoder", False) else "causal"


def add_control_tokens(model, tok, tokens: Sequence[str]) -> None:
    """Make every control token one special token; grow the embeddings if the vocabulary grew."""
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    have = set(tok.all_special_tokens)
    new = [t for t in tokens if t not in have]
    if new:
        tok.add_tokens(new, special_tokens=True)  # atomic, never split; works across transformers versions
    if len(tok) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tok))


def rebuild(model_config: dict, tokenizer_folder: str | os.PathLike):
    """The saved architecture with empty weights (filled from model.safetensors by the caller)."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from ..core import hfload

    config = hfload.config_from_dict(model_config)
    cls = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
    return hfload.model_from_config(cls, config), hfload.auto_tokenizer(tokenizer_folder)


def encode(tok, kind: str, prefixes: Sequence[str], targets: Sequence[str], max_length: int) -> list[dict]:
    """Token ids per example; the causal LM's prefix length is kept so its loss can skip it."""
    eos = tok.eos_token_id
    pre = tok(list(prefixes), add_special_tokens=False)["input_ids"]
    tgt = tok(list(targets), add_special_tokens=False)["input_ids"]
    out = []
    for p, t in zip(pre, tgt):
        if kind == "causal":
            out.append({"input_ids": (p + t + [eos])[:max_length], "n_prefix": len(p)})
        else:
            out.append({"input_ids": p + [eos], "labels": (t + [eos])[:max_length]})
    return out


def _pad(rows: list[list[int]], value: int, left: bool = False) -> torch.Tensor:
    n = max(len(r) for r in rows)
    return torch.tensor([([value] * (n - len(r)) + r) if left else (r + [value] * (n - len(r))) for r in rows],
                        dtype=torch.long)


def collate(examples: Sequence[dict], pad_id: int, kind: str) -> dict:
    """Dynamic padding; labels are -100 on padding (and on the causal LM's control-token prefix)."""
    ids = _pad([e["input_ids"] for e in examples], pad_id)
    mask = _pad([[1] * len(e["input_ids"]) for e in examples], 0)
    if kind == "causal":
        labels = ids.clone()
        labels[mask == 0] = -100
        for i, e in enumerate(examples):
            labels[i, :e["n_prefix"]] = -100
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
    return {"input_ids": ids, "attention_mask": mask, "labels": _pad([e["labels"] for e in examples], -100)}


def lm_loss(model, batch: dict):
    return model(**batch).loss


@torch.inference_mode()
def perplexity(model, examples: Sequence[dict], pad_id: int, kind: str, batch_size: int = 16) -> dict:
    """Token-level perplexity over the solution-and-problem tokens (control tokens excluded)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    nll, n = 0.0, 0
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]["input_ids"]))
    for s in range(0, len(order), batch_size):
        batch = {k: v.to(device) for k, v in collate([examples[i] for i in order[s:s + batch_size]], pad_id,
                                                      kind).items()}
        labels = batch.pop("labels")
        if kind == "causal":
            logits, gold = model(**batch).logits[:, :-1], labels[:, 1:]
        else:
            logits, gold = model(**batch, labels=labels).logits, labels
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), gold.reshape(-1),
                                                 ignore_index=-100, reduction="sum")
        nll, n = nll + float(loss), n + int((gold != -100).sum())
    model.train(was)
    mean = nll / max(n, 1)
    return {"perplexity": math.exp(min(mean, 50.0)), "nll": mean, "tokens": n}


@torch.inference_mode()
def sample(model, tok, kind: str, prefixes: Sequence[str], *, temperature: float, top_p: float,
           max_new_tokens: int, seed: int, batch_size: int = 32, calculator: bool = False) -> list[str]:
    """Sampled continuations (decoded, special tokens kept so the parser can split on them); with
    `calculator`, each `<<expr=` step's value is written by the exact evaluator (calculator.py)."""
    from transformers import LogitsProcessorList

    from .calculator import CalculatorLogitsProcessor, SamplingGuard

    was = model.training
    model.eval()
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    eos = tok.eos_token_id
    out = []
    for s in range(0, len(prefixes), batch_size):
        rows = tok(list(prefixes[s:s + batch_size]), add_special_tokens=False)["input_ids"]
        if kind == "seq2seq":
            rows = [r + [eos] for r in rows]
        ids = _pad(rows, tok.pad_token_id, left=kind == "causal").to(device)
        mask = _pad([[1] * len(r) for r in rows], 0, left=kind == "causal").to(device)
        procs = LogitsProcessorList([SamplingGuard(tok), *([CalculatorLogitsProcessor(tok)] if calculator else [])])
        gen = model.generate(input_ids=ids, attention_mask=mask, do_sample=temperature > 0,
                             temperature=max(temperature, 1e-5), top_p=top_p, max_new_tokens=max_new_tokens,
                             eos_token_id=eos, pad_token_id=tok.pad_token_id, logits_processor=procs)
        if kind == "causal":
            gen = gen[:, ids.shape[1]:]
        out += tok.batch_decode(gen, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    model.train(was)
    return out


def make_tiny_backbone(folder: str | os.PathLike, texts: Sequence[str], kind: str = "t5", *, d_model: int = 32,
                       vocab_size: int = 600, seed: int = 0) -> Path:
    """A tiny randomly initialised HF model folder (T5 or GPT-2) + tokenizer, for tests and offline demos:
    it exercises the 'any local folder' backbone path without a download."""
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    folder = Path(folder)
    tok = train_tokenizer(texts, [PROBLEM, SOLUTION], vocab_size, 512)
    torch.manual_seed(seed)
    if kind == "t5":
        cfg = T5Config(vocab_size=len(tok), d_model=d_model, d_ff=2 * d_model, d_kv=d_model // 2, num_layers=1,
                       num_heads=2, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                       decoder_start_token_id=tok.pad_token_id)
        model = T5ForConditionalGeneration(cfg)
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=512, n_embd=d_model, n_layer=1, n_head=2,
                                           eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id))
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder
