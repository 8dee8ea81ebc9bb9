"""numba, optional: compiled loops for the kit's hot spots (BPR's SGD, the top-k engine's
int8 candidate selection and canonical rescoring).

numba is the ``fast`` extra (``pip install "recsys-kit[fast]"``). Without it this module still
imports, :func:`numba_available` says ``False``, :func:`jit` returns functions unchanged (plain,
slow Python, enough to read them and check one case by hand), and the kit's callers take their
torch routes instead.

Example:
    >>> double = jit(lambda x: 2 * x)
    >>> double(3)
    6
"""

from __future__ import annotations

from collections.abc import Callable

try:
    import numba
except ImportError:  # optional: every caller has a torch route without it
    numba = None

__all__ = ["INSTALL_HINT", "numba_available", "jit"]

INSTALL_HINT = 'pip install "recsys-kit[fast]"  (or: pip install numba)'


def numba_available() -> bool:
    """Whether numba imports here (the compiled routes need it)."""
    return numba is not None


def jit(fn: Callable) -> Callable:
    """``numba.njit`` (no fast-math: IEEE results, the same bits as the torch routes; releases
    the GIL, so the engine's worker threads run it in parallel) with an on-disk cache when
    possible; ``fn`` itself without numba."""
    if numba is None:
        return fn
    try:
        return numba.njit(cache=True, fastmath=False, nogil=True)(fn)
    except RuntimeError:  # "no locator available": no writable cache folder anywhere
        return numba.njit(cache=False, fastmath=False, nogil=True)(fn)
