"""Issue 12: a student cannot forge a status, and bombs stay bounded.

Whatever the student's code does to its executor, its sandbox or its output streams, the result
is ``graded`` with the points the judge gave, never ``failed_to_run``, and ``detail`` holds only
the grader's words. Fork and disk bombs hit the sandbox's limits and the batch goes on. The
submission's own files (symbolic links, a named pipe, an endless device) are never followed.
"""

from __future__ import annotations

import pytest

from .payloads import EX1, MARK
from .test_sandbox import report_of

pytestmark = pytest.mark.notebooks


@pytest.mark.parametrize(
    ("student", "at_most"),
    # exercise 2 is solved: 4 points if the notebook went on (a SIGINT may be survived)
    [("a_sigint_executor", 4.0), ("a_sigkill_executor", 0.0), ("a_kill_sandbox", 0.0)],
)
def test_killing_the_executor_or_the_sandbox_is_a_grade_not_a_failure(m0, student, at_most):
    result = m0.results[student]
    assert result.status == "graded", result.detail
    assert result.score is not None and result.score <= at_most, result.cells
    assert result.cells["00_count_by_department_tests"]["points"] == 0.0
    assert MARK not in result.detail and "grader error" not in result.detail
    # exercise 1 (the attack's cell) gets nothing; exercise 2 only what its answer deserves
    statuses = {g: c["status"] for g, c in result.cells.items() if c["max"]}
    assert {s for g, s in statuses.items() if g.startswith(EX1)} <= {"failed", "unavailable"}
    assert set(statuses.values()) <= {"ok", "failed", "unavailable", "no_response", "manual"}
    row = m0.csv_rows().get(student) if (m0.root / "reports" / "grades.csv").exists() else None
    assert row is None or MARK not in row["detail"]


def test_fork_bomb_is_bounded_and_the_batch_goes_on(m0):
    """The process limit stops the bomb; the bomber's own sandbox may stall (its children hold
    every process slot), its result is still a grade, and the students after it are graded."""
    forks = report_of(m0, "a_fork_bomb", "FORKS")
    assert forks["error"] and forks["made"] < 128, forks
    result = m0.results["a_fork_bomb"]
    assert result.status == "graded" and result.score is not None and result.score <= 4.0


def test_disk_bomb_is_bounded_and_the_notebook_goes_on(m0):
    disk = report_of(m0, "a_disk_bomb", "DISK")
    assert sum(disk["bytes"].values()) <= 64 * 1024 * 1024, disk
    assert disk["bytes"]["/dev/shm"] == 0
    assert not disk["tmpfs in a user namespace"].startswith("ALLOWED"), disk
    # bounded, graded, no undeserved point (exercise 2 is right: 4 when the kernel survives its
    # full /tmp, which it usually does; the attack's own kernel dying is not a grader failure)
    result = m0.results["a_disk_bomb"]
    assert result.status == "graded" and result.score is not None and result.score <= 4.0


@pytest.mark.parametrize("student", ["a_huge_return", "a_deep_return"])
def test_monstrous_return_values_cost_the_test_not_the_batch(m0, student):
    result = m0.results[student]
    assert result.status == "graded", result.detail
    assert result.cells["00_count_by_department_tests"]["points"] == 0.0
    # exercise 2 is right: at most its 4 points (its kernel may not survive building the value)
    assert result.score is not None and result.score <= 4.0, result.cells


@pytest.mark.parametrize(
    ("student", "why"),
    [
        ("a_symlinked_notebook", "symbolic link"),
        ("a_symlinked_folder", "symbolic link"),
        ("a_fifo_notebook", "not a regular file"),
    ],
)
def test_submission_files_are_never_followed(m0, student, why):
    """A link to the solution notebook (or to a classmate's folder) would be graded as the
    student's work; a named pipe or /dev/zero would hang or exhaust the grader."""
    result = m0.results[student]
    assert result.status == "failed_to_run" and result.score is None, result
    assert why in result.detail
