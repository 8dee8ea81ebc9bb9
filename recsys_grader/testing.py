"""Helpers for the notebooks' tests: prove a student's function does the work itself.

Exercises ask students to rebuild functions the kit already has (``mean_pool``,
``l2_normalize``, metrics ...). A hidden test must fail when the answer merely calls the kit's
reference. Two complementary checks catch that:

1. static: the names the function's code (and its nested functions) reads from its globals
   must not resolve to a forbidden object or to a module inside ``recsys_kit``;
2. dynamic: while the function runs, the forbidden objects are replaced in their modules by
   stand-ins that raise, which also catches lookups built at run time (``getattr``, imports).

Example:
    >>> from recsys_kit.encoders import pooling
    >>> def lazy(h, m):
    ...     return pooling.mean_pool(h, m)
    >>> assert_does_not_delegate(lazy, [pooling.mean_pool])   # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    AssertionError: ...
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class DelegationError(AssertionError):
    """Raised when an exercise's answer calls the kit's reference implementation."""


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def referenced_globals(fn: Callable) -> dict[str, Any]:
    """Global names the function (and functions nested in it) reads, with their values."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return {}
    glb = getattr(fn, "__globals__", {})
    names = {n for c in _code_objects(code) for n in c.co_names}
    found = {n: glb[n] for n in names if n in glb}
    for cell in getattr(fn, "__closure__", None) or ():
        with contextlib.suppress(ValueError):  # an empty cell
            found[f"<closure {id(cell)}>"] = cell.cell_contents
    return found


def _is_kit_module(obj: Any) -> bool:
    return isinstance(obj, types.ModuleType) and obj.__name__.split(".")[0] == "recsys_kit"


def _reaches(module: types.ModuleType, banned: set[int], seen: set[int] | None = None) -> bool:
    """Whether a forbidden function is an attribute of ``module`` or of a kit submodule of it.

    Using ``C.COL_USER_ID`` (``recsys_kit.constants``) is fine; reading ``pooling.mean_pool``
    through ``recsys_kit`` or ``recsys_kit.encoders`` is not.
    """
    seen = set() if seen is None else seen
    if id(module) in seen:
        return False
    seen.add(id(module))
    for value in vars(module).values():
        if id(value) in banned:
            return True
        if _is_kit_module(value) and _reaches(value, banned, seen):
            return True
    return False


def delegation_problems(fn: Callable, forbidden: Iterable[Callable]) -> list[str]:
    """Why ``fn`` looks like it delegates to a forbidden reference (empty list: it does not)."""
    banned = {id(f) for f in forbidden}
    problems = []
    for name, value in referenced_globals(fn).items():
        if id(value) in banned:
            problems.append(f"{name!r} is the kit's reference implementation")
        elif _is_kit_module(value) and _reaches(value, banned):
            problems.append(f"{name!r} is the kit module {value.__name__!r}, which holds it")
    return problems


@contextlib.contextmanager
def references_disabled(forbidden: Iterable[Callable]) -> Iterator[None]:
    """Replace each forbidden function, wherever a loaded kit module holds it, by one that raises.

    Args:
        forbidden: the reference functions the answer must not call.
    """
    forbidden = list(forbidden)
    banned = {id(f) for f in forbidden}

    def _raiser(name: str) -> Callable:
        def stand_in(*args: Any, **kwargs: Any) -> Any:
            raise DelegationError(
                f"this exercise asks you to implement it yourself: your answer called the "
                f"kit's reference {name}()"
            )

        return stand_in

    patched: list[tuple[types.ModuleType, str, Any]] = []
    for mod in list(sys.modules.values()):
        if not _is_kit_module(mod):
            continue
        for attr, value in list(vars(mod).items()):
            if id(value) in banned:
                patched.append((mod, attr, value))
                setattr(mod, attr, _raiser(getattr(value, "__name__", attr)))
    try:
        yield
    finally:
        for mod, attr, value in patched:
            setattr(mod, attr, value)


def assert_does_not_delegate(
    fn: Callable, forbidden: Iterable[Callable], *args: Any, **kwargs: Any
) -> Any:
    """Fail when ``fn`` uses a forbidden reference; otherwise run it once and return its result.

    Args:
        fn: the student's function.
        forbidden: reference functions from the kit that ``fn`` must not call.
        args, kwargs: a call to run with the references disabled (optional: none, no call).

    Returns:
        ``fn(*args, **kwargs)`` when arguments were given, else None.

    Raises:
        DelegationError: naming what was used.
    """
    forbidden = list(forbidden)
    if not inspect.isfunction(fn):
        raise DelegationError(
            f"{getattr(fn, '__name__', fn)!r} must be a function you define with def"
        )
    module = getattr(fn, "__module__", None) or ""  # None for functions made by exec()
    if id(fn) in {id(f) for f in forbidden} or module.split(".")[0] == "recsys_kit":
        raise DelegationError(
            f"{fn.__name__!r} is the kit's own function: write the exercise's function yourself"
        )
    problems = delegation_problems(fn, forbidden)
    if problems:
        raise DelegationError(
            "implement this exercise yourself instead of calling the kit: " + "; ".join(problems)
        )
    if not args and not kwargs:
        return None
    with references_disabled(forbidden):
        return fn(*args, **kwargs)
