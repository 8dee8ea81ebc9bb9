"""A test runs as soon as the cells it depends on have run (recsys_grader.cellflow), and grades
exactly as it would on the finished reference namespace."""

from __future__ import annotations

import sys
import threading
import types

import nbformat
import pytest

from recsys_grader import judge
from recsys_grader.cellflow import EVERYTHING, BuildProgress, CellFlow, fingerprint, names_read
from recsys_grader.checktests import LocalSandbox
from recsys_grader.sandbox import Limits


@pytest.mark.parametrize(
    ("cells", "names", "ready"),
    [
        (["x = 1", "y = x", "x = 2"], {"x"}, 2),  # rebound
        (["x = []", "x.append(1)", "len(x)"], {"x"}, 1),  # a method that may change it
        (["x = []", "x.copy()", "print(x)"], {"x"}, 0),  # pure methods and builtins
        (["x = {}", "x['a'] = 1", "z = 3"], {"x"}, 1),  # a store into it
        (["x = []", "y = x.count(1)"], {"x", "y"}, 1),
        (["import numpy as np", "x = np.ones(2)", "np.random.shuffle(x)"], {"x"}, 2),
        (["import numpy as np", "x = np.ones(2)", "y = np.sum(x)"], {"x", "np"}, 1),
        (["import numpy as np", "x = 1", "import numpy as np"], {"np"}, 0),  # same import
        (["import numpy as np", "x = 1", "import pandas as np"], {"np"}, 2),
        (["x = [1]", "def f():\n    x.append(2)", "f()"], {"x"}, 2),  # a function's effect
        (["x = 1", "def f():\n    global x\n    x = 2", "y = 0"], {"x"}, 1),
        (["x = 1", "globals()['x'] = 2", "y = 0"], {"x"}, 1),  # by a computed name: anything
        (["x = 1", "for x in range(3):\n    pass"], {"x"}, 1),
        (["x = 1", "y = [x for x in range(3)]"], {"x"}, 0),  # a comprehension's own x
        (["x = 1"], {"nobody"}, -1),
        (["x = 1"], EVERYTHING, 0),
    ],
)
def test_when_a_name_is_final(cells, names, ready):
    assert CellFlow(cells).ready_at(names) == ready


def test_a_test_needs_its_names_and_those_of_the_functions_it_calls():
    flow = CellFlow(["data = [1]", "def helper():\n    return data", "other = 2"])
    assert flow.needs("assert helper() == [1]") >= {"helper", "data"}
    assert "other" not in flow.needs("assert helper() == [1]")
    assert flow.needs("assert globals()['data']") is EVERYTHING
    # its own variables are not read from the namespace; one read before it is bound is
    assert names_read("_x = 1\nassert _x == 1") == set()
    assert names_read("data = data + [2]") == {"data"}


def test_fingerprints_see_changes_inside_containers_frames_and_objects():
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2]})
    model = types.SimpleNamespace(weights=np.zeros(3), name="m")
    values = {"nested": {"list": [np.ones(2)]}, "frame": frame, "model": model}
    before = fingerprint(values)
    assert fingerprint(values) == before
    frame["b"] = 3
    assert fingerprint(values) != before
    before = fingerprint(values)
    model.weights[1] = 5
    assert fingerprint(values) != before


def test_progress_waits_until_the_cell_has_run_or_the_build_is_over():
    progress = BuildProgress()
    reached = []
    waiter = threading.Thread(target=lambda: reached.append(progress.wait_for(2)))
    waiter.start()
    progress.advance(1)
    waiter.join(0.2)
    assert waiter.is_alive()
    progress.advance(2)
    waiter.join(5)
    assert reached == [2]
    progress.finish()
    assert progress.wait_for(BuildProgress.END) == 2  # a failed build wakes everybody


def _cell(source: str, **nbgrader) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = {"schema_version": 3, "locked": False, **nbgrader}
    return cell


