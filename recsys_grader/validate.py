"""``recsys-course validate``: the solutions earn full marks, untouched releases earn zero.

For every assignment two runs go through the same sandbox and scorer as student submissions:

* the solution notebook must pass every autograded test, with no error output anywhere;
* the released notebook (``course/``), graded as if a student submitted it untouched, must score
  0 on every autograded test, must not look tampered, and its non-graded cells must run.

Example:
    >>> from recsys_grader.validate import validate
    >>> reports = validate(["00_orientation"])  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from recsys_grader import cellscores, executor
from recsys_grader import notebooks as nbs
from recsys_grader.autograde import add_limit_arguments, default_workers, limits_from
from recsys_grader.layout import CourseError, CourseLayout
from recsys_grader.sandbox import Limits

__all__ = ["ValidationReport", "validate", "add_limit_arguments"]


@dataclass
class ValidationReport:
    """Outcome of validating one assignment.

    Attributes:
        assignment: the assignment.
        solution_score: points of the solution notebook (autograded cells).
        release_score: points of the untouched release (must be 0).
        max_score: autograded points available.
        problems: everything that is wrong; empty means valid.
        seconds: (solution run, release run) durations.
    """

    assignment: str
    solution_score: float = 0.0
    release_score: float = 0.0
    max_score: float = 0.0
    problems: list[str] = field(default_factory=list)
    seconds: tuple[float, float] = (0.0, 0.0)

    @property
    def ok(self) -> bool:
        """True when the assignment is valid."""
        return not self.problems


def _auto_points(scores: dict[str, cellscores.CellScore]) -> float:
    return sum(s.points or 0.0 for s in scores.values() if s.status != "manual")


def _check_solution(report: ValidationReport, run: executor.Execution, ref: nbs.Reference) -> None:
    if run.notebook is None:
        report.problems.append(f"solution did not run: {run.error}")
        return
    scores = cellscores.score(run.notebook, ref)
    report.solution_score = _auto_points(scores)
    for s in scores.values():
        if s.status not in (executor.OK, "manual"):
            report.problems.append(
                f"solution: {s.grade_id} scored {s.points}/{s.max_points} ({s.status})"
            )
        elif s.status == executor.OK and s.points != s.max_points:
            report.problems.append(f"solution: {s.grade_id} scored {s.points}/{s.max_points}")
    for index, cell in enumerate(run.notebook.cells):
        status = executor.status_of(cell)
        if cell.cell_type == "code" and status != executor.OK:
            report.problems.append(f"solution: cell {index} ended with {status}")


def _check_release(
    report: ValidationReport, run: executor.Execution | None, reasons: list[str], ref: nbs.Reference
) -> None:
    for reason in reasons:
        report.problems.append(
            f"release differs from solutions ({reason}): run `recsys-course release`"
        )
    if run is None:
        return
    if run.notebook is None:
        report.problems.append(f"release did not run: {run.error}")
        return
    scores = cellscores.score(run.notebook, ref)
    report.release_score = _auto_points(scores)
    for s in scores.values():
        if s.points:
            report.problems.append(
                f"untouched release earns {s.points} on {s.grade_id}: the test "
                "must fail until the student answers"
            )
    for problem in cellscores.errors_outside_graded_cells(run.notebook):
        report.problems.append(f"release: {problem} fails before any answer is written")


def validate(
    assignments: list[str] | None = None,
    limits: Limits | None = None,
    workers: int | None = None,
    root: str | None = None,
    log: Callable[[str], None] = print,
) -> list[ValidationReport]:
    """Validate assignments (all by default).

    Args:
        assignments: names, or None for all.
        limits: sandbox limits.
        workers: parallel executions.
        root: course root.
        log: where progress lines go.

    Returns:
        One report per assignment.
    """
    layout = CourseLayout.load(root)
    selected = layout.select(assignments)
    limits = limits or Limits()
    reports, jobs = {}, []
    for assignment in selected:
        report = reports[assignment] = ValidationReport(assignment)
        try:
            source = nbs.read_notebook(layout.source_notebook(assignment))
            ref = nbs.reference(source)
        except CourseError as exc:
            report.problems.append(str(exc))
            continue
        report.max_score = sum(c.points for c in ref.cells if c.grade and not c.solution)
        jobs.append((assignment, "solution", nbs.normalise(source), ref, []))
        released_path = layout.release_notebook(assignment)
        if not released_path.is_file():
            report.problems.append(f"{released_path} missing: run `recsys-course release`")
            continue
        prepared, reasons = cellscores.prepare(nbs.read_notebook(released_path), ref)
        jobs.append((assignment, "release", prepared, ref, reasons))
    with (
        tempfile.TemporaryDirectory(prefix="recsys-validate-") as tmp,
        ThreadPoolExecutor(max_workers=workers or default_workers()) as pool,
    ):
        futures = [
            (
                job,
                pool.submit(executor.execute, job[2], limits, Path(tmp) / f"{job[0]}-{job[1]}"),
            )
            for job in jobs
        ]
        for (assignment, kind, _, ref, reasons), future in futures:
            run = future.result()
            for warning in run.warnings:
                log(f"warning: {warning}")
            report = reports[assignment]
            if kind == "solution":
                _check_solution(report, run, ref)
                report.seconds = (round(run.seconds, 1), report.seconds[1])
            else:
                _check_release(report, run, reasons, ref)
                report.seconds = (report.seconds[0], round(run.seconds, 1))
    return [reports[a] for a in selected]


def run(args) -> int:
    """CLI entry: one line per assignment; exit 1 when any assignment is invalid."""
    reports = validate(args.assignments, limits_from(args), args.workers, args.root)
    for r in reports:
        verdict = "ok" if r.ok else "FAILED"
        print(
            f"{r.assignment}: {verdict}  solution {r.solution_score:g}/{r.max_score:g} "
            f"({r.seconds[0]} s), untouched release {r.release_score:g}/{r.max_score:g} "
            f"({r.seconds[1]} s)"
        )
        for problem in r.problems:
            print(f"  - {problem}")
    return 0 if all(r.ok for r in reports) else 1
