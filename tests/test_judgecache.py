"""The judge keeps its reference namespace between gradings (recsys_grader.judgecache)."""

from __future__ import annotations

import ast
import copy
import os

import nbformat
import numpy as np
import pandas as pd
import pytest

from recsys_grader import judge, judgecache
from recsys_grader import notebooks as nbs
from recsys_kit.paths import REPO_ROOT

A = "00_orientation"
SOURCE = REPO_ROOT / "solutions" / A / f"{A}.ipynb"


@pytest.fixture(scope="module")
def source() -> nbformat.NotebookNode:
    return nbs.read_notebook(SOURCE)


def _built(source, cache=None) -> judge.Judge:
    j = judge.Judge(copy.deepcopy(source))
    j.build(cache, A)
    return j


def _defined(j: judge.Judge) -> dict:
    hidden = j._shell.user_ns_hidden
    return {k: v for k, v in j.namespace.items() if k not in hidden and not k.startswith("__")}


def test_a_kept_namespace_is_the_built_one(source, tmp_path):
    first = _built(source, tmp_path)
    assert first.cache_note == "saved"
    assert [p.name for p in tmp_path.iterdir()] == [next(tmp_path.glob(f"{A}-*.pkl")).name] and oct(
        tmp_path.stat().st_mode & 0o777
    ) == "0o700"
    state_after_build = np.random.get_state()[1].copy()
    np.random.seed(12345)  # whatever happened in between, the load puts the build's state back
    second = _built(source, tmp_path)
    assert second.cache_note == "loaded"
    np.testing.assert_array_equal(np.random.get_state()[1], state_after_build)
    built, kept = _defined(first), _defined(second)
    assert set(built) == set(kept) and "catalog" in kept
    for name, value in built.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(kept[name], value)
        elif isinstance(value, int | float | str | list | dict | tuple):
            assert kept[name] == value, name
    # the solution's own functions come back working (saved by value)
    assert kept["count_by_department"](built["catalog"]) == built["count_by_department"](
        built["catalog"]
    )


def test_a_changed_solution_is_built_again_and_replaces_the_old_file(source, tmp_path):
    _built(source, tmp_path)
    changed = copy.deepcopy(source)
    changed.cells.insert(5, nbformat.v4.new_code_cell("EXTRA = 41 + 1"))
    again = _built(changed, tmp_path)
    assert again.cache_note == "saved" and again.namespace["EXTRA"] == 42
    assert len(list(tmp_path.glob(f"{A}-*.pkl"))) == 1  # one file per assignment
    assert _built(changed, tmp_path).cache_note == "loaded"


def test_the_key_follows_what_the_build_depends_on(source, monkeypatch):
    text = nbformat.writes(source)
    key = judgecache.source_key(text)
    assert judgecache.source_key(text) == key
    assert judgecache.source_key(text + " ") != key
    monkeypatch.setenv("RECSYS_SOMETHING", "1")  # the kit's settings
    assert judgecache.source_key(text) != key


def test_an_unpicklable_value_nothing_reads_is_left_out(source, tmp_path):
    # a finished server, a closed file...: nothing the tests or the notebook's functions name
    odd = copy.deepcopy(source)
    odd.cells.insert(5, nbformat.v4.new_code_cell("pending = (i for i in range(3))"))
    j = _built(odd, tmp_path)
    assert j.cache_note == "saved without pending" and "pending" in j.namespace
    kept = _built(odd, tmp_path)
    assert kept.cache_note == "loaded" and "pending" not in kept.namespace
    assert set(_defined(kept)) == set(_defined(j)) - {"pending"}


@pytest.mark.parametrize(
    "cell",
    [
        # a function of the notebook reads it (and a test may call that function)
        "pending = (i for i in range(3))\ndef peek():\n    return next(pending)",
        # a function the delegation check must resolve, whoever reads it
        "def _make():\n    g = (i for i in range(3))\n    return lambda: next(g)\npeek = _make()",
    ],
    ids=["read-by-a-function", "a-function"],
)
def test_an_unpicklable_value_that_may_be_read_keeps_the_namespace_unsaved(source, tmp_path, cell):
    odd = copy.deepcopy(source)
    odd.cells.insert(5, nbformat.v4.new_code_cell(cell))
    j = _built(odd, tmp_path)
    assert "cannot be saved" in j.cache_note and "generator" in j.cache_note, j.cache_note
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob(".tmp-*"))
    assert _built(odd, tmp_path).cache_note != "loaded"


def test_names_the_tests_may_read(source):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    nb = copy.deepcopy(source)
    nb.cells.insert(5, nbformat.v4.new_code_cell("server = 1\ndef f(x):\n    return x + offset"))
    needed = judge._names_tests_may_read(nb, shell)
    assert "offset" in needed and "server" not in needed  # function bodies count, top level not
    tests = [c for c in nb.cells if judge._is_test(c)]
    assert tests and all(
        n.id in needed
        for c in tests
        for n in ast.walk(ast.parse(shell.transform_cell(c.source)))
        if isinstance(n, ast.Name)
    )
    tests[0].source += "\nassert globals()['server'] == 1"  # a name read by a computed key
    assert judge._names_tests_may_read(nb, shell) is None


def test_a_damaged_file_is_rebuilt(source, tmp_path):
    _built(source, tmp_path)
    (kept,) = tmp_path.glob(f"{A}-*.pkl")
    kept.write_bytes(kept.read_bytes()[:100])
    again = _built(source, tmp_path)
    assert again.cache_note == "saved" and "catalog" in again.namespace
    assert os.path.getsize(kept) > 100
