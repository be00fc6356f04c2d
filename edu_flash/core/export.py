"""`task.export("model.onnx")`: the task's network as an ONNX graph for deployment.

A task describes what to export with an `ExportSpec` (its `_export_spec` hook): a module whose
forward takes named tensors (and folds in whatever preprocessing belongs in the graph, such as
feature scaling), a function giving example inputs for any sizes of the dynamic axes (batch,
sequence length, ...), and the metadata and card text a user needs to run the file. The graph is
produced by torch.export (`torch.onnx.export(..., dynamo=True)`; the TorchScript exporter where
torch.export cannot keep an axis dynamic), then loaded in onnxruntime and checked against the torch
module at several sizes before anything is written where the caller asked. Next to
`<name>.onnx` go `<name>.onnx.json` (inputs, outputs, preprocessing: what the card's snippet reads)
and any files the task adds (e.g. a tokenizer).
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, EduFlashError

log = logging.getLogger("edu_flash.export")
TOLERANCE = 1e-4


class ExportError(EduFlashError):
    """The network could not be exported, or the exported graph does not compute what torch does."""


@dataclass
class ExportSpec:
    module: Any                                 # torch.nn.Module: forward(*inputs) -> one tensor
    example: Callable[[dict], dict]             # {dimension name: size} -> input tensors by name, in forward's order
    dynamic: dict[str, dict[int, str]]          # input name -> {axis: dimension name}
    output: str                                 # the output's name
    output_axes: dict[int, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # the sizes exported with (default 2 for each dimension)
    max_sizes: dict[str, int] = field(default_factory=dict)  # a dimension's largest size (e.g. a model's window)
    meta: dict = field(default_factory=dict)    # preprocessing facts, written to <name>.onnx.json
    card: Callable[[str], str] | None = None    # file name -> markdown "how to run it" (a python block)
    extra_files: Callable[[Path], None] | None = None  # writes side files for the .onnx path (a tokenizer ...)


def export_onnx(spec: ExportSpec, path: str | os.PathLike, *, opset: int | None = None) -> dict:
    """Write the ONNX file and its side files; returns the metadata. The graph comes from
    torch.export; where that cannot keep an axis dynamic (it specialises nn.LSTM's sizes, for one)
    the TorchScript exporter is used instead. Either way the file is checked with onnxruntime
    against torch at the exported sizes and at other sizes before it is written."""
    try:
        import onnx  # noqa: F401 - torch.onnx.export needs it
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ConfigError("export needs onnx and onnxruntime: pip install 'edu-flash[onnx]'") from None
    path = Path(path)
    if path.suffix != ".onnx":
        raise ConfigError(f"export writes an ONNX file: give a path ending in .onnx, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    modes = {m: m.training for m in spec.module.modules()}  # put back afterwards (the task's model is one)
    spec.module.eval()
    try:
        return _export_checked(spec, path, opset)
    finally:
        for m, training in modes.items():
            m.train(training)


def _export_checked(spec: ExportSpec, path: Path, opset: int | None) -> dict:
    names = {n for axes in spec.dynamic.values() for n in axes.values()}
    sizes = {n: spec.sizes.get(n, 2) for n in names}
    checks = [sizes, {n: v + 3 for n, v in sizes.items()}, {n: 1 for n in names}]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".onnx", dir=path.parent)
    os.close(fd)
    failures = []
    try:
        for exporter in ("torch.export", "TorchScript"):
            try:
                _export(spec, tmp, sizes, opset, dynamo=exporter == "torch.export")
                diff = max(verify(tmp, spec, s) for s in checks)
                break
            except Exception as e:  # noqa: BLE001 - reported below if the other exporter fails too
                failures.append(f"{exporter}: {type(e).__name__}: {str(e).strip().splitlines()[0][:300]}")
        else:
            raise ExportError(f"{type(spec.module).__name__} could not be exported to ONNX; " + "; ".join(failures))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    from .io import write_json

    example = spec.example(sizes)
    meta = {"file": path.name, "exporter": exporter,
            "inputs": {k: {"shape": _shape(k, v, spec.dynamic), "dtype": str(v.dtype).removeprefix("torch.")}
                       for k, v in example.items()},
            "output": {"name": spec.output, "shape": _shape(spec.output, None, {spec.output: spec.output_axes},
                                                            rank=len(spec.output_axes))},
            "max_abs_diff_vs_torch": diff, **spec.meta}
    write_json(path.with_name(path.name + ".json"), meta)
    if spec.extra_files is not None:
        spec.extra_files(path)
    return meta


def _export(spec: ExportSpec, tmp: str, sizes: dict, opset: int | None, *, dynamo: bool) -> None:
    import torch

    example = _on_device(spec, spec.example(sizes))
    quiet = logging.getLogger("torch.onnx._internal.exporter._registration")  # "torchvision is not installed"
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.onnx's progress lines, axis-renaming and tracer notes
            if dynamo:
                dims = {n: torch.export.Dim(n, min=1, max=spec.max_sizes.get(n, int(2**31 - 2)))
                        for axes in spec.dynamic.values() for n in axes.values()}
                shapes = {k: {a: dims[n] for a, n in spec.dynamic.get(k, {}).items()} or None for k in example}
                torch.onnx.export(spec.module, tuple(example.values()), tmp, input_names=list(example),
                                  output_names=[spec.output], dynamic_shapes=shapes, dynamo=True,
                                  opset_version=opset, external_data=False, verbose=False)
            else:
                torch.onnx.export(spec.module, tuple(example.values()), tmp, input_names=list(example),
                                  output_names=[spec.output], dynamo=False, opset_version=opset or 17,
                                  dynamic_axes={**spec.dynamic, spec.output: spec.output_axes})
    finally:
        quiet.setLevel(level)
    _name_output_axes(tmp, spec.output_axes)


def _on_device(spec: ExportSpec, inputs: dict) -> dict:
    device = next(spec.module.parameters()).device
    return {k: v.to(device) for k, v in inputs.items()}


def _name_output_axes(path, axes: dict[int, str]) -> None:
    """Declare the output's dynamic axes by name in the graph and drop the recorded intermediate
    shapes: torch.export can leave sizes of the example there (a GRU's time axis), which
    onnxruntime then warns about on every other size; it infers them itself."""
    import onnx

    model = onnx.load(path)
    del model.graph.value_info[:]
    dims = model.graph.output[0].type.tensor_type.shape.dim
    for i, name in axes.items():
        if i < len(dims):
            dims[i].ClearField("dim_value")
            dims[i].dim_param = name
    onnx.save(model, path)


def _shape(name, tensor, dynamic, rank=None) -> list:
    axes = dynamic.get(name, {})
    n = tensor.dim() if tensor is not None else rank
    return [axes.get(i, int(tensor.shape[i]) if tensor is not None else None) for i in range(n)]


def verify(path, spec: ExportSpec, sizes: dict) -> float:
    """Max abs difference between onnxruntime and torch on example inputs of these sizes;
    ExportError past TOLERANCE or on another shape (an axis the exporter fixed)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    example = _on_device(spec, spec.example(sizes))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {k: v.cpu().numpy() for k, v in example.items()})[0]
    with torch.no_grad():
        want = spec.module(*example.values()).float().cpu().numpy()
    if got.shape != want.shape:
        raise ExportError(f"the exported graph gives shape {got.shape}, torch {want.shape}")
    diff = float(np.max(np.abs(got - want))) if want.size else 0.0
    if not diff <= TOLERANCE:
        raise ExportError(f"the exported graph differs from torch by {diff:.3g} (> {TOLERANCE}) at sizes {sizes}")
    return diff


def session(path_or_bytes, threads: int | None = None):
    """An onnxruntime CPU session (all graph optimisations on)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    src = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    return ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxModule:
    """An onnxruntime session behind the call of the torch module it was exported from (positional
    tensors in, a torch tensor out), for code written against the module (eval/train are no-ops)."""

    training = False

    def __init__(self, sess):
        self.sess = sess
        self.names = [i.name for i in sess.get_inputs()]

    def __call__(self, *tensors):
        import torch

        feed = {n: t.detach().cpu().numpy() for n, t in zip(self.names, tensors)}
        return torch.from_numpy(self.sess.run(None, feed)[0])

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self


def runtime_module(task):
    """The task's network on onnxruntime for `predict(runtime="onnxruntime")`: exported once (to a
    temporary file, checked like `export`), cached on the task until `finetune` changes its weights;
    intra-op threads as many as torch's."""
    import shutil

    import torch

    key = id(task.model)
    cached = task.__dict__.get("_runtime_module")
    if cached is not None and cached[0] == key:
        return cached[1]
    folder = Path(tempfile.mkdtemp(prefix="edu-flash-onnx-"))
    try:
        export_onnx(task._export_spec(), folder / "model.onnx")
        module = OnnxModule(session(folder / "model.onnx", threads=torch.get_num_threads()))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    task._runtime_module = (key, module)
    return module


def card_section(meta: dict, snippet) -> str:
    """The card's "Exported model (ONNX)" text: the file's inputs and output, the check made at
    export, and the task's snippet (`snippet(file_name)`) that runs it with onnxruntime alone."""
    return (f"`{meta['file']}` (written by `export()`): inputs "
            + ", ".join(f"`{k}` {v['shape']} {v['dtype']}" for k, v in meta["inputs"].items())
            + f"; output `{meta['output']['name']}` {meta['output']['shape']}: {meta.get('output_is', '')}. "
            f"Checked with onnxruntime against torch at export (max abs difference "
            f"{meta['max_abs_diff_vs_torch']:.1e}). Run it with onnxruntime alone:\n\n{snippet(meta['file'])}")
