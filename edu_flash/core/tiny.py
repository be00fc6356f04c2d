"""Tiny encoders built from a config, for tests and offline demos: no hub download needed.

The tokenizer is a WordPiece vocabulary built from the given texts: the special tokens, every
character (alone and as a `##` continuation) and the most frequent words, ties broken by the word,
so the same texts give the same vocabulary in every process (the `tokenizers` trainer does not).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable


def make_tiny_encoder(folder: str | os.PathLike, texts: Iterable[str], *, hidden: int = 32, layers: int = 2,
                      heads: int = 2, vocab_size: int = 2000, max_positions: int = 512, seed: int = 0) -> Path:
    """Write a randomly initialised small BERT + its tokenizer to `folder`; returns the folder."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(_vocab(texts, vocab_size, specials), unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=max_positions)
    fast.save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=hidden * 4,
                        max_position_embeddings=max_positions)
    BertModel(config).save_pretrained(str(folder))
    return folder


def _vocab(texts: Iterable[str], size: int, specials: list[str]) -> dict[str, int]:
    import re
    from collections import Counter

    from tokenizers import normalizers, pre_tokenizers

    norm, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = Counter(w for t in texts for w, _ in pre.pre_tokenize_str(norm.normalize_str(t)))
    chars = sorted({c for w in words for c in w})
    vocab = list(specials) + chars + [f"##{c}" for c in chars]
    vocab += [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1 and not re.fullmatch(r"\W", w)]
    return {w: i for i, w in enumerate(dict.fromkeys(vocab[:max(size, len(specials) + 2 * len(chars))]))}
