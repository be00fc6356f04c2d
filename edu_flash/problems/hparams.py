"""ProblemGenerator's hyperparameters: the language models' size and training, generation and filtering.
The template backbone uses only the generation and filtering ones (the card lists only those)."""
from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ConfigError
from ..core.hparams import PRECISIONS, TrainHParams, bounded, choice

NOVELTY = ("variant", "new")


@dataclass
class ProblemHParams(TrainHParams):
    precision: str = choice("bf16-mixed", PRECISIONS)
    lr: float = bounded(5e-4, min=0.0)
    max_epochs: int = bounded(10, min=1)
    warmup_ratio: float = bounded(0.05, min=0.0, max=1.0)
    max_length: int = bounded(384, min=16)
    # the default backbone, a GPT-2 built from this config with a tokenizer trained on the data
    n_layer: int = bounded(4, min=1)
    n_embd: int = bounded(256, min=8)
    n_head: int = bounded(4, min=1)
    vocab_size: int = bounded(4000, min=300)
    dropout: float = bounded(0.1, min=0.0, max=1.0)
    # generation and filtering
    temperature: float = bounded(0.7, min=0.0)
    top_p: float = bounded(0.95, min=0.0, max=1.0)
    max_new_tokens: int = bounded(320, min=8)
    max_attempts: int = bounded(4, min=1)  # draws per requested problem before it is dropped
    calculator: bool = True  # the exact evaluator writes each `<<expr=` step's value while sampling
    ngram: int = bounded(4, min=1)
    max_overlap: float = bounded(0.8, min=0.0, max=1.0)  # story n-gram share with one training problem
    require_steps: bool = True  # a solution with no <<expr=value>> step cannot be verified
    novelty: str = choice("auto", ("auto", *NOVELTY))  # auto: "variant" for templates, "new" for language models
    variants: int = bounded(0, min=0)  # language models: template variants per training problem added to training
    predict_batch_size: int = bounded(32, min=1)

    def validate(self) -> None:
        super().validate()
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
