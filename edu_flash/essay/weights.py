"""How each EssayScorer backbone is written to and read from a model folder (safetensors only, no
pickles): the hybrid keeps its ridge arrays plus its own copy of the encoder, so a reload needs no
backbone folder and predicts bit-identically."""
from __future__ import annotations

from pathlib import Path


def save(task, folder: Path) -> dict:
    """Writes the weights; returns what config.json keeps to read them back."""
    if task.backbone == "minilm-hybrid":
        from safetensors.numpy import save_file
        from safetensors.torch import save_model

        arrays, meta = task.model.state_dict()
        save_file(arrays, str(folder / "model.safetensors"))
        encoder = task.model.embedder.encoder
        save_model(encoder, str(folder / "encoder.safetensors"))
        task.model.embedder.tokenizer.save_pretrained(str(folder))
        return {"format": "minilm-hybrid", "meta": meta, "encoder_config": encoder.config.to_diff_dict()}
    if task.backbone_spec().engine == "sklearn":
        from safetensors.numpy import save_file

        arrays, meta = task.model.state_dict()
        save_file(arrays, str(folder / "model.safetensors"))
        return {"format": "tfidf-ridge", "meta": meta}
    from safetensors.torch import save_model

    save_model(task.model, str(folder / "model.safetensors"))
    task.tokenizer.save_pretrained(str(folder))
    return {"format": "torch", "encoder_config": task.model.encoder.config.to_diff_dict(),
            "n_outputs": task.model.n_outputs}


def load(task, folder: Path, config: dict) -> None:
    w = config["weights"]
    if w["format"] == "minilm-hybrid":
        from safetensors.numpy import load_file
        from safetensors.torch import load_model
        from transformers import AutoModel

        from ..core import hfload
        from .hybrid import MiniLMHybrid

        encoder = hfload.model_from_config(AutoModel, hfload.config_from_dict(w["encoder_config"]))
        load_model(encoder, str(folder / "encoder.safetensors"))
        embedder = task._embedder(str(folder), encoder.eval(), hfload.auto_tokenizer(str(folder)))
        task.model = MiniLMHybrid.from_state_dict(load_file(str(folder / "model.safetensors")), w["meta"], embedder)
        return
    if w["format"] == "tfidf-ridge":
        from safetensors.numpy import load_file

        from .baseline import TfidfRidge

        task.model = TfidfRidge.from_state_dict(load_file(str(folder / "model.safetensors")), w["meta"])
        return
    from safetensors.torch import load_model

    from .model import build_from_config

    task.model, task.tokenizer = build_from_config(w["encoder_config"], str(folder), dropout=task.hparams.dropout,
                                                   pooling=task.hparams.pooling, n_outputs=w.get("n_outputs", 1))
    load_model(task.model, str(folder / "model.safetensors"))
    task.model.eval()
