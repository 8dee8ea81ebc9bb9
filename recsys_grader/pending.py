"""Written answers nobody has graded yet: "awaiting grading", never a score of 0.

nbgrader gives a grade that no one has scored a score of 0.0, so its feedback page shows
``Written response (Score: 0.0 / 3.0)`` for an answer a teaching assistant has not read yet.
Here such a cell is *pending*:

* :class:`MarkPending` (a preprocessor, after nbgrader's ``GetGrades``) marks pending cells and
  counts their points;
* :class:`FeedbackExporter` renders nbgrader's feedback page through
  ``templates/recsys_feedback.html.j2``, which shows "awaiting grading" for them and the points
  still to come next to the total. ``grading/nbgrader_config.py`` makes it the exporter of
  ``GenerateFeedback``, so the formgrader's "Generate Feedback" button uses it too;
* :func:`pending_grades` and :func:`warning_lines` let ``recsys-course feedback`` warn when it
  runs before manual grading is done.

Example:
    >>> from recsys_grader.pending import warning_lines
    >>> warning_lines(layout, ["00_orientation"], None)  # doctest: +SKIP
    ['00_orientation: 1 submission(s) have written answers awaiting grading (perfect) ...']
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path

from nbconvert.exporters import HTMLExporter
from nbformat import NotebookNode
from nbgrader import utils as nbu
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor
from sqlalchemy.exc import SAWarning
from traitlets import default

from recsys_grader import results as res
from recsys_grader.layout import CourseLayout

#: Our templates (the feedback page's overrides).
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: What feedback and charts say instead of a score.
AWAITING = "awaiting grading"
#: Cell metadata flag set on pending cells (read by the template).
FLAG = "awaiting_grading"


def is_pending(grade) -> bool:
    """True for an nbgrader ``Grade`` that nobody (neither the autograder nor a person) scored."""
    return grade.auto_score is None and grade.manual_score is None


class MarkPending(NbGraderPreprocessor):
    """Mark the cells whose grade nobody has given yet, and count their points.

    Sets ``cell.metadata.nbgrader["awaiting_grading"]`` and
    ``resources["nbgrader"]["pending_points"]`` for the feedback template.
    """

    def preprocess(self, nb: NotebookNode, resources: dict):
        """Look up every grade cell of the submission in the gradebook."""
        info = resources["nbgrader"]
        pending: dict[str, float] = {}
        with warnings.catch_warnings(), Gradebook(info["db_url"]) as gb:
            warnings.simplefilter("ignore", SAWarning)
            try:
                notebook = gb.find_submission_notebook(
                    info["notebook"], info["assignment"], info["student"]
                )
            except MissingEntry:
                notebook = None
            for grade in notebook.grades if notebook is not None else []:
                if is_pending(grade):
                    pending[grade.name] = float(grade.max_score)
        for cell in nb.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id in pending and (nbu.is_grade(cell) or nbu.is_task(cell)):
                cell.metadata.nbgrader[FLAG] = True
        info["pending_points"] = sum(pending.values())
        return nb, resources


class FeedbackExporter(HTMLExporter):
    """nbgrader's feedback page, with pending written answers shown as awaiting grading."""

    @default("template_file")
    def _template_file_default(self) -> str:
        return "recsys_feedback.html.j2"

    @default("template_paths")
    def _template_paths_default(self) -> list[str]:
        # ours first: it extends nbgrader's feedback page (found as index.html.j2 further on)
        return [str(TEMPLATES), *self._template_paths()]


def pending_grades(
    layout: CourseLayout, assignments: list[str], students: list[str] | None
) -> dict[str, list[str]]:
    """{assignment: students with at least one grade nobody has given yet}.

    Args:
        layout: the course.
        assignments: assignments to look at.
        students: only these students (None: all).
    """
    try:
        stored = res.load(layout.results_file)
    except ValueError:
        stored = {}
    # a notebook that could not run has no feedback: its grades are not "awaiting" a TA
    with_feedback = (res.GRADED, res.NEEDS_MANUAL, res.TAMPERED)
    found: dict[str, set[str]] = defaultdict(set)
    with warnings.catch_warnings(), Gradebook(layout.db_url, layout.course_id) as gb:
        warnings.simplefilter("ignore", SAWarning)
        for assignment in assignments:
            try:
                submissions = gb.find_assignment(assignment).submissions
            except MissingEntry:
                continue
            for submission in submissions:
                student = submission.student.id
                if students and student not in students:
                    continue
                recorded = stored.get((student, assignment))
                if recorded is not None and recorded.status not in with_feedback:
                    continue
                for notebook in submission.notebooks:
                    if any(is_pending(g) for g in notebook.grades):
                        found[assignment].add(student)
    return {a: sorted(s) for a, s in found.items()}


def warning_lines(
    layout: CourseLayout, assignments: list[str], students: list[str] | None
) -> list[str]:
    """One line per assignment whose written answers are not all graded yet (empty: none)."""
    lines = []
    for assignment, who in pending_grades(layout, assignments, students).items():
        lines.append(
            f"{assignment}: {len(who)} submission(s) have written answers {AWAITING} "
            f"({res.name_list(who, 8)}); "
            "their feedback says so. Grade them in the formgrader (Manual Grading), then run "
            "`recsys-course feedback` again"
        )
    return lines
