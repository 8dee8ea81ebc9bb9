"""The trusted judge: every point is decided here, from plain data, never in the student's kernel.

PrairieLearn's model (pull request #5184) applied to notebooks. For one assignment the judge

1. runs the instructor's solution notebook once, in this trusted process, without its test
   cells: the *reference namespace* (the data, models and helper variables every test reads;
   the reference solutions too);
2. for each submission, starts a sandbox (:mod:`recsys_grader.sandbox`) that executes the
   student's notebook, which holds the visible tests only (for the student's own feedback),
   never a hidden one;
3. runs every test cell of the assignment, visible and hidden, here, in a copy of the reference
   namespace in which each name an answer cell defines is a :class:`RemoteFunction`: calling it
   sends the arguments to the sandbox as plain data, the student's function runs there, and what
   it returned (raised, changed in its arguments, its gradients) comes back as plain data
   (:mod:`recsys_grader.wire`). Comparisons, asserts and reference computations all run here,
   on trusted objects, so a student's exception hook, traceback trick, output-clearing hook,
   AST transformer, lying ``__eq__`` or patched numpy cannot change a verdict;
4. because tests read the reference namespace, never the student's variables, an exercise is
   graded on its own: a wrong answer to exercise 1 cannot cost points in exercise 2.

When the reference namespace is built (not loaded from :mod:`recsys_grader.judgecache`), a test
does not wait for the whole build: it runs once the cells it depends on have run
(:mod:`recsys_grader.cellflow`), while the build and the student's notebook go on side by side;
what it read then is checked at the end, and it runs again if that changed.

Feedback for a hidden test names the failing case (the ``# case: ...`` comment above the
failing line) and the error type, never the test's code, inputs or expected values.

Run as ``python -m recsys_grader.judge SPEC.json`` by :mod:`recsys_grader.autograde` and
:mod:`recsys_grader.validate`; results come back as JSON lines on stdout.

Example:
    >>> from recsys_grader.judge import case_of
    >>> case_of("# case: empty input\\nassert f([]) == []", 2)
    'empty input'
"""

from __future__ import annotations

import ast
import contextlib
import copy
import io
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbgrader import utils as nbu

from recsys_grader import executor, wire
from recsys_grader import notebooks as nbs
from recsys_grader.cellflow import DYNAMIC, BuildProgress, CellFlow, fingerprint
from recsys_grader.sandbox import Limits, Sandbox, SandboxError, SandboxGone, SandboxUnavailable

PASSED, FAILED, TIMEOUT, UNAVAILABLE = "passed", "failed", "timeout", "unavailable"
MANUAL, NO_RESPONSE = "manual", "no_response"


@dataclass
class Verdict:
    """The judge's decision on one graded cell.

    Attributes:
        grade_id: the cell.
        points: points earned, or None while a person must grade it (written answers).
        max_points: what the cell is worth.
        status: passed, failed, timeout, unavailable (the sandbox was gone), manual, no_response.
        feedback: what the student may read (no hidden code, inputs or expected values).
        detail: what the instructor reads (the full traceback of the failing test).
    """

    grade_id: str
    points: float | None
    max_points: float
    status: str
    feedback: str = ""
    detail: str = ""


