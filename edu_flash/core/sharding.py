"""FSDP2 for the trainer: torch's `fully_shard` over a 1-D device mesh, applied here ourselves.

accelerate silently ignores its FSDP plugin on CPU (every rank would then train alone), so the
trainer shards with torch's own API on CPU and GPU alike: each parameter becomes a DTensor whose
local part is this rank's shard. Full state dicts are gathered with torch.distributed.checkpoint's
state-dict helpers for checkpoints and for handing a plain, unsharded model back to the task.
"""
from __future__ import annotations


def shard_model(model, device):
    """Shard `model` in place across the default process group; returns it.

    Every block inside an nn.ModuleList (transformer layers, UNet blocks) becomes its own FSDP
    unit, innermost first (FSDP2 wants children before parents), then the root takes the rest.
    Weights are first broadcast from rank 0, so all ranks start from the same model.
    """
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    model.to(device)
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0)
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    blocks = [b for m in model.modules() if isinstance(m, torch.nn.ModuleList) for b in m]
    for block in reversed(blocks):
        if any(True for _ in block.parameters()):
            fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def full_state_dict(model) -> dict:
    """The unsharded state dict on every rank, on CPU (collective: all ranks must call).

    One parameter is all-gathered at a time and moved to CPU at once, so a GPU never holds more
    than its shards plus one full tensor."""
    from torch.distributed.tensor import DTensor

    out = {}
    for k, v in model.state_dict().items():
        full = v.full_tensor() if isinstance(v, DTensor) else v
        out[k] = full.detach().to("cpu", copy=True)
    return out


def _fqns(model, optimizer) -> list[str]:
    """Parameter names in the optimizer's order: the bridge between torch.distributed.checkpoint's
    name-keyed optimizer state and the index-keyed layout of a plain optimizer's state_dict."""
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps one
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for g in inner.param_groups for p in g["params"]]


class CheckpointView:
    """Makes a sharded model + optimizer look like plain ones to core.checkpoint: `gather()`
    (collective) fills full state on rank 0; `load_state_dict` takes full, index-keyed state on
    every rank and keeps only this rank's shards."""

    def __init__(self, model, optimizer):
        self.model, self.optimizer = model, optimizer
        self.optimizer_view = _OptimizerView(self)
        self._model_sd, self._optim_sd = {}, {}

    def gather(self) -> dict:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        inner = getattr(self.optimizer, "optimizer", self.optimizer)
        msd, osd = get_state_dict(self.model, inner,
                                  options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not osd:  # other ranks: cpu_offload keeps the gathered state on rank 0 only
            return msd
        index = {n: i for i, n in enumerate(_fqns(self.model, self.optimizer))}
        groups = [{**g, "params": [index[n] for n in g["params"]]} for g in osd["param_groups"]]
        self._optim_sd = {"state": {index[n]: st for n, st in osd["state"].items()}, "param_groups": groups}
        return msd

    def load_state_dict(self, sd: dict) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        set_model_state_dict(self.model, sd, options=StateDictOptions(full_state_dict=True))


class _OptimizerView:
    def __init__(self, owner: CheckpointView):
        self.owner = owner

    def state_dict(self) -> dict:
        return self.owner._optim_sd

    def load_state_dict(self, sd: dict) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        names = _fqns(self.owner.model, self.owner.optimizer)
        osd = {"state": {names[int(i)]: st for i, st in sd["state"].items()},
               "param_groups": [{**g, "params": [names[int(i)] for i in g["params"]]} for g in sd["param_groups"]]}
        inner = getattr(self.owner.optimizer, "optimizer", self.owner.optimizer)
        set_optimizer_state_dict(self.owner.model, inner, osd, options=StateDictOptions(full_state_dict=True))
