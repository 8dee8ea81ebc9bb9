"""Static checks of a submission's own code, done by the grader without running it.

Exercises ask students to rebuild functions the kit already has. Whether an answer "does the work
itself" cannot be decided inside the student's kernel (the student controls it), so the trusted
grader reads the code the student wrote (every cell that differs from the release) and reports:

* **dynamic features** that defeat any static reading: ``exec``/``eval``/``compile``,
  ``__import__``, ``importlib``, ``inspect``, ``globals()``/``vars()``, ``getattr`` with a
  computed name, dunder attributes (``__dict__``, ``__globals__``...), ``sys.modules``, shell
  escapes and magics other than ``%time``/``%timeit``/``%matplotlib``, subprocesses, imports of
  the grader or of the student's own files;
* **references to a forbidden reference** (the kit function being reimplemented, its module, or
  anything that reaches it, such as an instructor helper that calls it) anywhere inside a
  function, lambda or class, and anywhere at top level except as a direct call (a call at top
  level produces data, which cannot answer the grader's unseen inputs).

Example:
    >>> from recsys_kit import ranking
    >>> cells = [("cell 3", "def f(s, k):\\n    return ranking.topk(s, s, k)")]
    >>> code_problems(cells, [ranking.topk], {"ranking": ranking})[0]
    'cell 3, line 2: `ranking.topk` reaches the kit function this exercise reimplements'
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterable
from typing import Any

#: Calls that run code from data or reach any object by name.
BANNED_CALLS = {
    "exec",
    "eval",
    "compile",
    "__import__",
    "globals",
    "locals",
    "vars",
    "breakpoint",
    "setattr",
    "delattr",
    "get_ipython",
}
#: Modules whose import makes a static reading impossible (or reaches the grader).
BANNED_MODULES = {
    "importlib",
    "inspect",
    "ctypes",
    "gc",
    "marshal",
    "pickle",
    "dill",
    "cloudpickle",
    "code",
    "codeop",
    "runpy",
    "imp",
    "builtins",
    "subprocess",
    "multiprocessing",
    "pty",
    "recsys_grader",
    "IPython",
    "ipykernel",
    "jupyter_client",
    "nbclient",
    "zmq",
    "traitlets",
}
_BANNED_ATTRS = {
    "operator": {"attrgetter", "methodcaller"},
    "sys": {
        "modules",
        "_getframe",
        "_current_frames",
        "settrace",
        "setprofile",
        "meta_path",
        "path_hooks",
        "path_importer_cache",
        "addaudithook",
        "path",
    },
    "os": {
        "system",
        "popen",
        "fork",
        "forkpty",
        "posix_spawn",
        "posix_spawnp",
        *(f"exec{s}" for s in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")),
        *(f"spawn{s}" for s in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")),
    },
}
_DUNDERS_OK = {"__name__", "__doc__", "__init__", "__len__", "__iter__", "__next__", "__qualname__"}
_MAGICS_OK = {"time", "timeit", "matplotlib"}


def _is_kit_module(obj: Any) -> bool:
    return isinstance(obj, types.ModuleType) and obj.__name__.split(".")[0] == "recsys_kit"


class _Reach:
    """Which objects reach the forbidden ones (memoised)."""

    def __init__(self, forbidden: Iterable[Any]) -> None:
        self.forbidden = {id(f) for f in implementation_of(forbidden)}
        self.memo: dict[int, bool] = {}

    def __call__(self, obj: Any, depth: int = 0) -> bool:
        key = id(obj)
        if key in self.forbidden:
            return True
        if key in self.memo or depth > 4:
            return self.memo.get(key, False)
        self.memo[key] = False  # cycles end here
        found = False
        if isinstance(obj, types.ModuleType):
            if _is_kit_module(obj):
                found = any(
                    id(v) in self.forbidden or (_is_kit_module(v) and self(v, depth + 1))
                    for v in list(vars(obj).values())
                )
        elif isinstance(obj, types.FunctionType | type):
            found = any(self(v, depth + 1) for v in _referenced(obj))
        elif isinstance(obj, types.MethodType):
            found = self(obj.__func__, depth + 1)
        self.memo[key] = found
        return found


def implementation_of(forbidden: Iterable[Any]) -> list[Any]:
    """The forbidden objects and every function or class of their own modules they use,
    transitively: calling ``topk_with_stats`` (which ``topk`` is built on) is delegating too."""
    found: dict[int, Any] = {}
    stack = list(forbidden)
    while stack:
        obj = stack.pop()
        if id(obj) in found:
            continue
        found[id(obj)] = obj
        home = getattr(obj, "__module__", None)
        if not (isinstance(home, str) and home.split(".")[0] == "recsys_kit"):
            continue
        for ref in _referenced(obj):
            if (
                isinstance(ref, types.FunctionType | type)
                and getattr(ref, "__module__", None) == home
                and id(ref) not in found
            ):
                stack.append(ref)
    return list(found.values())


def _referenced(obj: Any) -> list[Any]:
    """Globals, closure cells and defaults a function (or a class's methods) refers to."""
    functions = [obj] if isinstance(obj, types.FunctionType) else []
    if isinstance(obj, type) and obj.__module__ != "builtins":
        functions = [v for v in vars(obj).values() if isinstance(v, types.FunctionType)]
    found: list[Any] = []
    for fn in functions:
        code, glb = fn.__code__, fn.__globals__
        stack = [code]
        while stack:
            c = stack.pop()
            found += [glb[n] for n in c.co_names if n in glb]
            stack += [k for k in c.co_consts if isinstance(k, types.CodeType)]
        for cell in fn.__closure__ or ():
            with contextlib.suppress(ValueError):  # an empty cell
                found.append(cell.cell_contents)
        found += list(fn.__defaults__ or ()) + list((fn.__kwdefaults__ or {}).values())
    return found


def _python(source: str) -> tuple[str, list[str]]:
    """IPython syntax (magics, ``!shell``) turned into Python, and problems with it."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source), []
    except Exception as exc:  # noqa: BLE001 (IPython rejects the cell: report, do not crash)
        return source, [f"IPython could not read the cell ({type(exc).__name__})"]


def _importable(name: str) -> bool:
    top = name.split(".")[0]
    if top == "recsys_kit" or top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    origin = getattr(spec, "origin", None) or ""
    return spec is not None and ("site-packages" in origin or "dist-packages" in origin)


class _Checker(ast.NodeVisitor):
    def __init__(self, label: str, reach: _Reach, namespace: dict) -> None:
        self.label, self.reach, self.namespace = label, reach, namespace
        self.imports: dict[str, Any] = {}
        self.depth = 0
        self.problems: list[str] = []

    def report(self, node: ast.AST, text: str) -> None:
        self.problems.append(f"{self.label}, line {getattr(node, 'lineno', '?')}: {text}")

    # --- name resolution -------------------------------------------------------------------
    def resolve(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            # a student's own variable that shadows an instructor's name resolves to the
            # instructor's object: conservative, and rebinding a reference is itself reported
            if node.id in self.imports:
                return self.imports[node.id]
            return self.namespace.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            if isinstance(base, types.ModuleType):
                return getattr(base, node.attr, None)
            return None
        if self._literal_getattr(node):
            base = self.resolve(node.args[0])
            if isinstance(base, types.ModuleType):
                return getattr(base, node.args[1].value, None)
        return None

    @staticmethod
    def _literal_getattr(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        )

    def _chain(self, node: ast.AST, called: bool) -> bool:
        """Check a name/attribute chain; True when it was resolved (children need no visit)."""
        obj = self.resolve(node)
        if obj is None:
            return False
        if self.reach(obj) and (self.depth > 0 or not called):
            self.report(
                node,
                f"`{ast.unparse(node)}` reaches the kit function this exercise reimplements",
            )
        return True

    # --- visitors --------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(node, alias.name)
            bound = alias.asname or alias.name.split(".")[0]
            target = alias.name if alias.asname else alias.name.split(".")[0]
            self.imports[bound] = self._module(target)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.report(node, "relative imports are not allowed in a notebook")
            return
        module = node.module or ""
        self._check_module(node, module)
        mod = self._module(module)
        for alias in node.names:
            if alias.name in _BANNED_ATTRS.get(module, ()):
                self.report(node, f"imports `{module}.{alias.name}`, which the grader cannot check")
            if alias.name == "*":
                self.report(node, f"`from {module} import *` hides what the code uses")
                continue
            value = getattr(mod, alias.name, None) if mod is not None else None
            if value is None and mod is not None:
                value = self._module(f"{module}.{alias.name}")
            self.imports[alias.asname or alias.name] = value
            if value is not None and self.reach(value):
                self.report(node, f"imports `{alias.name}`, which reaches the kit's reference")

    def _check_module(self, node: ast.AST, name: str) -> None:
        top = name.split(".")[0]
        if top in BANNED_MODULES:
            self.report(node, f"imports `{name}`, which the grader cannot check")
        elif not _importable(name):
            self.report(node, f"imports `{name}`, a module of your own the grader cannot read")

    @staticmethod
    def _module(name: str) -> Any:
        if not name.startswith("recsys_kit") and name.split(".")[0] not in sys.modules:
            return None  # only modules the grader already trusts are imported to resolve names
        try:
            return importlib.import_module(name)
        except Exception:  # noqa: BLE001 (a student's misspelt module: nothing to resolve)
            return None

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in BANNED_CALLS:
            self.report(node, f"uses `{node.id}`, which the grader cannot check")
        elif node.id.startswith("__") and node.id.endswith("__") and node.id != "__name__":
            self.report(node, f"uses `{node.id}`")
        elif isinstance(node.ctx, ast.Load):
            self._chain(node, called=False)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._attribute(node, called=False)

    def _attribute(self, node: ast.Attribute, called: bool) -> None:
        attr = node.attr
        if attr.startswith("__") and attr.endswith("__") and attr not in _DUNDERS_OK:
            self.report(node, f"uses the attribute `{attr}`")
        base = self.resolve(node.value)
        if isinstance(base, types.ModuleType):
            banned = _BANNED_ATTRS.get(base.__name__, set())
            if attr in banned:
                self.report(node, f"uses `{base.__name__}.{attr}`, which the grader cannot check")
        if isinstance(node.ctx, ast.Load) and self._chain(node, called):
            return
        if isinstance(node.ctx, ast.Store | ast.Del) and isinstance(base, types.ModuleType):
            self.report(node, f"changes the module attribute `{ast.unparse(node)}`")
        self.visit(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "getattr" and not self._literal_getattr(node):
            self.report(node, "`getattr` with a computed name cannot be checked")
        if self._magic(node):
            return
        if self._literal_getattr(node):
            self._chain(node, called=False)  # the value of getattr(...) is a reference
            self.visit(node.args[0])
        elif isinstance(func, ast.Attribute):
            self._attribute(func, called=True)
        elif isinstance(func, ast.Name) and func.id not in BANNED_CALLS:
            self._chain(func, called=True)
        else:
            self.visit(func)
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            self.visit(arg)

    def _magic(self, node: ast.Call) -> bool:
        """``get_ipython().run_line_magic('timeit', 'code')``: allowed magics' code is checked."""
        func = node.func
        if not (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
        ):
            return False
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        if (
            func.attr in ("run_line_magic", "run_cell_magic")
            and len(args) == len(node.args)
            and args
            and args[0] in _MAGICS_OK
        ):
            for code in args[1:]:
                if args[0] != "matplotlib" and isinstance(code, str) and code.strip():
                    self._nested(node, code)
            return True
        what = "a shell command" if func.attr in ("system", "getoutput") else f"`{func.attr}`"
        self.report(node, f"runs {what} through IPython, which the grader cannot check")
        return True

    def _nested(self, node: ast.AST, code: str) -> None:
        try:
            tree = ast.parse(code)
        except SyntaxError:
            return
        for child in tree.body:
            ast.copy_location(child, node)
            self.visit(child)

    def _scope(self, node: ast.AST, body: list[ast.AST]) -> None:
        for deco in getattr(node, "decorator_list", []):
            self.visit(deco)
        args = getattr(node, "args", None)
        if isinstance(args, ast.arguments):
            for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
                self.visit(default)
        for base in getattr(node, "bases", []):
            self.visit(base)
        self.depth += 1
        for child in body:
            self.visit(child)
        self.depth -= 1

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scope(node, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scope(node, node.body)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scope(node, [node.body])


def code_problems(
    cells: list[tuple[str, str]], forbidden: Iterable[Any], namespace: dict
) -> list[str]:
    """Why the student's code cannot be trusted not to use the forbidden references.

    Args:
        cells: ``(label, source)`` of every cell the student wrote or changed, in order.
        forbidden: the kit's reference functions (or classes) the exercise reimplements.
        namespace: the reference notebook's variables (what the instructor's cells define).

    Returns:
        One line per problem, naming the cell and line (empty: nothing found).
    """
    reach = _Reach(forbidden)
    parsed, problems = [], []
    for label, source in cells:
        python, issues = _python(source)
        problems += [f"{label}: {i}" for i in issues]
        try:
            parsed.append((label, ast.parse(python)))
        except SyntaxError as exc:
            problems.append(f"{label}: a syntax error at line {exc.lineno} hides the code")
    imports: dict[str, Any] = {}
    for label, tree in parsed:
        checker = _Checker(label, reach, namespace)
        checker.imports = imports  # imports of earlier cells stay bound
        for node in tree.body:
            checker.visit(node)
        problems += checker.problems
    return list(dict.fromkeys(problems))


def names_in_function(cells: list[tuple[str, str]], name: str) -> tuple[set[str], list[str]]:
    """The names the student's function ``name`` reads, following the student's own functions
    it calls, and the dynamic features anywhere in the student's code that could hide a read.

    Args:
        cells: ``(label, source)`` of the cells the student wrote.
        name: the function.

    Returns:
        (names, problems); names is empty when no such function is defined.
    """
    defs: dict[str, ast.AST] = {}
    problems: list[str] = []
    for label, source in cells:
        python, issues = _python(source)
        problems += [f"{label}: {i}" for i in issues]
        try:
            tree = ast.parse(python)
        except SyntaxError as exc:
            problems.append(f"{label}: a syntax error at line {exc.lineno} hides the code")
            continue
        checker = _Checker(label, _Reach([]), {})
        for node in tree.body:
            checker.visit(node)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                defs[node.name] = node  # the last definition wins, as in the notebook
        problems += [p for p in checker.problems if "reaches" not in p]
    names: set[str] = set()
    todo, done = [name], set()
    while todo:
        current = todo.pop()
        if current in done or current not in defs:
            continue
        done.add(current)
        for node in ast.walk(defs[current]):
            if isinstance(node, ast.Name):
                names.add(node.id)
                if node.id in defs:
                    todo.append(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
    return names, list(dict.fromkeys(problems))
