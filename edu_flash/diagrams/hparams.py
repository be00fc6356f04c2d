"""DiagramDiffusion's hyperparameters: model shape, noise schedule, guidance, EMA and trainer defaults
that suit small-image diffusion on a CPU."""
from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ConfigError
from ..core.hparams import TrainHParams, bounded, choice


@dataclass
class DiagramHParams(TrainHParams):
    image_size: int = bounded(32, min=8)
    channels: int = choice(1, (1, 3))
    block_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = bounded(1, min=1)
    attention: bool = False  # self-attention at the lowest resolution (the "unet2d-attn" backbone sets it)
    timesteps: int = bounded(1000, min=10)
    beta_schedule: str = choice("squaredcos_cap_v2", ("linear", "scaled_linear", "squaredcos_cap_v2"))
    prediction_type: str = choice("v_prediction", ("epsilon", "v_prediction", "sample"))  # see BENCHMARKS.md
    label_dropout: float = bounded(0.1, min=0.0, max=1.0)  # classifier-free guidance needs unconditional steps
    ema: bool = True
    ema_decay: float = bounded(0.999, min=0.0, max=1.0)  # the maximum; warm-up makes early decay smaller
    ema_power: float = bounded(0.75, min=0.0)  # warm-up: decay = 1 - (1 + step) ** -power (diffusers EMAModel)
    sample_steps: int = bounded(25, min=1)
    guidance: float = bounded(1.0, min=0.0)  # 2.0 over-sharpens a trained model (BENCHMARKS.md); 0: no label
    predict_batch_size: int = bounded(64, min=1)
    card_samples: int = bounded(4, min=0)  # images per class in the card's sample grid (0: none)
    reference_epochs: int = bounded(10, min=1)
    # trainer defaults that suit diffusion on CPU
    lr: float = bounded(1e-3, min=0.0)
    batch_size: int | str = 32
    max_epochs: int = bounded(30, min=1)
    weight_decay: float = bounded(0.0, min=0.0)
    warmup_ratio: float = bounded(0.02, min=0.0, max=1.0)
    scheduler: str = choice("constant_with_warmup", ("linear", "cosine", "constant", "constant_with_warmup"))
    patience: int | None = None
    group_by_length: bool = False

    def validate(self) -> None:
        super().validate()
        if not self.block_channels or any(not isinstance(c, int) or c < 8 or c % 8 for c in self.block_channels):
            raise ConfigError(f"block_channels must be multiples of 8, got {self.block_channels!r}")
        if self.image_size % 2 ** (len(self.block_channels) - 1):
            raise ConfigError(f"image_size {self.image_size} must be divisible by {2 ** (len(self.block_channels) - 1)}"
                              f" for {len(self.block_channels)} UNet levels")
