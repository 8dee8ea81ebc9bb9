"""``recsys-course feedback``: per-student HTML feedback that never shows hidden tests.

nbgrader 0.9.6's ``generate_feedback`` renders the autograded notebook, whose test cells hold
the hidden tests (the judge stores the graded source there for instructors) next to the judge's
verdict and an instructor-only traceback. The :class:`HideHiddenTests` preprocessor removes the
hidden regions and every instructor-only output, keeping the judge's student-safe verdict (which
names a failing hidden case, never its code, inputs or expected values); :class:`SafeNotebook`
cleans whatever the student's notebook shows (no script runs in the page). Every HTML file is then
checked for each distinctive line of every hidden block in ``solutions/``; a file that still
contains one is deleted and the command exits 1.

Example:
    >>> from recsys_grader.feedback import feedback
    >>> written = feedback()  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat import NotebookNode
from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, GetGrades
from nbgrader.utils import capture_log

from recsys_grader import notebooks as nbs
from recsys_grader import pending
from recsys_grader import results as res
from recsys_grader.judge import INSTRUCTOR_ONLY
from recsys_grader.layout import CourseError, CourseLayout
from recsys_grader.safe_html import SafeNotebook

_WITH_FEEDBACK = (res.GRADED, res.NEEDS_MANUAL, res.TAMPERED)


class HideHiddenTests(ClearHiddenTests):
    """Remove hidden test regions and instructor-only outputs; keep the judge's verdict."""

    # configurable like GetGrades' (the HTML exporter sets it for every preprocessor)
    display_data_priority = GetGrades.display_data_priority.tag(config=True)

    def preprocess_cell(self, cell: NotebookNode, resources: dict, cell_index: int):
        """Strip one cell."""
        if cell.cell_type != "code":
            return cell, resources
        cell.outputs = [
            o for o in cell.get("outputs", []) if not o.get("metadata", {}).get(INSTRUCTOR_ONLY)
        ]
        if self.begin_test_delimeter not in cell.source:
            return cell, resources
        self._remove_hidden_test_region(cell)
        for output in cell.outputs:  # a hidden test's traceback would quote its code
            if output.get("output_type") == "error":
                output["traceback"] = []
        return cell, resources


@dataclass
class FeedbackOutcome:
    """One feedback file, or why there is none."""

    student: str
    assignment: str
    path: Path | None
    problem: str = ""


def _config(layout: CourseLayout):
    config = layout.nbgrader_config()
    config.GenerateFeedback.preprocessors = [
        GetGrades,
        pending.MarkPending,  # ungraded written answers: "awaiting grading", not 0
        HideHiddenTests,
        CSSHTMLHeaderPreprocessor,
    ]
    config.GenerateFeedback.exporter_class = pending.FeedbackExporter
    config.HTMLExporter.template_name = "feedback"
    config.HTMLExporter.preprocessors = [SafeNotebook]  # nothing the student wrote runs
    return config


def check_html(html_file: Path, secrets: list[str]) -> list[str]:
    """Hidden-test lines found in the visible text of an HTML file."""
    return nbs.leaked_lines(nbs.html_text(html_file.read_text(encoding="utf-8")), secrets)


def feedback(
    assignments: list[str] | None = None,
    students: list[str] | None = None,
    root: str | None = None,
) -> list[FeedbackOutcome]:
    """Generate feedback for every graded submission (stale feedback of others is removed).

    Args:
        assignments: names, or None for all.
        students: ids, or None for all.
        root: course root.

    Returns:
        One outcome per submission in the results store.
    """
    layout = CourseLayout.load(root)
    selected = layout.select(assignments)
    secrets = {}
    for a in selected:
        released = layout.release_notebook(a)
        public = "\n".join(c.source for c in nbs.read_notebook(released).cells)
        blocks = nbs.hidden_test_blocks(nbs.read_notebook(layout.source_notebook(a)))
        secrets[a] = nbs.secret_lines(blocks, public=public)
    try:
        stored = res.load(layout.results_file)
    except ValueError as exc:
        raise CourseError(str(exc)) from None
    if not stored:
        raise CourseError(f"no grading results in {layout.results_file}: run autograde first")
    config = _config(layout)
    outcomes = []
    for (student, assignment), result in sorted(stored.items()):
        if assignment not in selected or (students and student not in students):
            continue
        out_dir = layout.feedback / student / assignment
        if out_dir.exists():
            shutil.rmtree(out_dir)
        notebook = layout.autograded / student / assignment / f"{assignment}.ipynb"
        if result.status not in _WITH_FEEDBACK or not notebook.is_file():
            why = result.detail or result.status
            outcomes.append(FeedbackOutcome(student, assignment, None, f"{result.status}: {why}"))
            continue
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id, coursedir.student_id = assignment, student
        app = GenerateFeedback(coursedir=coursedir, config=config)
        app.force = True
        log = capture_log(app)
        html_file = out_dir / f"{assignment}.html"
        if not log["success"] or not html_file.is_file():
            problem = (log.get("error") or log.get("log") or "no HTML written").strip()
            outcomes.append(FeedbackOutcome(student, assignment, None, problem[-800:]))
            continue
        leaks = check_html(html_file, secrets[assignment])
        if leaks:
            shutil.rmtree(out_dir)
            outcomes.append(
                FeedbackOutcome(student, assignment, None, f"LEAK: hidden test text {leaks[:2]}")
            )
            continue
        outcomes.append(FeedbackOutcome(student, assignment, html_file))
    return outcomes


def run(args) -> int:
    """CLI entry: exit 1 when a graded submission got no feedback or a leak was caught."""
    outcomes = feedback(args.assignments, args.student, args.root)
    layout = CourseLayout.load(args.root)
    for line in pending.warning_lines(layout, layout.select(args.assignments), args.student):
        print(f"warning: {line}")
    failed = False
    for o in outcomes:
        if o.path is not None:
            print(f"{o.student}/{o.assignment}: {o.path}")
        else:
            print(f"{o.student}/{o.assignment}: no feedback ({o.problem})")
            failed |= not o.problem.startswith((res.FAILED, res.MISSING))
    return 1 if failed else 0
