"""``recsys-course export-grades FILE``: one row per student, one column per assignment, for an
LMS gradebook import (Canvas, Moodle, Blackboard all read such a CSV).

Columns: ``student_id``, ``first_name``, ``last_name``, ``email`` (from the roster), then
``<assignment> (<max> pts)`` for each assignment, ``total``, ``max_total`` and ``notes``.
A cell holds points only when the grade is final (``graded``); anything else is left empty,
never written as a zero, and named in ``notes``: written answers still to grade
(``needs_manual``), a notebook that did not run (``failed_to_run``), tests that were tampered
with (``tampered``: review it in the formgrader). ``missing`` is empty too unless
``--missing-as-zero`` (after the deadline, no submission is a zero). The command prints how many
cells are not final, so an export made too early is noticed.

Example:
    >>> from recsys_grader.gradesheet import export_grades
    >>> sheet = export_grades("grades_for_lms.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from recsys_grader import notebooks as nbs
from recsys_grader import report as rep
from recsys_grader import results as res
from recsys_grader.layout import CourseError, CourseLayout
from recsys_grader.roster import read_roster


@dataclass
class GradeSheet:
    """What was exported."""

    path: Path
    students: int = 0
    assignments: list[str] = field(default_factory=list)
    not_final: Counter = field(default_factory=Counter)


def _column(assignment: str, max_points: float) -> str:
    return f"{assignment} ({max_points:g} pts)"


def export_grades(
    dest: str | Path,
    assignments: list[str] | None = None,
    missing_as_zero: bool = False,
    root: str | None = None,
) -> GradeSheet:
    """Write the LMS grade sheet.

    Args:
        dest: the CSV file to write.
        assignments: assignments to include (default: every assignment with results).
        missing_as_zero: write 0 for a roster student who submitted nothing.
        root: course root.

    Returns:
        What was written, with the count of non-final cells by status.

    Raises:
        CourseError: nothing graded yet, or an unknown assignment.
    """
    layout = CourseLayout.load(root)
    rows = rep.collect(layout)
    graded = sorted({r.assignment for r in rows})
    selected = layout.select(assignments) if assignments else graded
    if not selected:
        raise CourseError("nothing to export: no assignment has been graded yet")
    by_key = {(r.student, r.assignment): r for r in rows}
    roster = read_roster(layout)
    students = [s.student_id for s in roster]
    students += sorted({r.student for r in rows} - set(students))
    names = {s.student_id: s for s in roster}
    maxima = {a: next((r.max_score for r in rows if r.assignment == a), 0.0) for a in selected}
    sheet = GradeSheet(Path(dest).resolve(), len(students), selected)
    header = ["student_id", "first_name", "last_name", "email"]
    header += [_column(a, maxima[a]) for a in selected] + ["total", "max_total", "notes"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for student in students:
        person = names.get(student)
        line = [student] + (
            [person.first_name, person.last_name, person.email] if person else ["", "", ""]
        )
        total, notes = 0.0, []
        for assignment in selected:
            row = by_key.get((student, assignment))
            status = row.status if row is not None else res.MISSING
            if status == res.GRADED and row.score is not None:
                line.append(f"{row.score:g}")
                total += row.score
            elif status == res.MISSING and missing_as_zero:
                line.append("0")
            else:
                line.append("")
                sheet.not_final[status] += 1
                notes.append(f"{assignment}: {status}")
        line += [f"{total:g}", f"{sum(maxima.values()):g}", "; ".join(notes)]
        if person is None:
            line[-1] = "; ".join(["not on the roster", *notes])
        writer.writerow(line)
    nbs.write_text_if_changed(sheet.path, buffer.getvalue())
    return sheet


def run(args) -> int:
    """CLI entry (``recsys-course export-grades FILE``)."""
    sheet = export_grades(args.file, args.assignments, args.missing_as_zero, args.root)
    print(
        f"{sheet.path}: {sheet.students} students x {len(sheet.assignments)} assignments "
        f"({', '.join(sheet.assignments)})"
    )
    if sheet.not_final:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(sheet.not_final.items()))
        print(
            f"warning: {sum(sheet.not_final.values())} cells left empty, not final ({counts}); "
            "see the notes column. Grade written answers in the formgrader, review tampered "
            "ones, then export again"
        )
    return 0
