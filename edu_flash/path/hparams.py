"""PathRecommender's hyperparameters: training, the backbones' shapes, and the practice policy's
settings (recommend / plan_path / evaluate_paths), checked when a task is built."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.errors import ConfigError
from ..core.hparams import TrainHParams, bounded, choice


@dataclass
class PathHParams(TrainHParams):
    max_epochs: int = bounded(12, min=1)
    batch_size: int | str = 64
    lr: float = bounded(2e-3, min=0.0)
    weight_decay: float = bounded(0.0, min=0.0)
    warmup_ratio: float = bounded(0.0, min=0.0, max=1.0)
    scheduler: str = choice("linear", ("linear", "cosine", "constant", "constant_with_warmup"))  # decays to 0
    patience: int | None = 3
    precision: str = choice("bf16-mixed", ("32", "bf16-mixed", "16-mixed", "bf16-true"))  # 1.7x less CPU time
    # Random batches, not length-grouped ones: grouping puts a long student's continuation windows
    # together and, on ASSISTments 2009, made DKT learn markedly slower per epoch (see BENCHMARKS.md).
    group_by_length: bool = False
    window: int = bounded(200, min=3)             # training chunk length; also the context at predict time
    eval_stride: int | None = None                # sliding-window step for evaluation (None: window // 2)
    val_fraction: float = bounded(0.1, min=0.0, max=0.5)  # students held out for early stopping (val=None)
    d_model: int | None = None                    # None: the backbone's default (dkt 200, sakt 64, simplekt 64)
    dropout: float | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    item_bias: bool | None = None                 # dkt: Rasch item terms on top of skills (None: when items != skills)
    predict_batch_size: int = bounded(256, min=1)
    pfa_c: float = bounded(1.0, min=1e-6)         # pfa: inverse L2 strength of the logistic regression
    em_iters: int = bounded(100, min=1)           # bkt: most EM iterations (stops earlier once converged)
    # recommend / plan_path / evaluate_paths (see policy.py): look-ahead depth in answers, candidates
    # kept for the look-ahead, and the mastery at which a skill is no longer offered (None: never).
    plan_depth: int = bounded(2, min=1, max=4)
    plan_beam: int = bounded(6, min=1)
    mastered: float | None = bounded(0.95, min=0.0, max=1.0)
    plan_spacing: int = bounded(0, min=0)        # a goal skill practised in the last N responses waits its turn
    # classical models fitted on the same students, planned with beside the backbone (policy.Ensemble:
    # predictions averaged, minimax regret, or interleaving left only for an item all of them value more)
    plan_models: list = field(default_factory=lambda: ["bkt", "pfa"])
    plan_rule: str = choice("agree", ("mean", "regret", "agree"))

    def validate(self) -> None:
        super().validate()
        bad = [m for m in self.plan_models if m not in ("pfa", "bkt")]
        if bad:
            raise ConfigError(f"plan_models may hold 'pfa' and 'bkt', got {bad}")
