"""ProblemGenerator's model folder: the templates as JSON or the language model as safetensors (+ its
tokenizer), and the novelty index (hashes of the training problems) as safetensors. No pickle."""
from __future__ import annotations

from pathlib import Path

from ..core.errors import CheckpointError
from .novelty import NoveltyIndex

NOVELTY_FILE = "novelty.safetensors"


def save(task, folder: Path) -> dict:
    from safetensors.numpy import save_file

    if task.index is not None:
        save_file(task.index.to_arrays(), str(folder / NOVELTY_FILE))
    ngram = task.index.n if task.index is not None else None
    if task.uses_templates:
        task.model.save(folder)
        return {"format": "templates", "ngram": ngram}
    from safetensors.torch import save_file as save_torch

    from ..core.checkpoint import _unshared

    # tied weights (GPT-2's lm_head = wte) are written under both names; the strict load re-fills both
    save_torch(_unshared(task.model.state_dict()), str(folder / "model.safetensors"))
    task.tokenizer.save_pretrained(str(folder))
    return {"format": "hf-lm", "kind": task._kind(), "model_config": task.model.config.to_diff_dict(), "ngram": ngram}


def load(task, folder: Path, config: dict) -> None:
    w = config["weights"]
    if w["format"] not in ("templates", "hf-lm"):  # a KeyError names the missing entry
        raise CheckpointError(f"config.json's weights format {str(w['format'])[:40]!r} is not 'templates' or 'hf-lm'")
    if w["format"] == "templates":
        from .bank import TemplateBank

        task.model = TemplateBank.load(folder)
    else:
        from safetensors.torch import load_file as load_torch

        from .model import rebuild

        task.model, task.tokenizer = rebuild(w["model_config"], folder)
        task.model.load_state_dict(load_torch(str(folder / "model.safetensors")))
        task.model.eval()
    path = folder / NOVELTY_FILE
    if path.exists():
        task.index = _load_index(path, w.get("ngram"))


def _load_index(path: Path, n) -> NoveltyIndex:
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(path))
    except Exception as e:  # a corrupt file: safetensors raises its own error types
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__})") from None
    hashes, lengths = arrays.get("ngram_hashes"), arrays.get("ngram_doc_lengths")
    if not isinstance(n, int) or n < 1 or hashes is None or lengths is None \
            or int(lengths.sum()) != len(hashes) or (lengths < 0).any():
        raise CheckpointError(f"{path}: the novelty index is inconsistent (n-gram size {n!r})")
    return NoveltyIndex.from_arrays(arrays, n)
