"""Grading outcomes: statuses, one record per student x assignment, and their JSON store.

The store (``grading/reports/results.json``) is what ``report`` reads next to the gradebook: the
gradebook has the points, the store says whether those points are real (``graded``), await a
person (``needs_manual``), come from a notebook that could not run (``failed_to_run``), from a
notebook whose tests were edited or deleted (``tampered``), or whether nothing was submitted
(``missing``). Writes are atomic, so an interrupted run never leaves a half-written file.

Example:
    >>> r = Result("alice", "00_orientation", GRADED, score=11.0, max_score=13.0)
    >>> r.key
    ('alice', '00_orientation')
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

GRADED = "graded"
NEEDS_MANUAL = "needs_manual"
FAILED = "failed_to_run"
TAMPERED = "tampered"
MISSING = "missing"
STATUSES = (GRADED, NEEDS_MANUAL, FAILED, TAMPERED, MISSING)


@dataclass
class Result:
    """Outcome of grading one submission.

    Attributes:
        student: student id.
        assignment: assignment name.
        status: one of STATUSES.
        score: autograded points (None when the notebook did not run or is missing).
        max_score: points of the assignment.
        detail: why (error message, tampering reasons, timed-out cells).
        cells: {grade_id: {"points": float | None, "max": float, "status": str}}.
        seconds: execution time.
    """

    student: str
    assignment: str
    status: str
    score: float | None = None
    max_score: float = 0.0
    detail: str = ""
    cells: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; expected one of {STATUSES}")

    @property
    def key(self) -> tuple[str, str]:
        """(student, assignment)."""
        return self.student, self.assignment


def name_list(names: list[str], limit: int = 10) -> str:
    """``names`` joined by commas, at most ``limit`` of them, then how many more.

    Example:
        >>> name_list(["a", "b", "c"], limit=2)
        'a, b and 1 more'
    """
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")


def load(path: Path) -> dict[tuple[str, str], Result]:
    """Read the store (empty when absent).

    Raises:
        ValueError: when the file is corrupt, naming it (delete it and re-run autograde).
    """
    if not path.is_file():
        return {}
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["results"]
        results = [Result(**row) for row in rows]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path} is corrupt ({exc}); delete it and run `recsys-course autograde` again"
        ) from None
    return {r.key: r for r in results}


def save(path: Path, results: dict[tuple[str, str], Result]) -> None:
    """Write the store atomically, sorted by student then assignment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [asdict(results[k]) for k in sorted(results)]
    text = json.dumps({"results": rows}, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; graders in a shared group need to read it
    os.replace(tmp, path)


def update(path: Path, new: list[Result]) -> dict[tuple[str, str], Result]:
    """Replace the records of ``new`` in the store (others are kept) and save it.

    Returns:
        The whole store after the update.
    """
    results = load(path)
    for r in new:
        results[r.key] = r
    save(path, results)
    return results
