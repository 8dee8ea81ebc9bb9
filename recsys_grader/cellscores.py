"""Prepare a submission for grading and score an executed notebook (shared by the verbs).

``prepare`` does what nbgrader's sanitising step does, and also reports tampering instead of
silently repairing it: a read-only cell whose content changed, or a graded cell that was deleted,
is restored from the *release* (so the student's visible tests still run in the sandbox; hidden
tests never go there) and listed as a reason, which makes the submission's status ``tampered``.
``student_code`` picks the cells the student wrote, for the judge's static checks, and
``from_verdicts`` turns the trusted judge's verdicts (:mod:`recsys_grader.judge`) into scores.

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


def _released_cells(ref: nbs.Reference) -> dict[str, NotebookNode]:
    """The cells students received (hidden tests removed): what the sandbox runs."""
    return {
        c.metadata.nbgrader["grade_id"]: c
        for c in ref.released.cells
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
    released = _released_cells(ref)
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
            cells.append(copy.deepcopy(released[grade_id]))  # restored as released
            continue
        cell = _convert(cell, r.cell_type)
        cell.metadata["nbgrader"] = copy.deepcopy(released[grade_id].metadata.nbgrader)
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
        cells.insert(index, copy.deepcopy(released[grade_id]))
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


def from_verdicts(verdicts: dict[str, dict]) -> dict[str, CellScore]:
    """The judge's verdicts (as sent by the judge process) as cell scores.

    Args:
        verdicts: {grade_id: Verdict fields} from :mod:`recsys_grader.judge`.

    Returns:
        {grade_id: CellScore}; a passed test has status ``ok``.
    """
    scores = {}
    for grade_id, v in verdicts.items():
        status = executor.OK if v["status"] == "passed" else v["status"]
        points = None if v["points"] is None else float(v["points"])
        scores[grade_id] = CellScore(grade_id, points, float(v["max_points"]), status)
    return scores


def student_code(submission: NotebookNode, ref: nbs.Reference) -> list[tuple[str, str]]:
    """The code cells a student wrote or changed, labelled for messages, in notebook order.

    Answer cells always count; read-only cells never do (they are restored); any other code
    cell counts unless its source is exactly one of the release's own cells.

    Args:
        submission: the student's notebook as submitted.
        ref: the reference.

    Returns:
        ``(label, source)`` pairs for :func:`recsys_grader.codecheck.code_problems`.
    """
    released = {c.source.strip() for c in ref.released.cells if c.cell_type == "code"}
    refs = ref.by_id
    found = []
    for index, cell in enumerate(submission.cells):
        if cell.get("cell_type") != "code":
            continue
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        r = refs.get(grade_id) if grade_id else None
        if r is not None and r.locked:
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if (r is None or not r.solution) and source.strip() in released:
            continue
        label = f"cell {index}" + (f" ({grade_id})" if grade_id else "")
        found.append((label, source))
    return found


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
