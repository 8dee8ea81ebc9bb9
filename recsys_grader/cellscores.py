"""Prepare a submission for grading and score an executed notebook (shared by the verbs).

``prepare`` does what nbgrader's sanitising step does, and also reports tampering instead of
silently repairing it: a read-only cell whose content changed, or a graded cell that was deleted,
is restored from the reference (so every test still runs) and listed as a reason, which makes the
submission's status ``tampered``. ``score`` gives a test cell its points only when the executor
marked it ``ok``: a cell that timed out, was never reached after a kernel death (nbgrader#427),
or raised, scores 0.

Example:
    >>> from recsys_grader import notebooks as nbs
    >>> ref = nbs.reference(nbs.read_notebook(path_to_solution))  # doctest: +SKIP
    >>> to_run, reasons = prepare(nbs.read_notebook(path_to_submission), ref)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import nbformat
from nbformat import NotebookNode
from nbgrader import utils as nbu

from recsys_grader import executor
from recsys_grader import notebooks as nbs


@dataclass(frozen=True)
class CellScore:
    """The autograder's verdict on one graded cell.

    Attributes:
        grade_id: the cell.
        points: score, or None when a person must grade it (written answers).
        max_points: what the cell is worth.
        status: executor status (ok, error, timeout, died, not_run) or "manual"/"no_response".
    """

    grade_id: str
    points: float | None
    max_points: float
    status: str


def _graded_cells(ref: nbs.Reference) -> dict[str, NotebookNode]:
    return {
        c.metadata.nbgrader["grade_id"]: c
        for c in ref.graded.cells
        if "nbgrader" in c.metadata and "grade_id" in c.metadata.nbgrader
    }


def _convert(cell: NotebookNode, cell_type: str) -> NotebookNode:
    if cell.cell_type == cell_type:
        return cell
    if cell_type == "code":
        new = nbformat.v4.new_code_cell(cell.source)
    else:
        new = nbformat.v4.new_markdown_cell(cell.source)
    new.metadata = cell.metadata
    return new


def prepare(submission: NotebookNode, ref: nbs.Reference) -> tuple[NotebookNode, list[str]]:
    """Sanitise a submission against the reference.

    Args:
        submission: the student's notebook.
        ref: the reference built from the solutions.

    Returns:
        (notebook to execute, tampering reasons; empty when the submission is clean).
    """
    reasons: list[str] = []
    graded = _graded_cells(ref)
    refs = ref.by_id
    seen: dict[str, int] = {}
    cells: list[NotebookNode] = []
    for cell in copy.deepcopy(submission.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if grade_id is None:
            cells.append(cell)
            continue
        if grade_id not in refs or grade_id in seen:
            # a copied cell or stale metadata: keep it as a plain cell (nbgrader's DeduplicateIds)
            cell.metadata.pop("nbgrader", None)
            cells.append(cell)
            continue
        seen[grade_id] = len(cells)
        r = refs[grade_id]
        if r.locked:
            if meta and nbu.compute_checksum(cell) != r.release_checksum:
                reasons.append(f"changed read-only cell {grade_id}")
            cells.append(copy.deepcopy(graded[grade_id]))  # the graded version (hidden tests)
            continue
        cell = _convert(cell, r.cell_type)
        cell.metadata["nbgrader"] = copy.deepcopy(graded[grade_id].metadata.nbgrader)
        cells.append(cell)
    # re-insert deleted nbgrader cells after their predecessor, so nothing goes ungraded
    order = [c.grade_id for c in ref.cells]
    for position, grade_id in enumerate(order):
        if grade_id in seen:
            continue
        r = refs[grade_id]
        if r.locked or r.grade or r.solution:
            kind = "test" if r.grade and not r.solution else "read-only" if r.locked else "answer"
            reasons.append(f"deleted {kind} cell {grade_id}")
        before = [seen[g] for g in order[:position] if g in seen]
        index = max(before) + 1 if before else 0
        cells.insert(index, copy.deepcopy(graded[grade_id]))
        seen = {g: (i + 1 if i >= index else i) for g, i in seen.items()}
        seen[grade_id] = index
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": dict(nbs.KERNELSPEC), "language_info": {"name": "python"}}
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop(executor.STATUS_KEY, None)
        cell.pop("id", None)
    return nbs.normalise(nb), reasons


def score(executed: NotebookNode, ref: nbs.Reference) -> dict[str, CellScore]:
    """Score every graded cell of an executed notebook.

    Args:
        executed: the notebook returned by the executor.
        ref: the reference.

    Returns:
        {grade_id: CellScore} for every graded cell of the reference (absent cells score 0).
    """
    found = {
        c.metadata.nbgrader["grade_id"]: c
        for c in executed.cells
        if "nbgrader" in c.get("metadata", {}) and "grade_id" in c.metadata.nbgrader
    }
    scores: dict[str, CellScore] = {}
    for r in ref.cells:
        if not r.grade:
            continue
        cell = found.get(r.grade_id)
        if cell is None:
            scores[r.grade_id] = CellScore(r.grade_id, 0.0, r.points, "absent")
            continue
        if cell.cell_type == "code" and not r.solution:
            status = executor.status_of(cell) or executor.NOT_RUN
            if status != executor.OK:
                scores[r.grade_id] = CellScore(r.grade_id, 0.0, r.points, status)
                continue
        auto, _ = nbu.determine_grade(cell)
        if r.solution and auto is None:
            status = "manual"
        elif r.solution:
            status = "no_response"
        else:
            status = executor.OK
        points = None if auto is None else float(auto)
        scores[r.grade_id] = CellScore(r.grade_id, points, r.points, status)
    return scores


def errors_outside_graded_cells(executed: NotebookNode) -> list[str]:
    """Descriptions of cells that are neither answers nor tests and still failed."""
    problems = []
    for index, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        if nbu.is_grade(cell) or nbu.is_solution(cell):
            continue
        status = executor.status_of(cell)
        if status not in (executor.OK, None):
            enames = [o.get("ename") for o in cell.outputs if o.get("output_type") == "error"]
            problems.append(f"cell {index} ({status}: {', '.join(map(str, enames))})")
    return problems
