"""Helpers for the notebooks' tests: prove a student's function does the work itself.

Exercises ask students to rebuild functions the kit already has (``mean_pool``,
``l2_normalize``, metrics ...). A hidden test must fail when the answer merely calls the kit's
reference. Two complementary checks catch that:

1. static: when grading, the trusted grader reads every cell the student wrote
   (:mod:`recsys_grader.codecheck`): no reference that reaches the reference implementation,
   no dynamic feature that would hide one. When an instructor runs the solution notebook in
   Jupyter, the names the function's code reads from its globals are checked instead;
2. dynamic: while the function runs, the forbidden objects (and the helpers of their own module
   they are built on) are replaced in every kit module by stand-ins that raise, which also
   catches lookups built at run time. In grading this runs in the sandbox: a defence in depth,
   the static check being the one the student cannot touch.

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


#: Objects built by :func:`sandbox_object`: id -> (object, factory name, args, kwargs).
CONSTRUCTED: dict[int, tuple[Any, str, tuple, dict]] = {}


def sandbox_object(factory: Callable, *args: Any, **kwargs: Any) -> Any:
    """An object a test passes to the student's function that is not plain data.

    Built here with ``factory(*args, **kwargs)``; when the judge sends it to the student's
    sandbox, the sandbox builds its own copy with the same call (the factory must be a function
    or class of an installed module, such as the kit; the arguments plain data). Outside
    grading (an instructor running the solution notebook) it is just the object.

    Example:
        >>> from recsys_kit.encoders import word_level_tokenizer
        >>> tok = sandbox_object(word_level_tokenizer, ["a", "b"], unk_token="<unk>")
        >>> tok.tokenize("a z")
        ['a', '<unk>']
    """
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        raise TypeError("sandbox_object needs a function or class of an installed module")
    obj = factory(*args, **kwargs)
    CONSTRUCTED[id(obj)] = (obj, f"{module}:{qualname}", args, kwargs)
    return obj


def names_used_by(fn: Callable) -> set[str]:
    """Every name the code of ``fn`` reads (globals, attributes), with the student's own
    helper functions it calls followed: for tests such as "the re-ranker must not read the
    labels". Works on a graded student's function (its source, read by the grader) and on a
    local function (its bytecode).

    Raises:
        DelegationError: when the code uses features that hide what it reads (``exec``,
            ``globals()``, a computed ``getattr``...).
    """
    remote = getattr(fn, "__recsys_remote__", None)
    if remote is not None:
        from recsys_grader.codecheck import names_in_function

        names, problems = names_in_function(remote.student.code_cells, fn.__name__)
        if problems:
            raise DelegationError(
                "the grader cannot tell what your code reads: " + "; ".join(problems[:5])
            )
        return names
    found: set[str] = set()
    stack = [getattr(fn, "__code__", None)]
    while stack:
        code = stack.pop()
        if code is None:
            continue
        found |= set(code.co_names) | set(code.co_varnames) | set(code.co_freevars)
        stack += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return found


def forbidden_names(forbidden: Iterable[Any]) -> list[str]:
    """``module:qualname`` of each forbidden kit function or class (sent to the sandbox)."""
    names = []
    for obj in forbidden:
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if not (isinstance(module, str) and module.split(".")[0] == "recsys_kit" and qualname):
            raise TypeError(f"{obj!r} is not a function or class of recsys_kit")
        names.append(f"{module}:{qualname}")
    return names


def resolve_forbidden(names: Iterable[str]) -> list[Any]:
    """The objects behind :func:`forbidden_names`, with the helpers they are built on."""
    import importlib

    from recsys_grader.codecheck import implementation_of

    found = []
    for name in names:
        module, _, qualname = str(name).partition(":")
        if module.split(".")[0] != "recsys_kit" or not qualname:
            continue
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        if obj is not None:
            found.append(obj)
    return implementation_of(found)


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
    remote = getattr(fn, "__recsys_remote__", None)
    if remote is not None:  # grading: a student's function in the sandbox
        return remote.call_without(forbidden, args, kwargs)
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
    with references_disabled(implementation_of_forbidden(forbidden)):
        return fn(*args, **kwargs)


def implementation_of_forbidden(forbidden: Iterable[Any]) -> list[Any]:
    """The forbidden objects and the helpers of their own modules they are built on."""
    from recsys_grader.codecheck import implementation_of

    return implementation_of(forbidden)
