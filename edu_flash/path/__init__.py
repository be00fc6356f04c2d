"""Knowledge tracing, next-item recommendation and learning paths."""
from .data import read_dkt
from .hparams import PathHParams
from .task import PathRecommender

__all__ = ["PathRecommender", "PathHParams", "read_dkt"]
