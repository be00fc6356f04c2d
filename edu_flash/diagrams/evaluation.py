"""DiagramDiffusion.evaluate: conditional accuracy and Fréchet distance of generated diagrams in the
reference classifier's feature space, beside the real-vs-real distance (the floor) at the same sample size."""
from __future__ import annotations

from ..core.data import read_table
from ..core.errors import NotFittedError
from . import data as D


def evaluate(task, data, *, steps=None, guidance=None, seed: int = 0, max_per_class=None, image_column=None,
             label_column=None, name=None) -> dict:
    """The real images of each class are split in halves A and B; as many images as B holds are generated
    with B's labels; FD(generated, A) is reported next to FD(B, A)."""
    import numpy as np
    import torch

    from . import model as M

    task._require_fitted()
    if task.reference is None:
        raise NotFittedError("this model has no reference classifier; finetune it first")
    hp = task.hparams
    steps, guidance, seed = task._sampling_args(steps, guidance, seed)  # before any image is read
    if max_per_class is not None:
        from .task import _whole

        _whole(max_per_class, "max_per_class", 1)
    cols = task._cols(image_column, label_column)
    table = read_table(D.as_table(data), name=name or "eval", split="test")
    arrays, labels = D.read_images(table, cols["image"], cols["label"], size=hp.image_size, channels=hp.channels)
    ids = np.asarray(task._label_ids(labels, table, cols["label"]))
    half_a, half_b = [], []
    for c in sorted(set(ids.tolist())):
        idx = np.flatnonzero(ids == c)[: (2 * max_per_class if max_per_class else None)]
        half_a += idx[0::2].tolist()
        half_b += idx[1::2].tolist()
    feats, pred = M.reference_outputs(task.reference, torch.from_numpy(np.stack(arrays)))
    gen_ids = np.asarray(ids[half_b].tolist(), dtype=int)
    if not len(gen_ids):
        from ..core.errors import DataError

        raise DataError("evaluation needs at least 2 images of a class (one half is compared with images "
                        "generated for the other)", source=table.source)
    gen = task._sample(task._sampler(True), gen_ids.tolist(), steps, guidance, seed)
    gfeats, gpred = M.reference_outputs(task.reference, gen)
    per_class = [{"class": task.classes[c], "generated": int(sum(gen_ids == c)),
                  "conditional accuracy": float(np.mean(gpred[gen_ids == c] == c)),
                  "reference accuracy (real)": float(np.mean(pred[ids == c] == c))}
                 for c in sorted(set(gen_ids.tolist()))]
    metrics = {"conditional_accuracy": float(np.mean(gpred == gen_ids)),
               "frechet_distance": M.frechet_distance(gfeats, feats[half_a]),
               "frechet_distance_real_floor": M.frechet_distance(feats[half_b], feats[half_a]),
               "reference_accuracy_real": float(np.mean(pred == ids)),
               "generated": len(gen_ids), "sampling_steps": steps,
               "guidance": guidance,
               "per_class": per_class}
    task.card.add_evaluation(name or table.source, {k: v for k, v in metrics.items() if k != "per_class"},
                             {"Per class": per_class})
    return metrics
