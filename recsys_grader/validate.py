"""``recsys-course validate``: the solutions earn full marks, untouched releases earn zero.

For every assignment two runs go through the same sandbox and trusted judge as student
submissions (:mod:`recsys_grader.judge`):

* the release with the solutions filled in must pass every autograded test, with no error
  output anywhere;
* the released notebook (``course/``), graded as if a student submitted it untouched, must score
  0 on every autograded test, must not look tampered, and its non-graded cells must run.

Example:
    >>> from recsys_grader.validate import validate
    >>> reports = validate(["00_orientation"])  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import nbformat

from recsys_grader import cellscores, executor, judge
from recsys_grader import notebooks as nbs
from recsys_grader.autograde import add_limit_arguments, default_workers, limits_from
from recsys_grader.layout import CourseError, CourseLayout
from recsys_grader.sandbox import Limits, sandbox_support

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


def solution_submission(source_nb: nbformat.NotebookNode, ref: nbs.Reference):
    """The release with every answer cell filled in from the solutions: what a perfect
    student would submit (it holds no hidden test)."""
    answers = {
        c.metadata.nbgrader["grade_id"]: c
        for c in source_nb.cells
        if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    }
    nb = copy.deepcopy(ref.released)
    for i, cell in enumerate(nb.cells):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            filled = copy.deepcopy(answers[grade_id])
            filled.source = _strip_markers(filled.source)
            nb.cells[i] = filled
    return nbs.normalise(nb)


def _strip_markers(source: str) -> str:
    keep = [
        line
        for line in source.split("\n")
        if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")
    ]
    return "\n".join(keep)


def _check_solution(report: ValidationReport, event: dict) -> None:
    if event.get("error"):
        report.problems.append(f"solution did not run: {event['error']}")
        return
    scores = cellscores.from_verdicts(event["verdicts"])
    report.solution_score = _auto_points(scores)
    for s in scores.values():
        if s.status not in (executor.OK, "manual"):
            report.problems.append(
                f"solution: {s.grade_id} scored {s.points}/{s.max_points} ({s.status}): "
                + event["verdicts"][s.grade_id].get("detail", "")[-600:]
            )
        elif s.status == executor.OK and s.points != s.max_points:
            report.problems.append(f"solution: {s.grade_id} scored {s.points}/{s.max_points}")
    if event.get("run_error"):
        report.problems.append(f"solution: {event['run_error']}")
    executed = nbformat.reads(json.dumps(event["executed"]), as_version=4)
    for index, cell in enumerate(executed.cells):
        status = executor.status_of(cell)
        if cell.cell_type == "code" and status not in (executor.OK, None):
            report.problems.append(f"solution: cell {index} ended with {status}")


def _check_release(report: ValidationReport, event: dict, reasons: list[str]) -> None:
    for reason in reasons:
        report.problems.append(
            f"release differs from solutions ({reason}): run `recsys-course release`"
        )
    if event.get("error"):
        report.problems.append(f"release did not run: {event['error']}")
        return
    scores = cellscores.from_verdicts(event["verdicts"])
    report.release_score = _auto_points(scores)
    for s in scores.values():
        if s.points:
            report.problems.append(
                f"untouched release earns {s.points} on {s.grade_id}: the test "
                "must fail until the student answers"
            )
    if event.get("run_error"):
        report.problems.append(f"release: {event['run_error']}")
    executed = nbformat.reads(json.dumps(event["executed"]), as_version=4)
    for problem in cellscores.errors_outside_graded_cells(executed):
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
    available, why = sandbox_support()
    if not available:
        log(f"warning: no sandbox ({why}); validating the course's own notebooks without one")
    reports = {}
    for assignment in selected:
        report = reports[assignment] = ValidationReport(assignment)
        try:
            source = nbs.read_notebook(layout.source_notebook(assignment))
            ref = nbs.reference(source)
        except CourseError as exc:
            report.problems.append(str(exc))
            continue
        report.max_score = sum(c.points for c in ref.cells if c.grade and not c.solution)
        solution = solution_submission(source, ref)
        jobs = [judge.JudgeJob("solution", solution, cellscores.student_code(solution, ref))]
        reasons: list[str] = []
        released_path = layout.release_notebook(assignment)
        if released_path.is_file():
            released = nbs.read_notebook(released_path)
            prepared, reasons = cellscores.prepare(released, ref)
            jobs.append(judge.JudgeJob("release", prepared, cellscores.student_code(released, ref)))
        else:
            report.problems.append(f"{released_path} missing: run `recsys-course release`")
        events = judge.run_judge(
            layout.source_notebook(assignment),
            jobs,
            limits,
            workers or default_workers(),
            insecure=not available,
            # the instructor validates before the class submits: the judge's namespace kept
            # here makes the first grading of the assignment load it instead of building it
            cache=layout.judge_cache,
        )
        for event in events:
            for warning in event.get("warnings", []):
                if available:
                    log(f"warning: {warning}")
            seconds = round(float(event.get("seconds", 0.0)), 1)
            if event["key"] == "solution":
                _check_solution(report, event)
                report.seconds = (seconds, report.seconds[1])
            else:
                _check_release(report, event, reasons)
                report.seconds = (report.seconds[0], seconds)
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
