"""Where and at what precision a policy runs: ``--device`` and ``--dtype``.

A policy is placed whole (codec and normaliser included) with :func:`place`: its floating weights
take ``dtype``, except modules that declare ``keeps_float32 = True`` (the normaliser's statistics),
which stay float32. Inference then runs under :func:`autocast` at that precision while the streams
the sampler integrates stay float32 (each flow step's arithmetic, the timesteps and their sinusoidal
features), as the papers' code keeps its latents and schedules in float32 under bfloat16 weights.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from wamzoo.errors import UsageError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` (or None): CUDA, else MPS, else CPU; a named device must be available."""
    if isinstance(device, torch.device):
        return device
    name = (device or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise UsageError(f"unknown device {device!r}; use one of {', '.join(DEVICES)} (or cuda:N)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r}: torch sees no CUDA GPU here; use --device cpu (or auto)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"device {device!r}: MPS is not available here; use --device cpu (or auto)")
    return torch.device(name)


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """``float32`` (default), ``bfloat16`` or ``float16``."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise UsageError(f"dtype {dtype}: use one of {', '.join(DTYPES)}")
        return dtype
    if (dtype or "float32") not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    return DTYPES[dtype or "float32"]


def place(module: nn.Module, device: str | torch.device | None = None, dtype: str | torch.dtype | None = None):
    """Move ``module`` to ``device`` and its floating weights to ``dtype`` (``keeps_float32`` modules stay float32)."""
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    module.to(device=device, dtype=dtype)
    for m in module.modules():
        if getattr(m, "keeps_float32", False):
            m.float()
    return module


def autocast(device: torch.device, dtype: torch.dtype):
    """Autocast at ``dtype`` on ``device`` (nothing at float32)."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