def _assignment(late_cell: str) -> nbformat.NotebookNode:
    """Data, an exercise, its test, then a cell that waits for the test's gate (the build is
    still running while the test runs) before it runs ``late_cell``."""
    return nbformat.v4.new_notebook(
        cells=[
            _cell("import _cellflow_gate\ndata = [1, 2, 3]\nalias = data"),
            _cell(
                "def total(xs):\n    ### BEGIN SOLUTION\n    return sum(xs)\n    ### END SOLUTION",
                solution=True,
                grade=False,
                grade_id="total",
            ),
            _cell("assert total(data) == 6", grade=True, solution=False, grade_id="t", points=1),
            _cell("_cellflow_gate.GATE.wait(30)\n" + late_cell),
            _cell("assert total([1]) == 1", grade=True, solution=False, grade_id="u", points=1),
        ]
    )


@pytest.mark.parametrize(
    ("late_cell", "status"),
    [
        ("other = 1", judge.PASSED),  # nothing the test read changes: its early verdict stands
        ("alias.append(4)", judge.FAILED),  # changed through a second name: graded again
    ],
)
def test_an_early_test_grades_as_on_the_finished_namespace(monkeypatch, late_cell, status):
    gate = types.SimpleNamespace(GATE=threading.Event())
    monkeypatch.setitem(sys.modules, "_cellflow_gate", gate)
    j = judge.Judge(_assignment(late_cell))
    builder = threading.Thread(target=j.build)
    builder.start()
    try:
        student_ns: dict = {}
        exec("def total(xs):\n    return sum(xs)", student_ns)  # noqa: S102 (the test's own)
        student = judge.Student(LocalSandbox(student_ns, None), Limits(), [], {})
        session = j.session(student, None)
        session.test("t")  # runs now: `data` is final after cell 0 as far as a reading sees
        assert builder.is_alive() and j.progress.index < BuildProgress.END
        assert session.verdicts["t"].status == judge.PASSED
    finally:
        gate.GATE.set()
        builder.join(30)
    verdicts = session.finish()
    assert verdicts["t"].status == status
    assert verdicts["u"].status == judge.PASSED
    assert (("data", 1) in j.stale or ("data", 0) in j.stale) == (status == judge.FAILED)


def test_a_static_check_made_early_is_made_again_on_the_final_namespace(monkeypatch):
    """The student's code names `helper`, which only a late cell of the reference binds to the
    kit function the exercise reimplements: the check made while the build ran saw nothing,
    the one on the final namespace sees it, and the test runs again and fails."""
    gate = types.SimpleNamespace(GATE=threading.Event())
    monkeypatch.setitem(sys.modules, "_cellflow_gate", gate)
    source = _assignment("from recsys_kit.metrics import evaluate as helper")
    source.cells[2].source = (
        "from recsys_grader.testing import assert_does_not_delegate\n"
        "from recsys_kit.metrics import evaluate as _evaluate\n"
        "assert assert_does_not_delegate(total, [_evaluate], data) == 6"
    )
    j = judge.Judge(source)
    builder = threading.Thread(target=j.build)
    builder.start()
    code = "def total(xs):\n    if False:\n        helper(xs)\n    return sum(xs)"
    try:
        student_ns: dict = {}
        exec(code, student_ns)  # noqa: S102 (the test's own)
        student = judge.Student(LocalSandbox(student_ns, None), Limits(), [("cell", code)], {})
        session = j.session(student, None)
        session.test("t")
        assert builder.is_alive() and session.verdicts["t"].status == judge.PASSED
    finally:
        gate.GATE.set()
        builder.join(30)
    verdict = session.finish()["t"]
    assert verdict.status == judge.FAILED and "helper" in verdict.feedback


def test_a_rehearsed_build_names_what_the_reading_missed():
    """check-tests builds with ``rehearse``: a value changed through a second name is named."""
    source = _assignment("alias.append(4)")
    source.cells[0].source = "data = [1, 2, 3]\nalias = data"
    source.cells[3].source = "alias.append(4)"
    j = judge.Judge(source)
    j.build(rehearse=True)
    assert {name for name, _ in j.stale} == {"data"}
    source.cells[3].source = "other = 1"
    j = judge.Judge(source)
    j.build(rehearse=True)
    assert j.stale == set()
