"""Dropout / early-warning task: week-by-week risk of withdrawing or failing, without look-ahead.

`load_oulad`, `sample_dropout_data` and `write_oulad_folder` are imported on first use (they need
pandas), so discovering the task stays cheap.
"""
from .data import DropoutData
from .task import DropoutHParams, DropoutPredictor

__all__ = ["DropoutPredictor", "DropoutHParams", "DropoutData", "load_oulad", "sample_dropout_data",
           "write_oulad_folder"]


def __getattr__(name: str):
    if name == "load_oulad":
        from .oulad import load_oulad

        return load_oulad
    if name in ("sample_dropout_data", "write_oulad_folder"):
        from . import sample

        return getattr(sample, name)
    raise AttributeError(f"module 'edu_flash.dropout' has no attribute {name!r}")
