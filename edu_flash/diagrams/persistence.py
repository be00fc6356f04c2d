"""DiagramDiffusion's model folder: the UNet, its EMA copy and the reference classifier as safetensors,
plus a sample grid for the model card (a failed grid never fails a save)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from . import data as D

log = logging.getLogger("edu_flash.diagrams")
OLD_DEFAULTS = {"prediction_type": "epsilon", "ema_power": 0.75}


def save_weights(task, folder: Path) -> dict:
    from safetensors.torch import save_model

    save_model(task.model, str(folder / "model.safetensors"))
    if task.ema_model is not None:
        save_model(task.ema_model, str(folder / "ema.safetensors"))
    if task.reference is not None:
        save_model(task.reference, str(folder / "reference.safetensors"))
    task._samples_file = None
    if task.hparams.card_samples:
        try:
            imgs = task.generate(None, task.hparams.card_samples, seed=0)
            D.save_grid(imgs, folder / "samples.png", ncols=task.hparams.card_samples)
            task._samples_file = "samples.png"
        except Exception as e:
            log.warning("could not write the sample grid (%s)", e)
    return {"format": "diffusers-unet2d", "unet_config": json.loads(task.model.to_json_string()),
            "ema": task.ema_model is not None,
            "reference_config": task.reference.config if task.reference is not None else None,
            "samples": task._samples_file}


def load_weights(task, folder: Path, config: dict) -> None:
    from safetensors.torch import load_model

    from . import model as M
    from .training import new_ema

    # folders saved before these settings existed were trained with epsilon prediction and EMA power 0.75
    old = {k: v for k, v in OLD_DEFAULTS.items() if k not in config.get("hparams", {})}
    if old:
        task.hparams = task.hparams.replace(**old)
    w = config["weights"]
    cfg = {k: v for k, v in w["unet_config"].items() if not k.startswith("_")}
    task.model = M.build_unet(cfg)
    load_model(task.model, str(folder / "model.safetensors"))
    task.model.eval()
    task.ema_model, task._ema = None, None
    if w.get("ema"):
        task.ema_model = M.build_unet(cfg)
        load_model(task.ema_model, str(folder / "ema.safetensors"))
        task.ema_model.eval()
        task._ema = new_ema(task.ema_model, task.hparams)  # continued training carries the EMA on
        task._ema.optimization_step = int(task.state.get("ema_steps", 0))
    task.reference = None
    if w.get("reference_config"):
        task.reference = M.ReferenceNet(**w["reference_config"])
        load_model(task.reference, str(folder / "reference.safetensors"))
        task.reference.eval()
    task._samples_file = w.get("samples")


def card_with_samples(task, text: str) -> str:
    """The model card with the sample grid inserted before 'Intended use'."""
    if not getattr(task, "_samples_file", None):
        return text
    hp = task.hparams
    grid = (f"## Samples\n\n![{hp.card_samples} samples per class, rows in class order "
            f"({', '.join(task.classes)})]({task._samples_file})\n\nDDIM, {hp.sample_steps} steps, "
            f"guidance {hp.guidance}, EMA weights, seed 0.\n\n")
    return text.replace("## Intended use\n", grid + "## Intended use\n", 1)
