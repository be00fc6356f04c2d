"""A toy third-party task for edu-flash: numeric features -> a number (MLP or ridge)."""
from .task import ToyRegressor  # noqa: F401
