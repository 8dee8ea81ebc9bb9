"""How many CPU threads the kit's heavy steps may use: one switch for torch and BLAS.

Libraries spawn their own thread pools: torch (intra-op), the BLAS behind numpy/scipy
(OpenBLAS, MKL) and OpenMP loops in compiled extensions such as ``implicit``. On a shared
machine, or to compare two implementations fairly, all of them must be limited together:
:func:`thread_limit` sets torch's thread count and the BLAS/OpenMP pools (threadpoolctl) for
the duration of a ``with`` block and restores them after. Every kit class that spawns threads
(``ALS``, ``BPR``, ``ImplicitALS``, ``Recommender.recommend``) takes ``num_threads`` and uses it.
:func:`cpu_threads_for` runs small CPU training steps on one thread, where synchronisation
would cost more than the arithmetic.

Example:
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with thread_limit(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["check_threads", "thread_limit", "cpu_threads_for"]


def check_threads(num_threads: int | None) -> int | None:
    """Validate a ``num_threads`` argument: ``None`` (leave the libraries alone) or an int >= 1."""
    if num_threads is None:
        return None
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(
            "num_threads must be None (the libraries' defaults) or an int >= 1, "
            f"got {num_threads!r}"
        )
    return num_threads


@contextlib.contextmanager
def thread_limit(num_threads: int | None) -> Iterator[None]:
    """Limit torch, BLAS and OpenMP to ``num_threads`` inside the block (``None``: no change).

    Args:
        num_threads: threads per pool, >= 1, or ``None``.
    """
    n = check_threads(num_threads)
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def cpu_threads_for(device: torch.device, n_values: int, limit: int = 2_000_000) -> Iterator[None]:
    """Run small CPU training on one thread (restored afterwards).

    Full-batch steps on a few thousand rows take microseconds of arithmetic; with several
    threads, synchronisation dominates (10x slower on a busy 2-core machine). Large problems
    and accelerators keep the caller's setting.

    Args:
        device: where the training runs; only ``cpu`` is limited.
        n_values: size of the problem (values touched per step).
        limit: problems larger than this keep the caller's thread count.
    """
    if device.type != "cpu" or n_values > limit:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