class GradingInterrupted(BaseException):  # noqa: N818 (BaseException: test code cannot catch it)
    """A call to the student's code ran out of time or the sandbox is gone.

    ``detail`` (instructors only) may hold what the student's kernel reported.
    """

    def __init__(self, status: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class StudentRaised(Exception):  # noqa: N818
    """Mixed into the built-in exception class a student's function raised (so that a test's
    ``except ValueError`` works) and marks it as the student's, whose text is never echoed."""

    student_type = "Exception"


_RAISED: dict[type, type] = {}
#: Exceptions that end an iteration: raised from a student's function inside a test's ``map()``,
#: ``filter()`` or ``iter(f, sentinel)`` they would end it silently (``all(map(check, cases))``
#: becomes ``all([])``, True), so they arrive as RuntimeError.
_ITERATION_ENDS = (StopIteration, StopAsyncIteration)


def _student_exception(raised: dict) -> BaseException:
    """A trusted exception standing for what the student's function raised."""
    import builtins

    base: type = Exception
    for qualified in raised.get("mro", []):
        module, _, name = str(qualified).rpartition(".")
        if module == "recsys_grader.testing" and name == "DelegationError":
            from recsys_grader.testing import DelegationError

            return DelegationError(str(raised.get("message", ""))[:2000])
        candidate = getattr(builtins, name, None) if module == "builtins" else None
        if candidate in _ITERATION_ENDS:
            base = RuntimeError  # as PEP 479 does: never the end of a test's map() or loop
            break
        if isinstance(candidate, type) and issubclass(candidate, Exception):
            base = candidate
            break
    cls = _RAISED.get(base)
    if cls is None:
        cls = _RAISED[base] = type(base.__name__, (StudentRaised, base), {})
    exc = cls(str(raised.get("message", ""))[:2000])
    exc.student_type = str(raised.get("type", "Exception"))[:100]
    return exc


# --- the student's side, seen from here ----------------------------------------------------------


class Student:
    """One submission's sandbox, as the tests see it: calls with a time budget per test cell.

    Args:
        sandbox: the started sandbox that executed the notebook (None: it never ran).
        limits: the limits (``cell_timeout`` is each test cell's budget for its calls).
        code_cells: ``(label, source)`` of every cell the student wrote (for static checks).
        namespace: the reference namespace (to resolve the names the student's code uses).
        why_gone: why there is no sandbox, when there is none.
    """

    def __init__(
        self,
        sandbox: Sandbox | None,
        limits: Limits,
        code_cells: list[tuple[str, str]],
        namespace: dict,
        why_gone: str = "",
    ) -> None:
        self.sandbox, self.limits = sandbox, limits
        self.code_cells, self.namespace = code_cells, namespace
        self.deadline = time.monotonic() + limits.cell_timeout
        self.gone = why_gone
        self._static: dict[tuple, list[str]] = {}
        self._names: dict[int, str] | None = None
        #: whether the reference build is still running (set by :class:`Session`): a static
        #: check made then is provisional, made again on the final namespace at the end
        self.building: Any = lambda: False
        self.current = ""  # the test cell running now
        self.provisional: dict[tuple, tuple[list, set[str]]] = {}  # key -> (forbidden, tests)

    def _budget(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise GradingInterrupted(
                TIMEOUT,
                f"your code used up this test cell's {self.limits.cell_timeout} s",
            )
        return left

    def request(self, message: dict) -> dict:
        """Send one call or get; return the agent's answer (plain data, still encoded)."""
        if self.gone or self.sandbox is None:
            raise GradingInterrupted(UNAVAILABLE, self.gone or "your notebook did not run")
        budget = self._budget()
        message = {**message, "timeout": max(1, int(budget))}
        try:
            reply = self.sandbox.request(message, timeout=budget + 15)
        except SandboxGone as exc:
            self.gone = f"your notebook's kernel stopped answering ({exc})"
            raise GradingInterrupted(UNAVAILABLE, self.gone) from None
        status = reply.get("status")
        if status == "timeout":
            self.deadline = time.monotonic()  # the rest of this cell's calls fail at once
            raise GradingInterrupted(
                TIMEOUT, f"your code ran longer than this test cell's {self.limits.cell_timeout} s"
            )
        if status == "died":
            self.gone = "your notebook's kernel died (a crash, an exit or the memory limit)"
            raise GradingInterrupted(UNAVAILABLE, self.gone)
        answer = reply.get("answer")
        if status != "ok" or not isinstance(answer, dict):
            errors = [str(e) for e in reply.get("errors", [])]
            if any(e.startswith("MemoryError") for e in errors):
                # (the notebook's own data filled the address-space limit: the grader's call
                # then cannot even read its request)
                why = (
                    f"your notebook's kernel ran out of memory (the {self.limits.memory_mb} MiB "
                    "limit) before the grader's call could run: free large objects you no "
                    "longer need (del, smaller dtypes) and keep only what the exercises use"
                )
            else:
                why = (
                    "the grader's call could not run in your kernel (did your notebook "
                    "replace IPython hooks, or delete the function?)"
                )
            raise GradingInterrupted(UNAVAILABLE, why, "; ".join(errors)[:2000])
        return answer

    def get(self, name: str) -> Any:
        """A variable of the student's notebook, as plain data."""
        answer = self.request({"op": "get", "name": name})
        if "missing" in answer:
            raise NameError(f"name {name!r} is not defined in your notebook")
        with _unreadable():
            return wire.decode(answer.get("value"))

    def call(self, name: str, args: tuple, kwargs: dict, forbidden: list | None = None) -> Any:
        """Call the student's function ``name`` in the sandbox with these arguments."""
        from recsys_grader.testing import forbidden_names

        grad_inputs = [t for _, t in wire.tensor_leaves((args, kwargs)) if _needs_grad(t)]
        message = {
            "op": "call",
            "name": name,
            "args": wire.encode(list(args), self.refer),
            "kwargs": wire.encode(dict(kwargs), self.refer),
            "forbidden": forbidden_names(forbidden or []),
            "grad": bool(grad_inputs),
        }
        answer = self.request(message)
        if "missing" in answer:
            raise NameError(f"name {name!r} is not defined in your notebook")
        if "not_callable" in answer:
            raise TypeError(f"{name!r} is a {answer['not_callable']}, not a function")
        if "bad_arguments" in answer:
            raise GradingInterrupted(
                UNAVAILABLE,
                f"the test's arguments could not be rebuilt in your notebook "
                f"({answer['bad_arguments']})",
            )
        with _unreadable():
            _write_back(args, kwargs, answer.get("mutated") or {})
            raised = _student_exception(answer["raised"]) if "raised" in answer else None
            if raised is None:
                value = wire.decode(answer.get("value"))
                if grad_inputs and answer.get("grads"):
                    value = _with_gradients(value, grad_inputs, answer["grads"])
        if raised is not None:
            raise raised
        return value

    def refer(self, value: Any) -> dict | None:
        """How the sandbox finds an argument that is not plain data: a variable of the
        reference notebook (by name) or an object built with :func:`sandbox_object`."""
        from recsys_grader.testing import CONSTRUCTED

        built = CONSTRUCTED.get(id(value))
        if built is not None and built[0] is value:
            _, factory, args, kwargs = built
            return {
                "$t": "construct",
                "factory": factory,
                "args": wire.encode(list(args), self.refer),
                "kwargs": wire.encode(dict(kwargs), self.refer),
            }
        if self._names is None:
            self._names = {}
            for key, obj in list(self.namespace.items()):  # (the build may add names)
                if not key.startswith("_"):
                    self._names.setdefault(id(obj), key)
        name = self._names.get(id(value))
        return {"$t": "ref", "name": name} if name else None

    def static_problems(self, forbidden: list) -> list[str]:
        """What in the student's code could reach the forbidden references (memoised)."""
        from recsys_grader.codecheck import code_problems

        key = tuple(sorted(id(f) for f in forbidden))
        if key not in self._static:
            self._static[key] = code_problems(self.code_cells, forbidden, self.namespace)
            if self.building():  # names may still be bound to other objects by later cells
                self.provisional[key] = (list(forbidden), set())
        if key in self.provisional:
            self.provisional[key][1].add(self.current)
        return self._static[key]

    def settle(self) -> set[str]:
        """Make the static checks made while the build ran again on the final namespace;
        return the tests whose check came out differently (they must run again)."""
        from recsys_grader.codecheck import code_problems

        again: set[str] = set()
        for key, (forbidden, tests) in list(self.provisional.items()):
            final = code_problems(self.code_cells, forbidden, self.namespace)
            if final != self._static[key]:
                self._static[key] = final
                again |= tests
        self.provisional.clear()
        return again


@contextlib.contextmanager
def _unreadable() -> Any:
    """Reading what the sandbox sent: a malformed answer (only a tampered kernel sends one)
    stops the test cell. It must never surface as an ordinary exception, which a test's
    ``except ValueError`` (the decoder's WireError is one) would take for the student's."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 (whatever the malformed data broke)
        raise GradingInterrupted(
            FAILED, f"the grader could not read what your code sent back ({type(exc).__name__})"
        ) from None


def _needs_grad(value: Any) -> bool:
    return bool(getattr(value, "requires_grad", False))


def _with_gradients(value: Any, inputs: list, grads: list) -> Any:
    """Rebuild the tensors of ``value`` that needed gradients as functions of ``inputs`` with
    the Jacobians the sandbox measured: same values, same first derivatives, so a test's
    ``loss.backward()`` fills ``x.grad`` exactly as it would have in the student's kernel."""
    import torch

    replaced: dict[tuple, Any] = {}
    for item in grads:
        path, per_input = item.get("path"), item.get("jacobian")
        if not isinstance(path, list) or not isinstance(per_input, list):
            continue
        base = wire.at_path(value, path)
        if not isinstance(base, torch.Tensor) or len(per_input) != len(inputs):
            continue
        out = base.detach().clone()
        for x, encoded in zip(inputs, per_input):
            if encoded is None:
                continue
            jac = wire.decode(encoded)
            if not isinstance(jac, torch.Tensor) or jac.shape != (*out.shape, *x.shape):
                continue
            delta = (x - x.detach()).reshape(-1).to(jac.dtype)
            out = out + (jac.reshape(out.numel(), -1) @ delta).reshape(out.shape).to(out.dtype)
        replaced[tuple(path)] = out
    if not replaced:
        return value
    if () in replaced:
        return replaced[()]
    return _replace(value, replaced, ())


def _replace(value: Any, replaced: dict, path: tuple) -> Any:
    if path in replaced:
        return replaced[path]
    if isinstance(value, tuple | list):
        items = [_replace(v, replaced, (*path, i)) for i, v in enumerate(value)]
        return type(value)(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {k: _replace(v, replaced, (*path, i)) for i, (k, v) in enumerate(value.items())}
    return value


def _write_back(args: tuple, kwargs: dict, mutated: dict) -> None:
    """Apply the student's in-place changes to the test's own arguments (as in a notebook)."""
    for key, item in mutated.items():
        if not isinstance(item, dict):
            continue
        try:
            target = args[int(key)] if item.get("int") else kwargs[key]
        except (ValueError, IndexError, KeyError):
            continue
        new = wire.decode(item["v"]) if item.get("v") is not None else None
        _assign(target, new)


def _assign(target: Any, new: Any) -> None:
    import numpy as np

    with contextlib.suppress(Exception):  # a change that cannot be replayed is left out
        if isinstance(target, list) and isinstance(new, list):
            target[:] = new
        elif isinstance(target, dict | set) and isinstance(new, type(target)):
            target.clear()
            target.update(new)
        elif isinstance(target, np.ndarray) and isinstance(new, np.ndarray):
            if target.shape == new.shape:
                target[...] = new
        elif type(target).__name__ in ("DataFrame", "Series") and type(new) is type(target):
            type(target).__init__(target, new.copy())  # the same object, the new contents
        elif type(target).__name__ == "Tensor":
            import torch

            with torch.no_grad():
                target.copy_(new)


class RemoteFunction:
    """Stands for a function the student defined: calling it runs the student's code in the
    sandbox on plain-data copies of the arguments and returns plain data."""

    def __init__(self, student: Student, name: str) -> None:
        self.__recsys_remote__ = self
        self.student = student
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.student.call(self.__name__, args, kwargs)

    def call_without(self, forbidden: list, args: tuple, kwargs: dict) -> Any:
        """Check the student's code statically, then call with the references disabled."""
        from recsys_grader.testing import DelegationError

        problems = self.student.static_problems(list(forbidden))
        if problems:
            raise DelegationError(
                "this exercise asks you to implement it yourself; the grader found code it "
                "cannot accept: " + "; ".join(problems[:8])
            )
        if not args and not kwargs:
            return None
        return self.student.call(self.__name__, args, kwargs, forbidden=list(forbidden))

    def __repr__(self) -> str:
        return f"<your function {self.__name__}>"


# --- the reference namespace and the test run ---------------------------------------------------


def case_of(source: str, lineno: int) -> str:
    """The label of the ``# case: ...`` comment nearest above line ``lineno`` (1-based)."""
    lines = source.split("\n")[: max(0, lineno)]
    for line in reversed(lines):
        text = line.strip()
        if text.lower().startswith("# case:"):
            return text.split(":", 1)[1].strip()[:200]
    return ""


def answer_names(source_nb: NotebookNode) -> tuple[list[str], list[str]]:
    """Names the answer cells bind: (functions and classes, variables)."""
    functions, variables = [], []
    for cell in source_nb.cells:
        if cell.cell_type != "code" or not nbu.is_solution(cell):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                functions.append(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                variables += [t.id for t in targets if isinstance(t, ast.Name)]
    return list(dict.fromkeys(functions)), list(dict.fromkeys(variables))


def _defined_name(name: str, shell: Any) -> bool:
    """A name the notebook's cells defined (not IPython's own, not ``__builtins__`` & co)."""
    return name not in shell.user_ns_hidden and not (name.startswith("__") and name.endswith("__"))


def _is_test(cell: NotebookNode) -> bool:
    return cell.cell_type == "code" and nbu.is_grade(cell) and not nbu.is_solution(cell)


def _names_tests_may_read(nb: NotebookNode, shell: Any) -> set[str] | None:
    """Every name the hidden tests may read: named in a test cell, or inside a function or
    class body of any cell (the tests may call it). None when a test reads globals by a
    computed name (then every name is needed) or a cell does not parse."""
    needed: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(shell.transform_cell(cell.source))
        except SyntaxError:
            return None
        roots = [tree] if _is_test(cell) else [
            node for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef))
        ]  # fmt: skip
        for root in roots:
            for node in ast.walk(root):
                if isinstance(node, ast.Name):
                    needed.add(node.id)
                elif isinstance(node, ast.Attribute):
                    needed.add(node.attr)
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    needed.add(node.value)  # e.g. a name looked up in a dict of results
    return None if needed & DYNAMIC else needed


class Judge:
    """The reference namespace of one assignment and the tests that run against it.

    Args:
        source_nb: the instructor's notebook (solutions and hidden tests).
    """

    def __init__(self, source_nb: NotebookNode) -> None:
        self.source = source_nb
        self.ref = nbs.reference(source_nb)
        self.namespace: dict = {}
        self.error: str | None = None
        self.functions, self.variables = answer_names(source_nb)
        self._shell = None
        #: what :meth:`build` did with the kept namespace: "loaded", "saved", why it was not
        #: saved, or "" (no cache folder)
        self.cache_note = ""
        #: how far the build has got: a test runs as soon as the cells it depends on have run
        #: (:mod:`recsys_grader.cellflow`), while the rest of the build goes on
        self.progress = BuildProgress()
        self.flow: CellFlow | None = None
        self._needs: dict[str, set[str] | None] = {}
        self._early: dict[tuple[str, int], Any] = {}  # (name, cell) -> fingerprint then
        self._verified = False
        self.stale: set[tuple[str, int]] = set()  # (name, cell) changed after it was read
        self._lock = threading.Lock()
        self._plan()

    def build(
        self, cache: Path | None = None, name: str = "reference", rehearse: bool = False
    ) -> None:
        """Run the solution notebook's cells except its tests, here (instructor code only).

        Args:
            cache: a private folder where the namespace is kept between gradings
                (:mod:`recsys_grader.judgecache`); None: always build.
            name: the assignment's name (one kept namespace per name).
            rehearse: read every value the moment its last changing cell has run, as the
                earliest test could, and check them at the end (:attr:`stale` then lists what
                the reading of the cells missed; ``check-tests`` reports it).

        Raises:
            RuntimeError: naming the cell that failed.
        """
        from IPython.core.interactiveshell import InteractiveShell

        from recsys_grader import judgecache

        os.environ.setdefault("MPLBACKEND", "Agg")
        os.environ["NBGRADER_EXECUTION"] = "autograde"
        shell = InteractiveShell.instance()
        shell.enable_gui = lambda gui=None: None  # %matplotlib inline: no GUI in the judge
        self._shell = shell
        # (the shell is a process-wide singleton: start from a clean namespace even when an
        # earlier judge of this process, e.g. check-tests', built another notebook in it)
        for stale in [k for k in shell.user_ns if _defined_name(k, shell)]:
            del shell.user_ns[stale]
        key = None
        if cache is not None:
            key = judgecache.source_key(nbformat.writes(self.source))
            kept = judgecache.load(cache, name, key)
            if kept is not None:
                shell.user_ns.update(kept)
                self.namespace = dict(shell.user_ns)
                self.cache_note = "loaded"
                self.progress.advance(BuildProgress.END)
                return
        cells = self.source.cells
        last = max((i for i, c in enumerate(cells) if _is_test(c)), default=-1)
        sink = io.StringIO()
        self.namespace = shell.user_ns  # live: tests whose cells have run read it already
        for index, cell in enumerate(cells[: last + 1]):
            if cell.cell_type != "code" or _is_test(cell):
                continue
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                result = shell.run_cell(cell.source, store_history=False, silent=True)
            error = result.error_before_exec or result.error_in_exec
            if error is not None:
                raise RuntimeError(
                    f"cell {index} of the solution notebook failed in the judge "
                    f"({type(error).__name__}: {str(error)[:300]})"
                )
            sink.seek(0)
            sink.truncate()
            if rehearse:
                self._rehearse(index)
            self.progress.advance(index)
        self.namespace = dict(shell.user_ns)
        self.progress.advance(BuildProgress.END)
        self._verify()
        if cache is not None and key is not None:
            defined = {k: v for k, v in shell.user_ns.items() if _defined_name(k, shell)}
            needed = _names_tests_may_read(self.source, shell)
            if needed is not None:
                needed |= set(self.functions) | set(self.variables)
            note = judgecache.save(cache, name, key, defined, needed)
            self.cache_note = (
                "saved " + note if note and note.startswith("without") else (note or "saved")
            )

    def _plan(self) -> None:
        """When each test may run: the cells its names depend on (:class:`CellFlow`)."""
        from IPython.core.interactiveshell import InteractiveShell

        shell = InteractiveShell.instance()
        cells = self.source.cells
        last = max((i for i, c in enumerate(cells) if _is_test(c)), default=-1)
        sources = [
            shell.transform_cell(c.source) if c.cell_type == "code" and not _is_test(c) else ""
            for c in cells[: last + 1]
        ]
        self.flow = CellFlow(sources)
        for cell in cells:
            if _is_test(cell):
                needs = self.flow.needs(shell.transform_cell(cell.source))
                self._needs[cell.metadata.nbgrader["grade_id"]] = needs

    def wait_test(self, grade_id: str) -> int:
        """Block until the cells test ``grade_id`` depends on have run; the cell reached."""
        if self.flow is None:
            return self.progress.wait_for(BuildProgress.END)
        return self.progress.wait_for(self.flow.ready_at(self._needs.get(grade_id)))

    def final_at(self, name: str) -> int:
        """The last cell that may change ``name`` (-1: none; after it, its value is final)."""
        return -1 if self.flow is None else self.flow.ready_at((name,))

    def note_early(self, name: str, cell: int, value: Any) -> None:
        """A test read ``name`` before the build ended (after cell ``cell``): keep what it
        held then, to check at the end that no later cell changed it behind the reading's back
        (two names for one object)."""
        if name.startswith("__") and name.endswith("__"):
            return  # Python's own (``__warningregistry__`` ...): no test reads them
        with self._lock:
            if (name, cell) in self._early:
                return
        digest = fingerprint(value)
        with self._lock:
            self._early.setdefault((name, cell), digest)
            if self._verified and fingerprint(self.namespace.get(name)) != digest:
                self.stale.add((name, cell))

    def _rehearse(self, index: int) -> None:
        noted = {name for name, _ in self._early}
        for name, value in list(self.namespace.items()):
            if name not in noted and self.final_at(name) <= index:
                self.note_early(name, index, value)

    def _verify(self) -> None:
        """At the end of the build: which early readings saw a value that later changed."""
        with self._lock:
            finals: dict[str, Any] = {}
            for (name, cell), digest in self._early.items():
                if name not in finals:
                    finals[name] = fingerprint(self.namespace.get(name))
                if finals[name] != digest:
                    self.stale.add((name, cell))
            self._verified = True

    def session(self, student: Student, submission: NotebookNode | None) -> Session:
        """Start grading one submission (see :class:`Session`)."""
        return Session(self, student, submission)

    def _test(self, cell: NotebookNode, grade_id: str, points: float, ns: dict) -> Verdict:
        hidden = nbs.BEGIN_HIDDEN in cell.source
        source = cell.source
        code = self._shell.transform_cell(source) if self._shell else source
        filename = f"<test {grade_id}>"
        sink = io.StringIO()
        try:
            compiled = compile(code, filename, "exec")
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                exec(compiled, ns)  # noqa: S102 (instructor-written test code, trusted)
        except GradingInterrupted as exc:
            detail = f"{exc}\n{exc.detail}".strip()
            return Verdict(grade_id, 0.0, points, exc.status, str(exc), detail)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 (a failing test is any exception)
            detail = "".join(traceback.format_exception(exc))[-4000:]
            lineno = _failing_line(exc, filename)
            return Verdict(
                grade_id, 0.0, points, FAILED, _feedback(exc, source, lineno, hidden), detail
            )
        text = "Hidden tests passed." if hidden else "Tests passed."
        return Verdict(grade_id, points, points, PASSED, text, "")


class Session:
    """The grading of one submission: test cells run one by one, each when the sandbox reaches
    it (so each exercise is tested on the notebook's state at that point), in a namespace of
    their own that starts as a copy of the reference namespace.

    Args:
        judge: the assignment's judge (its reference namespace must be built).
        student: the submission's sandbox.
        submission: the prepared submission (for written answers), or None.
        private: copy only these names (the ones the tests that will run read; default: all).
    """

    def __init__(
        self,
        judge: Judge,
        student: Student,
        submission: NotebookNode | None,
        private: Collection[str] | None = None,
    ) -> None:
        self.judge, self.student = judge, student
        self.private = private
        # each submission gets its own copy of every mutable value: neither a test's own code
        # nor a student's function that changes its arguments (whose changes are replayed
        # here) can alter what the next test or the next student sees. A value is copied once
        # its last changing cell has run (the build may still be running: :meth:`_sync`).
        self.namespace: dict = {}
        self._copied: dict[str, int] = {}  # name -> the build's cell when it was copied
        self._read_early: dict[str, dict[str, int]] = {}  # grade_id -> {name: cell}
        for name in judge.functions:
            self.namespace[name] = RemoteFunction(student, name)
        student.building = lambda: judge.progress.index < BuildProgress.END
        self.answers = _answers(submission)
        self.verdicts: dict[str, Verdict] = {}
        self.cells = {
            c.metadata.nbgrader["grade_id"]: c
            for c in judge.source.cells
            if "grade_id" in c.get("metadata", {}).get("nbgrader", {}) and nbu.is_grade(c)
        }

    def _sync(self, grade_id: str, reached: int, again: Collection[str] = ()) -> None:
        """Copy in every reference value that is final at cell ``reached`` (``again``: anew)."""
        judge, early = self.judge, reached < BuildProgress.END
        self.student.namespace, self.student._names = judge.namespace, None
        needs = judge._needs.get(grade_id)
        for name, value in list(judge.namespace.items()):
            if name in judge.functions or (name in self._copied and name not in again):
                continue
            if judge.final_at(name) > reached:
                continue  # a later cell may still change it: no test reading it runs yet
            self.namespace[name] = (
                _private(value) if self.private is None or name in self.private else value
            )
            self._copied[name] = reached
            if early:
                judge.note_early(name, reached, value)
        if early:
            self._read_early[grade_id] = {
                n: c for n, c in self._copied.items() if needs is None or n in needs
            }

    def _fetch_variables(self) -> None:
        for name in self.judge.variables:
            self.student.deadline = time.monotonic() + self.student.limits.cell_timeout
            try:
                self.namespace[name] = self.student.get(name)
            except (GradingInterrupted, NameError, wire.WireError):
                self.namespace.pop(name, None)  # a test that reads it fails with a NameError

    def test(self, grade_id: str) -> None:
        """Run one test cell now (a checkpoint); unknown or repeated ids are ignored."""
        cell = self.cells.get(grade_id)
        if cell is None or grade_id in self.verdicts or nbu.is_solution(cell):
            return
        self._sync(grade_id, self.judge.wait_test(grade_id))
        self.student.current = grade_id
        self._fetch_variables()
        points = float(cell.metadata.nbgrader.get("points", 0) or 0)
        self.student.deadline = time.monotonic() + self.student.limits.cell_timeout
        self.verdicts[grade_id] = self.judge._test(cell, grade_id, points, self.namespace)

    def _rerun_stale(self) -> None:
        """Tests that ran while the build went on run again on the final namespace when what
        they read changed unseen (:meth:`Judge._verify`) or when the static check of the
        student's code comes out differently there (:meth:`Student.settle`)."""
        end = self.judge.progress.wait_for(BuildProgress.END)
        self.student.namespace, self.student._names = self.judge.namespace, None
        checked = self.student.settle()
        for grade_id, read in list(self._read_early.items()):
            stale = {n for n, c in read.items() if (n, c) in self.judge.stale}
            if (stale or grade_id in checked) and grade_id in self.verdicts:
                del self.verdicts[grade_id], self._read_early[grade_id]
                self._sync(grade_id, end, stale)
                self.test(grade_id)

    def finish(self) -> dict[str, Verdict]:
        """Verdicts of every graded cell: test cells the sandbox never reached run now (against
        whatever is left of it), written answers await a person.

        Returns:
            {grade_id: Verdict} in notebook order.
        """
        self._rerun_stale()
        for grade_id, cell in self.cells.items():
            if nbu.is_solution(cell):
                points = float(cell.metadata.nbgrader.get("points", 0) or 0)
                self.verdicts[grade_id] = _written(grade_id, points, self.answers.get(grade_id))
            elif grade_id not in self.verdicts:
                self.test(grade_id)
        return {g: self.verdicts[g] for g in self.cells if g in self.verdicts}


def _private(value: Any) -> Any:
    """A deep copy of plain mutable data (containers, arrays, frames, tensors); others as is."""
    top = type(value).__module__.split(".")[0]
    if (
        isinstance(value, list | dict | set)
        or (top in ("numpy", "pandas", "scipy") and hasattr(value, "copy"))
        or (top == "torch" and type(value).__name__ == "Tensor")
    ):
        try:
            return copy.deepcopy(value)
        except Exception:  # noqa: BLE001 (an object that cannot be copied is shared as is)
            return value
    return value


def _failing_line(exc: BaseException, filename: str) -> int:
    line = 0
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename:
            line = frame.lineno or line
    return line


def _feedback(exc: BaseException, source: str, lineno: int, hidden: bool) -> str:
    """What the student reads about a failed test cell."""
    from recsys_grader.testing import DelegationError

    if isinstance(exc, StudentRaised):
        what = f"your function raised {exc.student_type}"
        if not hidden:
            what += f": {str(exc)[:500]}"
    elif isinstance(exc, DelegationError):
        what = str(exc)[:1500]
    elif hidden:
        what = type(exc).__name__
    else:
        message = str(exc)[:500]
        what = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if not hidden:
        line = (
            source.split("\n")[lineno - 1].strip() if 0 < lineno <= len(source.split("\n")) else ""
        )
        return f"Test failed: {what}" + (f"\n  at: {line}" if line else "")
    case = case_of(source, lineno)
    where = f" in the case '{case}'" if case else ""
    return (
        f"Hidden tests failed{where} ({what}). They check the cases listed in the exercise "
        "text: re-read it, then test those cases yourself."
    )


def _answers(submission: NotebookNode | None) -> dict[str, NotebookNode]:
    if submission is None:
        return {}
    return {
        c.metadata.nbgrader["grade_id"]: c
        for c in submission.cells
        if "grade_id" in c.get("metadata", {}).get("nbgrader", {})
    }


def _written(grade_id: str, points: float, cell: NotebookNode | None) -> Verdict:
    """A written answer: a person grades it; an untouched one is recorded as no response."""
    if cell is None:
        return Verdict(grade_id, 0.0, points, NO_RESPONSE, "No response.")
    auto, _ = nbu.determine_grade(cell)
    if auto is None:
        return Verdict(grade_id, None, points, MANUAL, "Awaiting grading by a teaching assistant.")
    return Verdict(grade_id, 0.0, points, NO_RESPONSE, "No response.")


# --- the judge process ---------------------------------------------------------------------------


#: Output metadata of what only instructors may see (feedback drops these outputs).
INSTRUCTOR_ONLY = "recsys_course_instructor_only"


def verdict_outputs(verdict: Verdict) -> list[NotebookNode]:
    """A test cell's outputs: the student-safe feedback (an error output when it failed, so
    nbgrader's own reading also gives 0) and the instructor-only detail."""
    outputs = [nbformat.v4.new_output("stream", name="stdout", text=verdict.feedback + "\n")]
    if verdict.status != PASSED:
        ename = {TIMEOUT: "GradingTimeout", UNAVAILABLE: "KernelUnavailable"}.get(
            verdict.status, "TestFailed"
        )
        outputs.append(executor.error_output(ename, verdict.feedback[:500]))
    if verdict.detail:
        outputs.append(
            nbformat.v4.new_output(
                "display_data",
                data={"text/plain": f"[instructor only]\n{verdict.detail}"},
                metadata={INSTRUCTOR_ONLY: True},
            )
        )
    return outputs


def annotate(executed: NotebookNode, verdicts: dict[str, Verdict], judge: Judge) -> NotebookNode:
    """The executed notebook as instructors see it: every test cell holds the graded source
    (hidden tests included) and the judge's verdict as its only output."""
    nb = copy.deepcopy(executed)
    graded = {
        c.metadata.nbgrader["grade_id"]: c
        for c in judge.ref.graded.cells
        if "grade_id" in c.get("metadata", {}).get("nbgrader", {})
    }
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        verdict = verdicts.get(grade_id)
        if verdict is None or cell.cell_type != "code" or not _is_test(cell):
            continue
        cell.source = graded[grade_id].source if grade_id in graded else cell.source
        cell.outputs = verdict_outputs(verdict)
    return nb


def _grade_one(
    judge: Judge,
    job: dict,
    limits: Limits,
    insecure: bool,
    ready: threading.Event,
    lock: threading.Lock,
) -> dict:
    start = time.monotonic()
    prepared = nbformat.reads(Path(job["notebook"]).read_text(encoding="utf-8"), as_version=4)
    cells = [tuple(c) for c in job.get("code_cells", [])]
    out: dict[str, Any] = {"key": job["key"], "warnings": []}
    try:
        box = Sandbox(limits=limits, insecure=insecure)
        box.start()
    except (SandboxError, SandboxUnavailable) as exc:
        return {**out, "error": f"grader error: {exc}", "seconds": time.monotonic() - start}
    with contextlib.closing(box):
        out["warnings"] = list(box.warnings)
        student = Student(box, limits, cells, {})
        sessions: list[Session] = []

        def checkpoint(grade_id: str) -> None:
            judge.wait_test(grade_id)  # (outside the lock: the other sandboxes go on)
            if judge.error:
                return
            with lock:
                if not sessions:
                    sessions.append(judge.session(student, prepared))
                sessions[0].test(grade_id)

        run = executor.run_notebook(box, prepared, limits, on_checkpoint=checkpoint)
        ready.wait()
        if judge.error:
            return {**out, "error": judge.error, "seconds": time.monotonic() - start}
        with lock:
            if not sessions:
                sessions.append(judge.session(student, prepared))
            if run.notebook is None:
                student.gone = student.gone or (run.error or "your notebook did not run")
            verdicts = sessions[0].finish()
    executed = run.notebook if run.notebook is not None else prepared
    annotated = annotate(executed, verdicts, judge)
    return {
        **out,
        "error": None,
        "run_error": run.error,
        "executed": json.loads(nbformat.writes(annotated)),
        "verdicts": {k: asdict(v) for k, v in verdicts.items()},
        "seconds": time.monotonic() - start,
    }


@dataclass
class JudgeJob:
    """One notebook to grade (what the grader prepared from a submission).

    Attributes:
        key: the caller's identifier of the job.
        notebook: the prepared notebook (release test cells only).
        code_cells: ``(label, source)`` of the cells the student wrote.
    """

    key: str
    notebook: NotebookNode
    code_cells: list[tuple[str, str]]


def run_judge(
    source: Path,
    jobs: list[JudgeJob],
    limits: Limits,
    workers: int,
    insecure: bool = False,
    cache: Path | None = None,
) -> Any:
    """Grade jobs of one assignment in a judge process; yield one result dict per job.

    Args:
        source: the solution notebook (the reference and the tests).
        jobs: the prepared notebooks.
        limits: sandbox limits.
        workers: sandboxes running at once.
        insecure: grade without a sandbox where bubblewrap is missing.
        cache: a private folder (of the course root) where the judge keeps its reference
            namespace between gradings (:mod:`recsys_grader.judgecache`); None: build it.

    Yields:
        ``{"key", "error", "run_error", "executed", "verdicts", "seconds", "warnings"}``;
        ``error`` is set when the job could not be graded at all (an infrastructure problem).
    """
    import subprocess
    import tempfile

    if not jobs:
        return
    with tempfile.TemporaryDirectory(prefix="recsys-judge-") as tmp:
        os.chmod(tmp, 0o700)
        entries = []
        for i, job in enumerate(jobs):
            path = Path(tmp) / f"job{i}.ipynb"
            path.write_text(nbformat.writes(job.notebook), encoding="utf-8")
            entries.append({"key": job.key, "notebook": str(path), "code_cells": job.code_cells})
        spec_path = Path(tmp) / "spec.json"
        spec = {
            "source": str(source),
            "limits": asdict(limits),
            "workers": workers,
            "insecure": insecure,
            "cache": str(cache) if cache is not None else None,
            "jobs": entries,
        }
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        errors = Path(tmp) / "judge.err"
        with open(errors, "wb") as err:
            from recsys_grader.sandbox import _CHECKED, sandbox_support

            env = dict(os.environ)
            if not insecure and sandbox_support()[0]:
                env[_CHECKED] = "1"
            proc = subprocess.Popen(
                [sys.executable, "-m", "recsys_grader.judge", str(spec_path)],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
            )
            seen = set()
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "result" and event.get("key") not in seen:
                    seen.add(event["key"])
                    yield event
            code = proc.wait()
        tail = errors.read_bytes()[-1500:].decode("utf-8", "replace").strip()
        for job in jobs:
            if job.key not in seen:
                yield {"key": job.key, "error": f"the judge exited with code {code}: {tail}"}


def main(argv: list[str] | None = None) -> int:
    """``python -m recsys_grader.judge SPEC.json``: grade the spec's jobs, one JSON line each."""
    argv = sys.argv[1:] if argv is None else argv
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # whatever instructor cells print goes to stderr, never into the results
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    limits = Limits(**spec["limits"])
    emit_lock = threading.Lock()

    def emit(event: dict) -> None:
        with emit_lock:
            channel.write(json.dumps(event) + "\n")

    judge = Judge(nbs.read_notebook(Path(spec["source"])))
    ready, lock = threading.Event(), threading.Lock()

    def work(job: dict) -> None:
        try:
            emit(
                {"event": "result", **_grade_one(judge, job, limits, spec["insecure"], ready, lock)}
            )
        except Exception as exc:  # noqa: BLE001 (one broken job never stops the batch)
            emit({"event": "result", "key": job["key"], "error": f"grader error: {exc!r}"[:800]})

    with ThreadPoolExecutor(max_workers=max(1, int(spec.get("workers", 2)))) as pool:
        futures = [pool.submit(work, job) for job in spec["jobs"]]
        try:
            cache = Path(spec["cache"]) if spec.get("cache") else None
            judge.build(cache, Path(spec["source"]).stem)
            if judge.cache_note not in ("", "loaded") and not judge.cache_note.startswith("saved"):
                note = f"judge: reference namespace not kept: {judge.cache_note}"
                print(note, file=sys.__stderr__)
            for name, cell in sorted(judge.stale):
                print(
                    f"judge: `{name}` changed after cell {cell}, which no cell seemed to do: "
                    "the tests that read it early run again (see check-tests)",
                    file=sys.__stderr__,  # (a build cell's redirection may still be in place)
                )
        except Exception as exc:  # noqa: BLE001 (reported for every job, then exit 1)
            judge.error = f"the reference notebook could not be run by the judge: {exc}"[:1000]
        judge.progress.finish()
        ready.set()
        for future in futures:
            future.result()
    return 1 if judge.error else 0


if __name__ == "__main__":
    sys.exit(main())
