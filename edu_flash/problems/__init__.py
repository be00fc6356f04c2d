"""Practice problem generation with verified worked solutions."""
from .task import ProblemGenerator, ProblemHParams

__all__ = ["ProblemGenerator", "ProblemHParams"]
