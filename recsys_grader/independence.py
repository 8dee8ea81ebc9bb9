"""Every exercise graded on its own: the release with only exercise k solved scores k's points.

A test that feeds exercise k the student's answer to exercise j (instead of the kit's result or a
fixed table) takes points away from a student who solved k but not j, and gives nothing back
when j is fixed: the grade no longer says which skills the student has. This check proves the
opposite for a whole notebook, one exercise at a time, with the real judge's machinery:

for every answer cell ``k`` that has test cells, the judge's reference namespace gets every
answer cell's *released* version (the stub a student starts from) except ``k``'s, which keeps
the solution; then **every** test cell of the notebook runs through a
:class:`~recsys_grader.judge.Session`, exactly as autograding runs it (functions the answer
cells define are called through the wire codec, variables fetched). ``k``'s own test cells must
pass, every other test cell must earn nothing.

A test cell belongs to the answer cell whose id is the longest prefix of its own followed by
``_`` (``06_evaluate_minishop`` belongs to ``06_evaluate``), otherwise to the nearest answer
cell above it (concept checks: ``02_concept_c1_hidden`` after ``02_concepts``); test cells above
every answer cell belong to no exercise and are not checked here.

Example:
    >>> from recsys_grader.checktests import AssignmentChecker  # doctest: +SKIP
    >>> checker = AssignmentChecker(path); checker.build()  # doctest: +SKIP
    >>> independence_problems(checker)  # doctest: +SKIP
    []
"""

from __future__ import annotations

import contextlib
import io
import warnings

from nbformat import NotebookNode
from nbgrader import utils as nbu

from recsys_grader import judge
from recsys_grader.checktests import AssignmentChecker, LocalSandbox, _Timeout
from recsys_grader.sandbox import Limits

__all__ = ["owners", "independence_problems"]


def _grade_id(cell: NotebookNode) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def owners(source_nb: NotebookNode) -> dict[str, str | None]:
    """The answer cell each autograded test cell belongs to (see the module docstring).

    Args:
        source_nb: the solution notebook.

    Returns:
        ``{test grade id: answer grade id or None}`` in notebook order.
    """
    answers = [
        _grade_id(c)
        for c in source_nb.cells
        if c.cell_type == "code" and nbu.is_solution(c) and _grade_id(c)
    ]
    owner: dict[str, str | None] = {}
    above: str | None = None
    for cell in source_nb.cells:
        grade_id = _grade_id(cell)
        if cell.cell_type != "code" or not grade_id:
            continue
        if nbu.is_solution(cell):
            above = grade_id
        elif nbu.is_grade(cell):
            prefixed = [a for a in answers if grade_id.startswith(a + "_")]
            owner[grade_id] = max(prefixed, key=len) if prefixed else above
    return owner


def _run_answers(checker: AssignmentChecker, solved: str, namespace: dict) -> None:
    """Run every answer cell in notebook order: ``solved``'s solution, the others' stubs."""
    released = {
        _grade_id(c): c.source
        for c in checker.ref.released.cells
        if c.cell_type == "code" and nbu.is_solution(c) and _grade_id(c)
    }
    answers = [
        (_grade_id(c), c.source)
        for c in checker.source.cells
        if c.cell_type == "code" and nbu.is_solution(c) and _grade_id(c)
    ]
    for grade_id, _ in answers:  # the kernel holds only what the submission's cells define
        functions, variables = checker.bound.get(grade_id, ([], []))
        for name in functions + variables:
            namespace.pop(name, None)
    shell = checker.judge._shell
    for grade_id, solution in answers:
        source = solution if grade_id == solved else released.get(grade_id, "")
        code = shell.transform_cell(source) if shell is not None else source
        try:
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
                checker.alarm.budget(Limits().cell_timeout),
            ):
                warnings.simplefilter("ignore")
                exec(compile(code, f"<answer {grade_id}>", "exec"), namespace)  # noqa: S102
        except (_Timeout, Exception):  # noqa: BLE001 (a stub raises: what it bound before stays)
            continue


def independence_problems(checker: AssignmentChecker) -> list[str]:
    """Grade the release once per exercise with only that exercise solved.

    Args:
        checker: an assignment checker whose reference namespace is built.

    Returns:
        One line per test cell that depends on another exercise's answer, or that earns points
        for an exercise left unsolved; empty when every exercise is graded on its own.
    """
    owner = owners(checker.source)
    solved_ids = list(dict.fromkeys(o for o in owner.values() if o))
    problems: list[str] = []
    for solved in solved_ids:
        namespace = dict(checker.judge.namespace)
        _run_answers(checker, solved, namespace)
        student = judge.Student(LocalSandbox(namespace, checker.alarm), Limits(), checker.code, {})
        session = judge.Session(checker.judge, student, None)
        for test_id, test_owner in owner.items():
            if test_owner is None:
                continue
            try:
                with checker.alarm.budget(Limits().cell_timeout + 1):
                    session.test(test_id)
                verdict = session.verdicts[test_id]
            except _Timeout:
                verdict = judge.Verdict(test_id, 0.0, 0.0, judge.TIMEOUT, "time budget")
            feedback = (verdict.feedback or "").split("\n")[0][:160]
            if test_owner == solved and verdict.status != judge.PASSED:
                problems.append(
                    f"{test_id} fails when only {solved} is solved ({feedback}): it depends on "
                    "another exercise's answer; test it on reference inputs (the kit's result "
                    "or a fixed table)"
                )
            elif test_owner != solved and (verdict.points or 0) > 0:
                problems.append(
                    f"{test_id} earns {verdict.points:g} point(s) when only {solved} is solved: "
                    f"it does not test {test_owner}'s own answer"
                )
    return problems
