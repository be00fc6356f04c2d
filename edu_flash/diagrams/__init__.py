"""Diagram generation task: class-conditional diffusion on educational diagrams."""
from .data import save_grid
from .render import CLASSES, render, sample_diagrams, write_image_folder
from .hparams import DiagramHParams
from .task import DiagramDiffusion

__all__ = ["DiagramDiffusion", "DiagramHParams", "save_grid", "render", "sample_diagrams", "write_image_folder",
           "CLASSES"]
