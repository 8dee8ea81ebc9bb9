"""Every exercise graded on its own: the release with only exercise k solved scores k's points.

A tiny notebook with two exercises, where the second one's solution or its test reaches the
first exercise's answer (a dependency the check must name), or a test of the first earns points
whatever the student wrote; and the same notebook written independently (no problem).
"""

from __future__ import annotations

import nbformat
import pytest
from coursecopy import grade_cell

from recsys_grader.checktests import AssignmentChecker
from recsys_grader.independence import independence_problems, owners

DOUBLE = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"


def _problems(tmp_path, quad_body: str, quad_test: str, double_test: str = "") -> list[str]:
    cells = [
        grade_cell("import math", "00_setup"),
        grade_cell(DOUBLE, "00_double", solution=True),
        grade_cell(double_test or "assert double(2) == 4", "00_double_tests", grade=True, points=1),
        grade_cell(
            f"def quad(x):\n    ### BEGIN SOLUTION\n    {quad_body}\n    ### END SOLUTION\n",
            "00_quad",
            solution=True,
        ),
        grade_cell(quad_test, "00_quad_hidden", grade=True, points=2),
    ]
    path = tmp_path / "00_tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    checker = AssignmentChecker(path, budget_floor=1.0)
    checker.build()
    return independence_problems(checker)


def test_independent_exercises_pass(tmp_path):
    assert _problems(tmp_path, "return 4 * x", "assert quad(3) == 12") == []


def test_a_solution_built_on_another_exercise_is_named(tmp_path):
    (problem,) = _problems(tmp_path, "return double(double(x))", "assert quad(3) == 12")
    assert "00_quad_hidden fails when only 00_quad is solved" in problem


def test_a_test_fed_with_another_exercise_s_answer_is_named(tmp_path):
    (problem,) = _problems(tmp_path, "return 4 * x", "assert quad(double(1)) == 8")
    assert "00_quad_hidden" in problem and "depends on another exercise" in problem


def test_a_test_that_passes_without_its_exercise_is_named(tmp_path):
    problems = _problems(tmp_path, "return 4 * x", "assert quad(3) == 12", "assert True")
    assert problems == [
        "00_double_tests earns 1 point(s) when only 00_quad is solved: it does not test "
        "00_double's own answer"
    ]


@pytest.mark.parametrize(
    ("test_id", "owner"),
    [("02_concept_c1_hidden", "02_concepts"), ("02_topk_hidden", "02_topk"), ("02_pre", None)],
)
def test_owners_by_prefix_then_by_position(test_id, owner):
    cells = [
        grade_cell("assert True", "02_pre", grade=True, points=1),
        grade_cell("x = 1", "02_topk", solution=True),
        grade_cell("y = 2", "02_topk_extra", solution=True),
        grade_cell("assert x", "02_topk_hidden", grade=True, points=1),
        grade_cell("c1 = 'a'", "02_concepts", solution=True),
        grade_cell("assert c1", "02_concept_c1_hidden", grade=True, points=1),
    ]
    assert owners(nbformat.v4.new_notebook(cells=cells))[test_id] == owner
