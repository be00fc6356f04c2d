"""The precision a run really uses, and the one autocast every task runs under.

bf16 pays only where the hardware has it: a GPU with bf16 (Ampere and later) or a CPU with
oneDNN's bf16 kernels (AVX-512 and newer x86). Elsewhere torch emulates it: on a 2-core AMD EPYC
with AVX2 only, a MiniLM-sized training step took 37.3 s in bf16 against 4.1 s in fp32
(benchmarks/cpu_bf16.py), and oneDNN's LSTM refuses bf16 outright ("could not create a primitive descriptor"). Most laptops are such
CPUs, and every task's default is "bf16-mixed", so there bf16 is replaced by fp32, with a warning
once per process; the card records the precision used.
"""
from __future__ import annotations

import contextlib
import logging
import os

log = logging.getLogger("edu_flash")
_warned: set[str] = set()
BF16 = ("bf16-mixed", "bf16-true")


def native_bf16(device_type: str) -> bool:
    """Whether bf16 runs on hardware kernels here. EDU_FLASH_NATIVE_BF16=0/1 overrides the check
    (tests use it to take both paths on any machine)."""
    forced = os.environ.get("EDU_FLASH_NATIVE_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    import torch

    if device_type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):   # a torch without the probe: assume emulation
        return False


def effective(precision: str, device_type: str) -> str:
    """`precision`, or "32" when it asks for bf16 on hardware without it (warned once)."""
    if precision not in BF16 or native_bf16(device_type):
        return precision
    if device_type not in _warned:
        _warned.add(device_type)
        what = "this GPU" if device_type == "cuda" else _cpu_name()
        log.warning("precision=%r: %s has no native bf16 (torch would emulate it, about 10x slower, and "
                    "LSTMs refuse it), so this runs in fp32; pass precision='32' to silence this", precision, what)
    return "32"


def autocast(precision: str, device_type: str):
    """The autocast context for `precision` on this device (bf16 only where it is native)."""
    import torch

    precision = effective(precision, device_type)
    if precision == "bf16-mixed":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    if precision == "16-mixed":
        return torch.autocast(device_type, dtype=torch.float16)
    return contextlib.nullcontext()


def _cpu_name() -> str:
    import torch

    return f"this CPU ({torch.backends.cpu.get_cpu_capability()})"
