"""Harness of the red-team suite: a temporary course root with real modules, hostile submissions
built from the student release, and one ``autograde`` batch per module, graded once per session
through the real pipeline (judge process, bubblewrap sandboxes, gradebook, results store).

The hostile students live in :mod:`tests.security.payloads`; each test module asserts what one
attack class must (not) achieve. Victims (an untouched release, a correct submission) are graded
in the same batches, after the attackers, so that an attack on a classmate would show.
"""

from __future__ import annotations

import csv
import runpy
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import nbformat

from recsys_grader import notebooks as nbs
from recsys_grader import results as res
from recsys_grader.autograde import autograde
from recsys_grader.layout import RUNTIME_STATE
from recsys_grader.sandbox import Limits
from recsys_kit.paths import REPO_ROOT

#: Runtime state of a course root that a copy must not carry over.
STATE = RUNTIME_STATE
#: Short limits (2 shared cores): small disk and process budgets keep the bombs cheap.

LIMITS = Limits(cell_timeout=25, notebook_timeout=240, memory_mb=2048, disk_mb=64, processes=128)


#: grading/make_samples.py's helpers (how the samples are built from the release).
make_samples = SimpleNamespace(**runpy.run_path(str(REPO_ROOT / "grading" / "make_samples.py")))


def course_copy(base: Path, assignments: list[str]) -> Path:
    """A copy of the course root with only ``assignments`` (solutions and release).

    Returns:
        The copy's course root (``base/grading``).
    """
    shutil.copytree(REPO_ROOT / "grading", base / "grading", ignore=shutil.ignore_patterns(*STATE))
    for a in assignments:
        shutil.copytree(REPO_ROOT / "solutions" / a, base / "solutions" / a)
        shutil.copytree(REPO_ROOT / "course" / a, base / "course" / a)
    return base / "grading"


def submission(assignment: str, answers: dict[str, str], edit=None) -> str:
    """The released notebook with some answer cells replaced (a student's file, as text)."""
    source = nbs.read_notebook(REPO_ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    return make_samples.fill_answers(nbs.reference(source).released, answers, edit)


def submit(root: Path, student: str, assignment: str, text: str | Callable[[Path], None]) -> Path:
    """Write ``submitted/<student>/<assignment>/<assignment>.ipynb`` (or let ``text``, a
    function, lay out that folder itself); returns the folder."""
    folder = root / "submitted" / student / assignment
    if callable(text):
        text(folder)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{assignment}.ipynb").write_text(text, encoding="utf-8")
    return folder


@dataclass
class Batch:
    """One graded batch: the course root and each student's result."""

    root: Path
    assignment: str
    results: dict[str, res.Result]

    def notebook(self, student: str) -> nbformat.NotebookNode:
        """The autograded notebook the formgrader shows."""
        path = self.root / "autograded" / student / self.assignment / f"{self.assignment}.ipynb"
        return nbformat.read(path, as_version=4)

    def printed(self, student: str) -> str:
        """Everything the student's cells printed (stream outputs), as stored."""
        texts = []
        for cell in self.notebook(student).cells:
            for out in cell.get("outputs", []):
                texts.append(str(out.get("text", "")))
        return "".join(texts)

    def points(self, student: str, grade_id: str) -> float | None:
        return self.results[student].cells[grade_id]["points"]

    def csv_rows(self) -> dict[str, dict[str, str]]:
        with open(self.root / "reports" / "grades.csv", newline="", encoding="utf-8") as fh:
            return {
                r["student"]: r for r in csv.DictReader(fh) if r["assignment"] == self.assignment
            }


def grade(
    root: Path, assignment: str, students: dict, limits: Limits = LIMITS, cluster: str | None = None
) -> Batch:
    """Submit ``{student: notebook text or folder builder}`` and autograde them in one batch
    (2 sandboxes at a time; on a Dask cluster when ``cluster`` is given, e.g. ``"local:1"``)."""
    for student, text in students.items():
        submit(root, student, assignment, text)

    results = autograde(
        [assignment],
        list(students),
        limits=limits,
        workers=2,
        root=str(root),
        log=lambda _: None,
        cluster=cluster,
    )
    return Batch(root, assignment, {r.student: r for r in results})
