"""Mutants of a reference solution: small, plausible bugs made by rewriting its syntax tree.

``recsys-course check-tests`` (:mod:`recsys_grader.checktests`) grades every mutant of an
exercise's solution with that exercise's tests: a test suite that lets a mutant through has a
hole a student's bug can slip through too. The operators mimic students' mistakes: off-by-one
constants and slice bounds, flipped comparisons, ``and``/``or``, arithmetic swaps, a dropped
normalisation (``a / b`` -> ``a``), the wrong axis, an unstable or reversed sort, dtype changes,
``min``/``max`` swaps, removed guards (``if ...: raise``), removed keyword arguments, dropped
calls (``.copy()``, ``.dropna()``, ``float(...)``), dropped statements.

Only the code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` is mutated. Each mutant has
a stable id (the operator and a hash of the exercise, the original and the replacement text, and
which occurrence of that same rewrite it is), so an instructor can list a truly equivalent
mutant by id (``equivalent_mutants.txt``) and the id survives edits elsewhere in the notebook.
Which mutants are kept when there are too many is decided by the ids alone (deterministic).

Example:
    >>> src = "def f(x):\\n    ### BEGIN SOLUTION\\n    return x[:3]\\n    ### END SOLUTION"
    >>> [m.note for m in mutants(src, "00_f")]
    ['line 3: `3` -> `4` in `x[:3]`', 'line 3: `3` -> `2` in `x[:3]`']
"""

from __future__ import annotations

import ast
import copy
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"


@dataclass(frozen=True)
class Mutant:
    """One rewritten answer cell.

    Attributes:
        ident: stable id, e.g. ``cmp-3f9a2c``.
        operator: the kind of rewrite (``cmp``, ``const``, ``axis``...).
        line: line of the answer cell that changed (1-based).
        before: the original code of the node.
        after: its replacement.
        source: the whole answer cell, rewritten (comments are lost).
        context: the expression around a small node (a constant, a name), for reports.
    """

    ident: str
    operator: str
    line: int
    before: str
    after: str
    source: str
    context: str = ""

    @property
    def note(self) -> str:
        """One line for reports: where and what changed."""
        where = f" in `{_short(self.context, 50)}`" if self.context else ""
        return f"line {self.line}: `{_short(self.before)}` -> `{_short(self.after)}`{where}"


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def solution_spans(source: str) -> list[tuple[int, int]]:
    """Line ranges (1-based, inclusive) strictly inside each BEGIN/END SOLUTION pair."""
    spans, start = [], None
    for number, line in enumerate(source.split("\n"), start=1):
        if line.strip() == BEGIN_SOLUTION:
            start = number + 1
        elif line.strip() == END_SOLUTION and start is not None:
            spans.append((start, number - 1))
            start = None
    return spans


# --- operators -----------------------------------------------------------------------------------

_CMP = {
    ast.Lt: (ast.LtE, ast.Gt),
    ast.LtE: (ast.Lt, ast.GtE),
    ast.Gt: (ast.GtE, ast.Lt),
    ast.GtE: (ast.Gt, ast.LtE),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
}
_ARITH = {
    ast.Add: (ast.Sub,),
    ast.Sub: (ast.Add,),
    ast.Mult: (ast.Div,),
    ast.Div: (ast.Mult, ast.FloorDiv),
    ast.FloorDiv: (ast.Div,),
    ast.Pow: (ast.Mult,),
    ast.Mod: (ast.FloorDiv,),
}
#: ``a op b`` -> ``a``: a dropped normalisation, offset, weight or term.
_DROP_RIGHT = (ast.Div, ast.Sub, ast.Mult, ast.Add)


def _pairs(*pairs: tuple[str, str]) -> dict[str, str]:
    out = {}
    for a, b in pairs:
        out[a], out[b] = b, a
    return out


