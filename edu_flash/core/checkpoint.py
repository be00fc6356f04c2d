"""Training checkpoints for exact resume, as safetensors + JSON (no pickle).

A checkpoint folder holds the model weights, the optimizer tensors and their JSON skeleton, the
scheduler state, every RNG state (python, numpy, torch, cuda per rank) and the trainer's progress
(epoch, batch within the epoch, optimizer step, early-stopping state). Folders are written
atomically and named by step, so the newest complete one is the resume point.
"""
from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

from .io import atomic_folder, write_json
from .modelfolder import check_weight_files, loading, read_json_file

_STEP = re.compile(r"^step-(\d+)$")


def _unshared(state: dict) -> dict:
    """Tied weights (e.g. GPT-2's embeddings and LM head) share memory, which safetensors refuses:
    write a copy under each name; a strict load_state_dict fills both."""
    seen, out = set(), {}
    for k, v in state.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset()) if v.numel() else None
        out[k] = v.detach().clone().contiguous() if key in seen else v.detach().contiguous()
        if key is not None:
            seen.add(key)
    return out


def _same(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
                                        and torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def _flatten_optimizer(sd: dict):
    import torch

    tensors, skeleton = {}, {"param_groups": sd["param_groups"], "state": {}}
    for idx, st in sd["state"].items():
        skeleton["state"][str(idx)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{idx}.{k}"] = v.detach().cpu().contiguous()
                skeleton["state"][str(idx)][k] = {"tensor": f"{idx}.{k}"}
            else:
                skeleton["state"][str(idx)][k] = {"value": v}
    return tensors, skeleton


def _unflatten_optimizer(tensors: dict, skeleton: dict) -> dict:
    state = {int(i): {k: tensors[v["tensor"]] if "tensor" in v else v["value"] for k, v in st.items()}
             for i, st in skeleton["state"].items()}
    return {"state": state, "param_groups": skeleton["param_groups"]}


def _scheduler_state(scheduler) -> dict:
    sd = scheduler.state_dict()
    sd["lr_lambdas"] = [d if isinstance(d, dict) else None for d in sd.get("lr_lambdas", [])]
    return sd


def rng_state() -> tuple[dict, dict]:
    import numpy as np
    import torch

    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            tensors[f"cuda.{i}"] = torch.cuda.get_rng_state(i)
    np_state = np.random.get_state()
    meta = {"python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]}
    return tensors, meta


def set_rng_state(tensors: dict, meta: dict) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(tensors["torch"])
    for k, v in tensors.items():
        if k.startswith("cuda.") and torch.cuda.is_available():
            torch.cuda.set_rng_state(v, int(k.split(".")[1]))
    py = meta["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = meta["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))


def save(run_dir: Path, *, step: int, model_state: dict, optimizer, scheduler, progress: dict,
         best_state: dict | None, rank: int = 0, keep: int = 1, extra: dict | None = None) -> Path:
    """Write checkpoint `step-N` (rank 0 writes model/optimizer; each rank its own RNG), then delete
    all but the newest `keep`: the newest complete checkpoint is all an exact resume needs. Best
    weights equal to the current ones are not written twice."""
    from safetensors.torch import save_file

    ckpt_root = Path(run_dir) / "checkpoints"
    target = ckpt_root / f"step-{step:08d}"
    with atomic_folder(target) as tmp:
        save_file(_unshared(model_state), str(tmp / "model.safetensors"))
        if best_state is not None and not _same(best_state, model_state):
            save_file(_unshared(best_state), str(tmp / "best.safetensors"))
        if extra:
            save_file({k: v.detach().cpu().contiguous() for k, v in extra.items()}, str(tmp / "extra.safetensors"))
        opt_tensors, skeleton = _flatten_optimizer(optimizer.state_dict())
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        rng_t, rng_meta = rng_state()
        save_file(rng_t, str(tmp / f"rng-rank{rank}.safetensors"))
        write_json(tmp / "trainer_state.json", {"progress": progress, "optimizer": skeleton,
                                                "scheduler": _scheduler_state(scheduler), "rng": rng_meta})
    for old in sorted(p for p in ckpt_root.iterdir() if _STEP.match(p.name))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest(run_dir: Path) -> Path | None:
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return None
    found = sorted(p for p in root.iterdir() if _STEP.match(p.name) and (p / "trainer_state.json").exists())
    return found[-1] if found else None


def load(path: Path, *, model, optimizer, scheduler, rank: int = 0, load_extra=None) -> tuple[dict, dict | None]:
    """Restore everything in place; returns (progress, best_state or None)."""
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_json_file(path / "trainer_state.json", path)
    check_weight_files(path)
    with loading(path, "cannot resume from this checkpoint"):
        weights = load_file(str(path / "model.safetensors"))
        model.load_state_dict(weights)  # copies: `weights` stays the checkpoint's own
        optimizer.load_state_dict(_unflatten_optimizer(load_file(str(path / "optimizer.safetensors")),
                                                       meta["optimizer"]))
        scheduler.load_state_dict(meta["scheduler"])
        rng_file = path / f"rng-rank{rank}.safetensors"
        set_rng_state(load_file(str(rng_file if rng_file.exists() else path / "rng-rank0.safetensors")),
                      meta["rng"])
        if load_extra is not None and (path / "extra.safetensors").exists():
            load_extra(load_file(str(path / "extra.safetensors")))
        best = path / "best.safetensors"
        if best.exists():
            return meta["progress"], load_file(str(best))
        # no best file: either no best yet, or the best weights were the checkpoint's own
        has_best = meta["progress"].get("best") is not None
        return meta["progress"], (weights if has_best else None)
