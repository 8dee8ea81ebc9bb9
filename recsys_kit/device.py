"""Pick the compute device and dtype in one place (cuda > mps > cpu).

Every module that touches torch asks :func:`get_device` rather than testing
``torch.cuda.is_available()`` itself, so a course runs unchanged on a laptop, a GPU server or
a grader, and ``$RECSYS_DEVICE`` can force a choice (d2l's ``try_gpu``, sentence-transformers'
``get_device_name``).

Example:
    >>> from recsys_kit.device import get_device, get_dtype
    >>> get_device("cpu").type
    'cpu'
    >>> get_dtype(get_device("cpu"))
    torch.float32
"""

from __future__ import annotations

import os

import torch

from recsys_kit.constants import ENV_DEVICE

#: Precision names accepted by :func:`get_dtype`.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Resolve the device to run on.

    Args:
        device: an explicit choice (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a
            ``torch.device``). ``None`` reads ``$RECSYS_DEVICE``, then picks
            cuda > mps > cpu.

    Returns:
        The ``torch.device``.

    Raises:
        RuntimeError: when an explicitly requested accelerator is not available.
    """
    if device is None:
        device = os.environ.get(ENV_DEVICE) or None
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {str(dev)!r} was requested but CUDA is not available here. "
            f"Use device='cpu' (or unset {ENV_DEVICE})."
        )
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise RuntimeError("device 'mps' was requested but is not available. Use device='cpu'.")
    return dev


def get_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """The floating-point dtype to compute in on ``device``.

    Policy: fp32 on CPU unless asked otherwise (exact, and what the tests compare against);
    on a GPU ``"auto"`` means bf16 where supported (Ampere and newer), else fp16.

    Args:
        device: from :func:`get_device`.
        precision: one of ``"auto"``, ``"fp32"``, ``"bf16"``, ``"fp16"``.

    Returns:
        The torch dtype.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def describe(device: torch.device | None = None) -> str:
    """A one-line description of the device, for notebook headers and benchmark reports."""
    dev = device or get_device()
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    if dev.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return dev.type
