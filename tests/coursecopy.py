"""Helpers shared by the grading tests: a throw-away copy of the course, fake submissions.

The repository's own ``grading/`` state is never touched: tests grade a copy of ``grading/``
(config, samples, roster, templates) with Module 0's ``solutions/`` and ``course/`` folders.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import nbformat

from recsys_grader import notebooks as nbs
from recsys_grader.layout import RUNTIME_STATE
from recsys_kit.paths import REPO_ROOT

A = "00_orientation"
#: Runtime state of a course root (never copied).
STATE = RUNTIME_STATE


def _load_make_samples():
    spec = importlib.util.spec_from_file_location(
        "make_samples", REPO_ROOT / "grading" / "make_samples.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_samples = _load_make_samples()


def copy_course(base: Path, assignments: tuple[str, ...] = (A,)) -> Path:
    """A copy of the course with the given modules only; returns its course root."""
    shutil.copytree(REPO_ROOT / "grading", base / "grading", ignore=shutil.ignore_patterns(*STATE))
    for assignment in assignments:
        for folder in ("solutions", "course"):
            shutil.copytree(REPO_ROOT / folder / assignment, base / folder / assignment)
    return base / "grading"


def variant(answers: dict[str, str], edit=None) -> str:
    """The released Module 0 notebook with some answer cells replaced (a fake submission)."""
    released = nbs.reference(nbs.read_notebook(make_samples.SOURCE)).released
    return make_samples.fill_answers(released, answers, edit)


def right_answers() -> dict[str, str]:
    """Module 0's two exercises, answered from the solution notebook."""
    source = nbs.read_notebook(make_samples.SOURCE)
    by_id = {
        c.metadata["nbgrader"]["grade_id"]: c for c in source.cells if "nbgrader" in c.metadata
    }
    return {
        g: make_samples._solution(by_id[g].source) for g in (make_samples.EX1, make_samples.EX2)
    }


def sample_text(student: str) -> str:
    """The committed sample submission of ``student`` (perfect, partial, ...)."""
    return (REPO_ROOT / "grading" / "samples" / student / A / f"{A}.ipynb").read_text()


def submit(root: Path, student: str, text: str, assignment: str = A) -> None:
    """Write ``submitted/<student>/<assignment>/<assignment>.ipynb``."""
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{assignment}.ipynb").write_text(text, encoding="utf-8")


def grade_cell(source: str, grade_id: str, *, solution=False, grade=False, points=0) -> dict:
    """An nbgrader code cell (answer, test or locked), for hand-made tiny notebooks."""
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": not solution,
        "schema_version": 3,
        "solution": solution,
        "task": False,
        **({"points": points} if grade else {}),
    }
    return cell
