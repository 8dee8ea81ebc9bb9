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


@pytest.fixture(scope="session")
def student_env(tmp_path_factory: pytest.TempPathFactory):
    """The student export, installed by its own Makefile into a fresh venv, once per session.

    As a student's laptop would, except that PyTorch comes from this machine's configured pip
    index (``TORCH_INDEX=``: CI has no internet, and the local CPU wheel is the pinned one) and
    pip's download cache is reused. No ``--system-site-packages``: a dependency the export forgets
    to declare fails here. Used by tests/test_student_export.py and the browser test.

    Returns:
        ``(export folder, the venv's bin folder, the install's output)``.
    """
    import os
    import subprocess
    import sys
    import time

    from recsys_grader.export_student import export_student

    dest = tmp_path_factory.mktemp("student") / "repo"
    outcome = export_student(dest)
    assert not outcome.leaks, outcome.leaks
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    base_python = getattr(sys, "_base_executable", sys.executable)
    start = time.monotonic()
    done = subprocess.run(
        ["make", "install", "TORCH_INDEX=", f"PYTHON={base_python}"],
        cwd=dest,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    print(f"student install: {time.monotonic() - start:.0f} s")
    return dest, dest / ".venv" / "bin", log
