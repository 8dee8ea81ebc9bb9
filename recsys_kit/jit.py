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

__all__ = ["INSTALL_HINT", "numba_available", "jit", "prefetch"]

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


def _prefetch_intrinsic() -> Callable:
    """``prefetch(arr, i)`` inside compiled code: LLVM's ``llvm.prefetch`` of ``arr.flat[i]``
    (read, into L2: locality 2), a hint that costs one instruction. A gather of rows at random
    addresses (the engine's rescoring) is bound by memory latency; asking for the next rows
    while scoring this one measured ~30 % faster on 2048 random 1.5 KiB rows."""
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic

    @intrinsic
    def prefetch(typingctx, arr, idx):  # noqa: ARG001 (numba's signature)
        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = builder.module.declare_intrinsic("llvm.prefetch", [i8p], fnty)
            ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), i8p)
            builder.call(fn, [ptr, i32(0), i32(2), i32(1)])  # read, L2, data cache
            return context.get_dummy_value()

        return types.void(arr, idx), codegen

    return prefetch


def _no_prefetch(arr: object, idx: int) -> None:  # noqa: ARG001 (the same signature)
    """Without numba: nothing to hint."""


prefetch = _prefetch_intrinsic() if numba is not None else _no_prefetch
