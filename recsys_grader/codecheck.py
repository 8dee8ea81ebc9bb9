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
    # names to objects, or code from strings, by other doors: pydoc.locate, pkgutil.resolve_name,
    # timeit/cProfile/pdb/doctest running a string, unpickling (shelve, joblib, yaml)...
    "pydoc",
    "pkgutil",
    "zipimport",
    "timeit",
    "cProfile",
    "profile",
    "pdb",
    "bdb",
    "trace",
    "doctest",
    "shelve",
    "copyreg",
    "joblib",
    "yaml",
    "annotationlib",
    "dbm",
    "xmlrpc",
}
#: Submodules that resolve dotted names or start processes (``logging.config``'s ``ext://``,
#: ``unittest.mock``'s importer).
BANNED_SUBMODULES = {
    "logging.config",
    "unittest.mock",
    "asyncio.subprocess",
    "concurrent.futures.process",
    "torch.package",
}
#: Attributes that lead to frames (and so to any namespace), whatever object they are read on,
#: and readers that unpickle.
ATTRS_ANYWHERE = {
    "f_globals",
    "f_locals",
    "f_builtins",
    "f_back",
    "tb_frame",
    "tb_next",
    "gi_frame",
    "cr_frame",
    "ag_frame",
    "read_pickle",
    "unsafe_load",
}
_BANNED_ATTRS = {
    "operator": {"attrgetter", "methodcaller"},
    "typing": {"get_type_hints", "ForwardRef", "_eval_type", "evaluate_forward_ref"},
    "string": {"Formatter"},
    "pandas": {"eval"},
    "types": {"CodeType", "FunctionType", "LambdaType", "MethodType"},
    "asyncio": {"create_subprocess_exec", "create_subprocess_shell", "subprocess"},
    "concurrent.futures": {"ProcessPoolExecutor"},
    "threading": {"settrace", "setprofile", "settrace_all_threads", "setprofile_all_threads"},
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
        "exc_info",
        "exception",
        "last_traceback",
        "last_exc",
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
            banned = _BANNED_ATTRS.get(module, set()) | ATTRS_ANYWHERE
            if alias.name in banned or f"{module}.{alias.name}" in BANNED_SUBMODULES:
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
        parts = name.split(".")
        prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
        private = top.startswith("_") and top != "__future__"  # _frozen_importlib, __main__...
        if top in BANNED_MODULES or prefixes & BANNED_SUBMODULES or private:
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
        if node.id == "getattr" and isinstance(node.ctx, ast.Load):
            self.report(node, "`getattr` passed around (not called with a literal name)")
        elif node.id in BANNED_CALLS:
            self.report(node, f"uses `{node.id}`, which the grader cannot check")
        elif node.id.startswith("__") and node.id.endswith("__") and node.id != "__name__":
            self.report(node, f"uses `{node.id}`")
        elif isinstance(node.ctx, ast.Load):
            self._chain(node, called=False)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._attribute(node, called=False)

    def _check_attribute(self, node: ast.AST, base: Any, attr: str) -> None:
        """Dunders, frame attributes and the banned attributes of known modules."""
        if attr.startswith("__") and attr.endswith("__") and attr not in _DUNDERS_OK:
            self.report(node, f"uses the attribute `{attr}`")
        elif attr in ATTRS_ANYWHERE:
            self.report(node, f"uses the attribute `{attr}`, which the grader cannot check")
        if isinstance(base, types.ModuleType):
            banned = _BANNED_ATTRS.get(base.__name__, set())
            if attr in banned:
                self.report(node, f"uses `{base.__name__}.{attr}`, which the grader cannot check")

    def _attribute(self, node: ast.Attribute, called: bool) -> None:
        attr = node.attr
        base = self.resolve(node.value)
        self._check_attribute(node, base, attr)
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
        self._check_call_arguments(node)
        if self._literal_getattr(node):
            self._check_attribute(node, self.resolve(node.args[0]), node.args[1].value)
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

    def _check_call_arguments(self, node: ast.Call) -> None:
        """Unpickling loaders, and pandas' ``eval``/``query`` resolving ``@names`` from the
        caller's frame (``df.eval("@ranking.topk")`` is the kit function)."""
        for keyword in node.keywords:
            value = keyword.value.value if isinstance(keyword.value, ast.Constant) else None
            if (keyword.arg == "allow_pickle" and value is not False) or (
                keyword.arg == "weights_only" and value is not True
            ):
                self.report(node, f"`{keyword.arg}` lets the call unpickle objects")
            elif keyword.arg in ("local_dict", "global_dict", "resolvers"):
                self.report(node, f"`{keyword.arg}` hands names to an expression evaluator")
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("eval", "query") and node.args:
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                self.report(node, f"`.{func.attr}()` of a computed expression cannot be checked")
            elif "@" in first.value:
                self.report(node, f"`.{func.attr}()` with `@` reads names the grader cannot check")

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


#: Names through which a function reads files, the environment or the interpreter's own state
#: (what it reads there is invisible to a reading of its code).
_IO_NAMES = frozenset(
    [
        "open",
        "io",
        "os",
        "sys",
        "pathlib",
        "Path",
        "shutil",
        "glob",
        "tempfile",
        "fileinput",
        "linecache",
        "mmap",
        "socket",
        "pickle",
        "marshal",
        "shelve",
        "sqlite3",
        "dbm",
        "json",
        "csv",
        "environ",
        "environb",
        "getenv",
        "load",
        "loads",
        "fromfile",
        "loadtxt",
        "genfromtxt",
        "memmap",
        "read_csv",
        "read_json",
        "read_parquet",
        "read_pickle",
        "read_table",
        "read_feather",
        "read_hdf",
        "read_sql",
        "read_excel",
        "read_orc",
        "read_text",
        "read_bytes",
        "builtins",
        "__builtins__",
    ]
)


def _chain(node: ast.AST) -> tuple[str | None, list[str]]:
    """The root name and the attributes of ``a.b[c].d`` (a target or a method's receiver)."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
        if isinstance(node, ast.Attribute):
            attrs.append(node.attr)
        node = node.value
    return (node.id if isinstance(node, ast.Name) else None), attrs


def _read(node: ast.AST) -> set[str]:
    """Every name and attribute a piece of code mentions."""
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr)
    return found


def _free(node: ast.AST) -> set[str]:
    """The names a function (or class) mentions less its own locals: what it reads from the
    module (a parameter called ``run`` is not the notebook's ``run``)."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
        return _read(node)
    local: set[str] = set()
    declared: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.arg):
            local.add(sub.arg)
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store | ast.Del):
            local.add(sub.id)
        elif isinstance(sub, ast.Global | ast.Nonlocal):
            declared.update(sub.names)
    return _read(node) - (local - declared)


