"""Knowledge tracing, next-item recommendation and learning paths."""
from .data import read_dkt
from .task import PathHParams, PathRecommender

__all__ = ["PathRecommender", "PathHParams", "read_dkt"]
