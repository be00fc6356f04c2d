"""Essay scoring task."""
from .task import EssayHParams, EssayScorer

__all__ = ["EssayScorer", "EssayHParams"]
