"""Shared pytest setup: the course's markers, and GPU tests skipped where no GPU is present."""

from __future__ import annotations

import pytest

MARKERS = {
    "slow": "takes more than a few seconds (still part of make test)",
    "notebooks": "executes course notebooks (solution/release round-trips)",
    "gpu": "needs a CUDA GPU; skipped without one",
    "browser": "drives headless Chromium against JupyterLab",
}


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers (also listed in pyproject.toml) so --strict-markers accepts them."""
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu`` tests on machines without CUDA (torch is only imported when one exists)."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not _cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
        for item in gpu_items:
            item.add_marker(skip)
