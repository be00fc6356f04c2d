"""Diagram generation task: class-conditional diffusion on educational diagrams."""
from .render import CLASSES, render, sample_diagrams, write_image_folder
from .task import DiagramDiffusion, DiagramHParams, save_grid

__all__ = ["DiagramDiffusion", "DiagramHParams", "save_grid", "render", "sample_diagrams", "write_image_folder",
           "CLASSES"]
