"""One seed for python, numpy and torch, so two runs with the same seed train the same model."""
from __future__ import annotations


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