def _writes(stmt: ast.stmt, variables: set[str]) -> set[str]:
    """What a top-level statement may change that a function could later read: the module
    names it binds, the attributes it stores (on anything), and the student's variables it
    changes in place (``x[k] = v``, ``x.update(...)``); names a function declares ``global``."""
    keys: set[str] = set()
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        keys.add(stmt.name)
    for sub in ast.walk(stmt):
        if isinstance(sub, ast.Global):
            keys.update(sub.names)
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store | ast.Del):
            keys.add(sub.id)
        elif isinstance(sub, ast.Attribute | ast.Subscript) and isinstance(
            sub.ctx, ast.Store | ast.Del
        ):
            root, attrs = _chain(sub)
            keys.update(attrs)
            if root is not None:
                keys.add(root)
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
            root, attrs = _chain(sub.func.value)  # a method called on one of their variables
            if root in variables:
                keys.add(root)
                keys.update(attrs)
    return keys


def names_in_function(cells: list[tuple[str, str]], name: str) -> tuple[set[str], list[str]]:
    """The names the student's function ``name`` reads, following the student's own functions
    it calls and whatever in the student's cells could have changed what it reads (the module
    variables it uses and how they were set, attributes stored anywhere, changes made in place),
    and the features that could hide a read: dynamic features anywhere in the student's code, a
    function not made by a plain ``def``, reading files, the environment or the interpreter.

    Args:
        cells: ``(label, source)`` of the cells the student wrote.
        name: the function.

    Returns:
        (names, problems); names is empty when no such function is defined.

    Example:
        >>> names, problems = names_in_function(
        ...     [("cell 1", "_t = truth\\ndef f(run):\\n    return _t")], "f")
        >>> "truth" in names, problems
        (True, [])
    """
    statements: list[ast.stmt] = []
    problems: list[str] = []
    last: tuple[str, ast.stmt] | None = None  # the statement that last bound ``name``
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
            statements.append(node)
            if name in _writes(node, set()):
                last = (label, node)
        problems += [p for p in checker.problems if "reaches" not in p]
    if last is None:
        return set(), list(dict.fromkeys(problems))
    label, node = last
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.decorator_list:
        problems.append(
            f"{label}, line {node.lineno}: `{name}` must be made by a plain `def {name}(...)` at "
            "the top level of its cell (the grader reads what that function uses)"
        )
    variables: set[str] = set()
    for stmt in statements:
        if not isinstance(stmt, ast.Import | ast.ImportFrom):
            variables |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)} & _writes(
                stmt, set()
            )
    names, free = _read(node), _free(node)
    done: set[int] = {id(node)}
    grew = True
    while grew:  # whatever could change a name it reads, until nothing new is found
        grew = False
        for stmt in statements:
            if id(stmt) not in done and _writes(stmt, variables) & free:
                done.add(id(stmt))
                names |= _read(stmt)
                free |= _free(stmt)
                grew = True
    hidden = sorted(names & _IO_NAMES)
    if hidden:
        problems.append(
            f"`{name}` (or what it uses) reads files, the environment or the interpreter "
            f"({', '.join(hidden)}): the grader cannot tell what it reads there"
        )
    return names, list(dict.fromkeys(problems))
