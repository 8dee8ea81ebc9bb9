"""The kit's layout: an acyclic import graph, ``__all__`` in public modules, modest module and
function sizes.

Read from the source with ``ast`` (nothing is imported), so a cycle hidden inside a function's
body is found too: a late import that papers over a cycle is still a cycle in the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parents[1] / "recsys_kit"
#: Modules another branch owns; they get ``__all__`` when it lands.
NO_ALL_YET: set[str] = set()
MAX_LINES = 600
#: Longest function body (docstring excluded): past it, cut the function at its phases.
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(KIT.rglob("*.py")):
        parts = path.relative_to(KIT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The kit module an imported name lives in (a module, else its package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from pkg import sub" names a submodule when sub is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]  # fmt: skip
        else:
            continue
        for t in targets:
            if t.startswith("recsys_kit"):
                mod = _resolve(t)
                if mod and mod != name:
                    found.add(mod)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_kit_imports_no_module_that_imports_it_back():
    # a package's __init__ may import its submodules, never a submodule its own package
    cycle = _cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_run_type_sits_below_its_users():
    for user in ("recsys_kit.metrics", "recsys_kit.hybrid", "recsys_kit.abtest",
                 "recsys_kit.rerank", "recsys_kit.cf.evaluation"):  # fmt: skip
        assert "recsys_kit.runs" in GRAPH[user], f"{user} should take runs from recsys_kit.runs"
    assert "recsys_kit.hybrid" not in GRAPH["recsys_kit.cf.evaluation"]
    assert GRAPH["recsys_kit.runs"] <= {"recsys_kit.constants"}


def test_no_module_imports_another_modules_private_names():
    # a helper two modules need is public in the module it belongs to
    found = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("recsys_kit"):
                found += [f"{name} imports {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]  # fmt: skip
    assert not found, "; ".join(found) + ": make the helper public where it lives, or move it"


@pytest.mark.parametrize("name", [n for n in MODULES if n not in NO_ALL_YET])
def test_public_modules_declare_all(name):
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    names = [t.id for node in tree.body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)]  # fmt: skip
    # one list: a second assignment silently replaces the first
    assert names.count("__all__") <= 1, f"{MODULES[name]} assigns __all__ more than once"
    if MODULES[name].stem.startswith("_") and MODULES[name].name != "__init__.py":
        return
    assert "__all__" in names, f"{MODULES[name]} declares no __all__"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small_or_say_why(name):
    text = MODULES[name].read_text(encoding="utf-8")
    if len(text.splitlines()) <= MAX_LINES or name in NO_ALL_YET:
        return
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert "lines because" in doc.replace("\n", " "), (
        f"{MODULES[name]} has {len(text.splitlines())} lines: split it by concept or say in its "
        f"docstring why it is over {MAX_LINES} lines (a sentence with 'lines because')"
    )


def test_package_docstring_names_every_room():
    doc = ast.get_docstring(ast.parse((KIT / "__init__.py").read_text(encoding="utf-8"))) or ""
    rooms = {n.split(".")[1] for n in MODULES if n.count(".") >= 1}
    missing = sorted(r for r in rooms if f"``{r}``" not in doc)
    assert not missing, f"recsys_kit/__init__.py's docstring does not name {missing}"


def _long_functions(tree: ast.AST) -> list[tuple[str, int, int]]:
    """``(name, first line, body lines)`` of each function whose body, docstring excluded,
    is over :data:`MAX_FUNCTION_LINES` lines (nested functions count inside their parent too)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        if body:
            n = node.end_lineno - body[0].lineno + 1
            if n > MAX_FUNCTION_LINES:
                found.append((node.name, node.lineno, n))
    return found


def test_long_function_finder_skips_the_docstring():
    doc = '    """' + "\n" * 70 + '    """\n'
    short = "def f():\n" + doc + "    return 1\n"
    long = "def g():\n" + "    x = 1\n" * (MAX_FUNCTION_LINES + 1)
    assert _long_functions(ast.parse(short)) == []
    assert _long_functions(ast.parse(long)) == [("g", 1, MAX_FUNCTION_LINES + 1)]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_functions_are_cut_at_their_phases(name):
    long = _long_functions(ast.parse(MODULES[name].read_text(encoding="utf-8")))
    assert not long, "; ".join(
        f"{MODULES[name]}:{line} {fn} has a {n}-line body (docstring excluded): cut it at its "
        f"phases into helpers of at most {MAX_FUNCTION_LINES} lines"
        for fn, line, n in long
    )
