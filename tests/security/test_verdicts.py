"""Issue 11: a verdict never depends on the student's kernel.

Each hostile notebook leaves both exercises of Module 0 unsolved and adds one trick that made
nbgrader-style graders (tests run in the student's kernel) give full marks: exception handlers,
traceback display, output-clearing hooks, input and AST transformers, lying comparison objects,
patched numpy/pandas/math helpers, a replaced grader agent. Graded through the real pipeline,
each must get exactly 0 of the 7 automatic points with the status ``graded``.
"""

from __future__ import annotations

import pytest

from .payloads import MARK

pytestmark = pytest.mark.notebooks

KERNEL_TRICKS = [
    "a_custom_exc",
    "a_showtraceback",
    "a_output_hooks",
    "a_input_transformer",
    "a_ast_transformer",
    "a_lying_objects",
    "a_patched_helpers",
    "a_forged_answers",
]


@pytest.mark.parametrize("student", KERNEL_TRICKS)
def test_kernel_tricks_get_no_point(m0, student):
    result = m0.results[student]
    assert result.status == "graded", result.detail
    assert result.score == 0.0, result.cells
    assert all(c["status"] != "ok" for c in result.cells.values() if c["max"] and c["points"] == 0)
    assert MARK not in result.detail


def test_every_test_cell_shows_the_judges_verdict_not_the_kernels(m0):
    """In the stored notebook a test cell's outputs are the judge's (a failure is an error
    output, so nbgrader's own reading of the notebook also gives 0)."""
    for student in KERNEL_TRICKS:
        for cell in m0.notebook(student).cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
                enames = [o.get("ename") for o in cell.outputs if o.get("output_type") == "error"]
                assert enames, (student, meta["grade_id"])


def test_victims_graded_with_the_tricks_keep_their_scores(m0):
    assert m0.results["z_victim_release"].score == 0.0
    for victim in ("z_victim_right", "z_victim_right_2"):
        assert m0.results[victim].score == 7.0, m0.results[victim].cells