_MINMAX = _pairs(
    ("min", "max"),
    ("argmin", "argmax"),
    ("nanmin", "nanmax"),
    ("amin", "amax"),
    ("minimum", "maximum"),
    ("fmin", "fmax"),
    ("idxmin", "idxmax"),
    ("nsmallest", "nlargest"),
    ("floor", "ceil"),
    ("cummin", "cummax"),
    ("any", "all"),
)
_AGG = _pairs(("mean", "sum"), ("nanmean", "nansum"))
_DTYPES = {
    **_pairs(("float32", "float64"), ("int32", "int64")),
    "float16": "float32",
    "double": "float",
    "long": "int",
}
_DTYPE_NAMES = _pairs(("float", "int"))
#: Built-in calls whose only argument passes through when the call is dropped.
_UNWRAP_BUILTINS = {"int", "float", "str", "bool", "list", "tuple", "set", "sorted", "abs", "round"}
#: Library functions (``np.maximum(x, eps)``) whose first argument passes through when dropped.
_UNWRAP_FUNCTIONS = {
    "asarray",
    "array",
    "as_tensor",
    "maximum",
    "minimum",
    "clip",
    "clamp",
    "abs",
    "nan_to_num",
    "round",
    "ascontiguousarray",
    "broadcast_to",
}
#: Methods whose receiver passes through when the call is dropped (``x.copy()`` -> ``x``).
_UNWRAP_METHODS = {
    "copy",
    "clone",
    "detach",
    "dropna",
    "fillna",
    "unique",
    "drop_duplicates",
    "strip",
    "lower",
    "casefold",
    "reset_index",
    "astype",
    "item",
    "tolist",
    "to_numpy",
    "float",
    "double",
    "long",
    "abs",
    "clip",
    "clamp",
    "to",
    "sort_index",
    "sort_values",
    "squeeze",
    "ravel",
    "flatten",
    "sum_duplicates",
}
_AXIS_KEYWORDS = {"axis", "dim"}
_ORDER_KEYWORDS = {"ascending", "reverse", "descending", "largest"}
_EXCEPTIONS = {"ValueError", "KeyError", "TypeError", "IndexError"}


def _const(value: object) -> ast.Constant:
    return ast.Constant(value=value)


def _offset(node: ast.expr, delta: int) -> ast.expr:
    op = ast.Add() if delta > 0 else ast.Sub()
    return ast.BinOp(left=node, op=op, right=_const(abs(delta)))


