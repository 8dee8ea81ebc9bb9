"""Round-trip of every graded module: the solution scores full marks and the untouched student
release scores zero, with no error outside the test cells (``recsys-course validate``).

Module 0's round-trip, with its exact points, lives in ``test_grading.py``; this file covers the
others, each in a temporary copy of the course root so the real gradebook is never touched.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from recsys_grader.layout import RUNTIME_STATE
from recsys_grader.sandbox import Limits
from recsys_grader.validate import validate
from recsys_kit.paths import REPO_ROOT

STATE = RUNTIME_STATE
MODULES = sorted(
    p.name
    for p in (REPO_ROOT / "solutions").iterdir()
    if re.fullmatch(r"\d\d_[a-z0-9_]+", p.name) and p.name != "00_orientation"
)


def _copy_course(base: Path, assignment: str) -> Path:
    shutil.copytree(REPO_ROOT / "grading", base / "grading", ignore=shutil.ignore_patterns(*STATE))
    for folder in ("solutions", "course"):
        shutil.copytree(REPO_ROOT / folder / assignment, base / folder / assignment)
    return base / "grading"


def test_every_module_is_listed():
    assert "01_semantic_encoding" in MODULES


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("assignment", MODULES)
def test_solution_full_marks_release_zero(assignment, tmp_path):
    root = _copy_course(tmp_path, assignment)
    # The grader's limits: 60 s per cell, 10 minutes per notebook (a loaded CI machine).
    limits = Limits(cell_timeout=60, notebook_timeout=600)
    (report,) = validate([assignment], limits=limits, workers=2, root=str(root), log=print)
    assert report.ok, report.problems
    assert report.solution_score == report.max_score > 0
    assert report.release_score == 0