def _callee(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _call_variants(node: ast.Call) -> Iterator[tuple[str, ast.AST]]:
    name, func = _callee(node), node.func
    single = len(node.args) >= 1 and not any(isinstance(a, ast.Starred) for a in node.args[:1])
    if isinstance(func, ast.Name) and name in _UNWRAP_BUILTINS and single:
        if name == "round" or len(node.args) == 1 and not node.keywords:
            yield ("dtype" if name in ("int", "float") else "unwrap"), node.args[0]
    elif isinstance(func, ast.Attribute):
        base_is_module = isinstance(func.value, ast.Name) and func.value.id in ("np", "torch")
        if base_is_module and name in _UNWRAP_FUNCTIONS and single:
            yield "unwrap", node.args[0]
        elif not base_is_module and name in _UNWRAP_METHODS:
            operator = "dtype" if name in ("astype", "float", "double", "long") else "unwrap"
            yield operator, func.value
        if name == "astype" and len(node.args) == 1:
            arg = node.args[0]
            if isinstance(arg, ast.Name) and arg.id in _DTYPE_NAMES:
                new = copy.copy(node)
                new.args = [ast.Name(id=_DTYPE_NAMES[arg.id], ctx=ast.Load())]
                yield "dtype", new
    if isinstance(func, ast.Name) and name == "range" and node.args:
        last = node.args[min(len(node.args), 2) - 1]
        if not isinstance(last, ast.Constant):
            new = copy.copy(node)
            new.args = list(node.args)
            new.args[min(len(node.args), 2) - 1] = _offset(last, -1)
            yield "slice", new
    for i, kw in enumerate(node.keywords):
        rest = node.keywords[:i] + node.keywords[i + 1 :]
        value = kw.value
        constant = value.value if isinstance(value, ast.Constant) else None
        if kw.arg in _AXIS_KEYWORDS and type(constant) is int:
            other = 1 if constant == 0 else 0
            new = copy.copy(node)
            new.keywords = [*rest[:i], ast.keyword(arg=kw.arg, value=_const(other)), *rest[i:]]
            yield "axis", new
        if kw.arg == "kind" or (kw.arg == "stable" and isinstance(value, ast.Constant)):
            new = copy.copy(node)
            new.keywords = rest
            yield "stable", new
            continue
        if kw.arg in _ORDER_KEYWORDS and type(constant) is bool:
            new = copy.copy(node)
            flipped = ast.keyword(arg=kw.arg, value=_const(not constant))
            new.keywords = [*rest[:i], flipped, *rest[i:]]
            yield "reverse", new
            continue
        if kw.arg in ("min", "max"):
            new = copy.copy(node)
            swapped = ast.keyword(arg="max" if kw.arg == "min" else "min", value=value)
            new.keywords = [*rest[:i], swapped, *rest[i:]]
            yield "minmax", new
        if kw.arg == "dtype" and isinstance(value, ast.Name) and value.id in _DTYPE_NAMES:
            new = copy.copy(node)
            swapped = ast.keyword(arg="dtype", value=ast.Name(id=_DTYPE_NAMES[value.id]))
            new.keywords = [*rest[:i], swapped, *rest[i:]]
            yield "dtype", new
        new = copy.copy(node)
        new.keywords = rest
        yield "kwarg", new


def _variants(node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """Every rewrite of one node: ``(operator, replacement)``; the node is never changed."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield "bool", _const(not value)
        elif isinstance(value, int):
            yield "const", _const(value + 1)
            yield "const", _const(value - 1)
        elif isinstance(value, float):
            yield "const", _const(0.0 if value else 1.0)
        elif isinstance(value, str) and value in _DTYPES:
            yield "dtype", _const(_DTYPES[value])
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for other in _CMP.get(type(op), ()):
                new = copy.copy(node)
                new.ops = [*node.ops[:i], other(), *node.ops[i + 1 :]]
                yield "cmp", new
    elif isinstance(node, ast.BoolOp):
        new = copy.copy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield "bool", new
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub | ast.Invert):
        yield ("neg" if isinstance(node.op, ast.USub) else "not"), node.operand
    elif isinstance(node, ast.BinOp):
        for other in _ARITH.get(type(node.op), ()):
            new = copy.copy(node)
            new.op = other()
            yield "arith", new
        if isinstance(node.op, _DROP_RIGHT):
            yield "drop", node.left
    elif isinstance(node, ast.AugAssign):
        for other in _ARITH.get(type(node.op), ()):
            new = copy.copy(node)
            new.op = other()
            yield "arith", new
        yield "stmt", ast.Pass()
    elif isinstance(node, ast.Slice):
        for field in ("lower", "upper"):
            bound = getattr(node, field)
            if bound is not None and not isinstance(bound, ast.Constant | ast.UnaryOp):
                for delta in (1, -1):
                    new = copy.copy(node)
                    setattr(new, field, _offset(bound, delta))
                    yield "slice", new
    elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        step = node.slice.step
        if (
            node.slice.lower is None
            and node.slice.upper is None
            and isinstance(step, ast.UnaryOp)
            and isinstance(step.op, ast.USub)
        ):
            yield "reverse", node.value
    elif isinstance(node, ast.Call):
        yield from _call_variants(node)
    elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        if node.id in _MINMAX and node.id in ("min", "max", "any", "all"):
            yield "minmax", ast.Name(id=_MINMAX[node.id], ctx=ast.Load())
    elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
        for table, operator in ((_MINMAX, "minmax"), (_AGG, "agg"), (_DTYPES, "dtype")):
            if node.attr in table:
                new = copy.copy(node)
                new.attr = table[node.attr]
                yield operator, new
    elif isinstance(node, ast.If) and not node.orelse:
        if node.body and all(isinstance(s, ast.Raise) for s in node.body):
            yield "guard", ast.Pass()
    elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
        if isinstance(node.exc.func, ast.Name) and node.exc.func.id in _EXCEPTIONS:
            new = copy.copy(node)
            new.exc = copy.copy(node.exc)
            new.exc.func = ast.Name(id="RuntimeError", ctx=ast.Load())
            yield "raise", new
    elif isinstance(node, ast.Assert):
        yield "guard", ast.Pass()
    elif _in_place(node):
        yield "stmt", ast.Pass()


def _in_place(node: ast.AST) -> bool:
    """A statement whose only effect is a change in place (a call, an item assignment)."""
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Call)
    return isinstance(node, ast.Assign) and all(isinstance(t, ast.Subscript) for t in node.targets)


# --- the tree walk -------------------------------------------------------------------------------


@dataclass
class _Slot:
    node: ast.AST
    parent: ast.AST | None
    field: str
    index: int | None
    up: int | None  # position of the parent's slot


def _walk(tree: ast.AST) -> list[_Slot]:
    """Every node with where it hangs, in a fixed pre-order; f-strings (messages) are skipped."""
    out: list[_Slot] = []

    def visit(node: ast.AST, parent: ast.AST | None, field: str, index: int | None, up) -> None:
        here = len(out)
        out.append(_Slot(node, parent, field, index, up))
        if isinstance(node, ast.JoinedStr):
            return
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        visit(item, node, name, i, here)
            elif isinstance(value, ast.AST):
                visit(value, node, name, None, here)

    visit(tree, None, "", None, None)
    return out


def _context(slots: list[_Slot], position: int) -> str:
    """The smallest expression around a small node that reads on its own (for reports)."""
    up = slots[position].up
    while up is not None:
        node = slots[up].node
        if isinstance(node, ast.expr) and not isinstance(node, ast.Slice | ast.Tuple | ast.UnaryOp):
            return ast.unparse(node)
        if isinstance(node, ast.stmt):
            return ast.unparse(node).split("\n")[0]
        up = slots[up].up
    return ""


def _inside(node: ast.AST, spans: list[tuple[int, int]]) -> bool:
    start, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
    if start is None or end is None:
        return False
    return any(lo <= start and end <= hi for lo, hi in spans)


def _is_docstring(slot: _Slot) -> bool:
    return (
        isinstance(slot.node, ast.Expr)
        and isinstance(slot.node.value, ast.Constant)
        and isinstance(slot.node.value.value, str)
    )


def _replace(slot: _Slot, new: ast.AST) -> None:
    if slot.index is None:
        setattr(slot.parent, slot.field, new)
    else:
        getattr(slot.parent, slot.field)[slot.index] = new


def mutants(source: str, exercise: str, limit: int | None = None) -> list[Mutant]:
    """The mutants of an answer cell's solution region.

    Args:
        source: the answer cell (with its ``### BEGIN/END SOLUTION`` markers).
        exercise: the exercise's grade id (part of every mutant id).
        limit: keep at most this many (round-robin over operators, by id: deterministic).

    Returns:
        Mutants that compile and differ from the solution and from each other.

    Raises:
        SyntaxError: when the answer cell is not Python.
    """
    tree = ast.parse(source)
    spans = solution_spans(source)
    original = ast.unparse(tree)
    seen = {original}
    found: list[Mutant] = []
    occurrences: dict[tuple[str, str, str], int] = {}
    slots = _walk(tree)
    for position, slot in enumerate(slots):
        if slot.parent is None or not _inside(slot.node, spans) or _is_docstring(slot):
            continue
        for variant, (operator, new) in enumerate(_variants(slot.node)):
            before, after = ast.unparse(slot.node), ast.unparse(new) if new is not None else ""
            key = (operator, before, after)
            occurrences[key] = occurrences.get(key, 0) + 1
            copied = copy.deepcopy(tree)
            target = _walk(copied)[position]
            _, replacement = list(_variants(target.node))[variant]
            _replace(target, replacement)
            try:
                text = ast.unparse(ast.fix_missing_locations(copied))
                compile(text, "<mutant>", "exec")
            except (SyntaxError, ValueError, TypeError, RecursionError):
                continue
            if text in seen:
                continue
            seen.add(text)
            digest = hashlib.sha1(
                f"{exercise}|{operator}|{before}|{after}|{occurrences[key]}".encode()
            ).hexdigest()[:6]
            small = isinstance(slot.node, ast.Constant | ast.Name | ast.Attribute)
            context = _context(slots, position) if small else ""
            found.append(
                Mutant(
                    f"{operator}-{digest}",
                    operator,
                    slot.node.lineno,
                    before,
                    after,
                    text,
                    context if len(context) < 200 else "",
                )
            )
    return select(found, limit)


def select(found: list[Mutant], limit: int | None) -> list[Mutant]:
    """At most ``limit`` mutants, taken round-robin over the operators (each in id order)."""
    if limit is None or len(found) <= limit:
        return found
    groups: dict[str, list[Mutant]] = {}
    for m in sorted(found, key=lambda m: m.ident):
        groups.setdefault(m.operator, []).append(m)
    chosen: list[Mutant] = []
    queues = [groups[op] for op in sorted(groups)]
    while len(chosen) < limit:
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    kept = {m.ident for m in chosen}
    return [m for m in found if m.ident in kept]
