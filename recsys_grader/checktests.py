"""``recsys-course check-tests``: measure how many wrong answers each exercise's tests reject.

A hidden test suite is only as good as the bugs it catches. For every autograded exercise (the
answer cell ``NN_x`` and its test cells ``NN_x_*``) this verb grades, with the exercise's own
tests and the real judge's machinery:

* **mutants** of the reference solution (:mod:`recsys_grader.mutants`): each must be
  *rejected*, i.e. score less than the exercise's full points;
* the instructor's **wrong answers**, ``solutions/NN_name/wrong_answers/``: plausible student
  mistakes, each a file that starts with ``# exercise: NN_x`` and ``# why: ...`` (what is
  wrong): a ``.py`` file is a whole answer cell, a ``.patch`` file edits the reference solution
  (``@@`` hunks of ``-`` old, ``+`` new and `` `` context lines, each matching the solution exactly
  once), for mistakes that differ from it in a line or two; each must be rejected;
* **correct alternatives**, ``solutions/NN_name/alternatives/`` (same formats; ``# why:`` says
  how it differs): each must get full marks.

A mutant that is truly equivalent to the solution (no input the exercise allows tells them
apart) may be listed in ``solutions/NN_name/equivalent_mutants.txt``, one ``ID  justification``
per line; it is then left out of the share. None of these files is released (``grading/
nbgrader_config.py`` ignores them) or exported to students.

How a candidate is graded: the judge builds the assignment's reference namespace once
(:meth:`recsys_grader.judge.Judge.build`); for each candidate, the answer cell's source runs in a
copy of that namespace (the student's kernel, as it would be after running the notebook with
this answer), and the exercise's test cells run through a :class:`~recsys_grader.judge.Session`
whose :class:`~recsys_grader.judge.Student` talks to a :class:`LocalSandbox`: the request and
the answer go through the same JSON and :mod:`recsys_grader.wire` codec, and the same
:func:`recsys_grader.agent.handle`, as in a real sandbox, so arguments are copies, mutations are
replayed, gradients are rebuilt, and the static delegation checks read the candidate's source.
After the candidates, the module's exercises are checked for independence
(:mod:`recsys_grader.independence`: the release with only one exercise solved must score exactly
that exercise's points, for every exercise).

A mutant or a wrong answer is graded until its first failing test cell (that is enough to know
it is rejected); the reference solution and the alternatives go through every cell.
Candidates are instructor code: no sandbox is needed. Each test cell has a time budget (a
``SIGALRM`` timer in the main thread, raised as the kernel's interrupt would be): a mutant that
loops forever is stopped and counts as rejected, as mutation-testing tools count timeouts.

Example:
    >>> from recsys_grader.checktests import check
    >>> reports = check(["06_evaluation"])  # doctest: +SKIP
    >>> reports[0].rejected_share == 1.0  # doctest: +SKIP
    True
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import math
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import nbformat
from nbgrader import utils as nbu

from recsys_grader import agent, cellscores, judge, mutants
from recsys_grader import notebooks as nbs
from recsys_grader.layout import CourseError, CourseLayout
from recsys_grader.sandbox import Limits

WRONG_DIR = "wrong_answers"
ALTERNATIVES_DIR = "alternatives"
EQUIVALENT_FILE = "equivalent_mutants.txt"
#: Mutants graded per exercise by default (chosen deterministically, round-robin by operator).
MAX_MUTANTS = 80
#: Share of mutants and wrong answers a module's tests must reject: all of them (issue 11 asks for
#: 95%; a survivor is either a hole in the tests or an equivalent mutant to list with its reason).
MIN_REJECTED = 1.0
#: A test cell's budget: this many times what the reference needed, plus the floor below,
#: never more than a real grading's cell limit.
BUDGET_FACTOR, BUDGET_FLOOR = 10.0, 5.0

MUTANT, WRONG, ALTERNATIVE, REFERENCE = "mutant", "wrong answer", "alternative", "reference"


# --- what is checked -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Exercise:
    """An autograded exercise of a notebook.

    Attributes:
        grade_id: the answer cell's id (``06_prf``).
        source: the answer cell's source (the reference solution, with its markers).
        tests: the ids of its test cells (``06_prf_tests``, ``06_prf_hidden``...), in order.
        points: what its test cells are worth together.
    """

    grade_id: str
    source: str
    tests: tuple[str, ...]
    points: float


def exercises(source_nb) -> list[Exercise]:
    """The exercises of a solution notebook: answer cells with the test cells named after them.

    A test cell belongs to the answer whose id is the longest prefix of its own followed by
    ``_`` (``06_evaluate_minishop`` belongs to ``06_evaluate``). Answers without tests (and
    tests without answers, e.g. a pipeline check over two exercises) are left out.
    """
    answers = [
        c
        for c in source_nb.cells
        if c.cell_type == "code" and nbu.is_solution(c) and "grade_id" in c.metadata.nbgrader
    ]
    ids = [c.metadata.nbgrader["grade_id"] for c in answers]
    tests: dict[str, list[tuple[str, float]]] = {i: [] for i in ids}
    for cell in source_nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if cell.cell_type != "code" or not grade_id or not nbu.is_grade(cell):
            continue
        if nbu.is_solution(cell):
            continue
        owners = [i for i in ids if grade_id.startswith(i + "_")]
        if owners:
            tests[max(owners, key=len)].append((grade_id, float(meta.get("points", 0) or 0)))
    return [
        Exercise(gid, cell.source, tuple(t for t, _ in tests[gid]), sum(p for _, p in tests[gid]))
        for gid, cell in zip(ids, answers)
        if tests[gid]
    ]


@dataclass(frozen=True)
class Candidate:
    """An answer cell to grade in place of the solution.

    Attributes:
        kind: mutant, wrong answer, alternative or reference.
        ident: the mutant id or the file name.
        exercise: the answer cell's grade id.
        source: the answer cell's replacement.
        note: what changed (mutants) or why it is wrong / how it differs (files).
    """

    kind: str
    ident: str
    exercise: str
    source: str
    note: str


def read_candidate(path: Path, kind: str) -> Candidate:
    """A wrong answer or alternative file: ``# exercise: NN_x`` and ``# why: ...`` first.

    Raises:
        CourseError: naming the file and what its header lacks.
    """
    text = path.read_text(encoding="utf-8")
    header: dict[str, list[str]] = {}
    current = None
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        body = stripped.lstrip("#").strip()
        key, sep, value = body.partition(":")
        if sep and key.strip().lower() in ("exercise", "why"):
            current = key.strip().lower()
            header[current] = [value.strip()]
        elif current == "why" and body:
            header[current].append(body)
    exercise = " ".join(header.get("exercise", [])).strip()
    why = " ".join(header.get("why", [])).strip()
    if not exercise or not why:
        raise CourseError(
            f"{path}: start the file with '# exercise: NN_name' (the answer cell's grade id) "
            "and '# why: ...' (what is wrong, or how this correct answer differs)"
        )
    return Candidate(kind, path.name, exercise, text, why)


def apply_patch(source: str, patch: str, where: str) -> str:
    r"""The answer cell ``source`` with the ``@@`` hunks of ``patch`` applied.

    Args:
        source: the reference answer cell.
        patch: the patch file's text (its ``#`` header lines are skipped).
        where: the file, for messages.

    Raises:
        CourseError: for a malformed patch, or lines to replace that the solution does not hold
            exactly once.

    Example:
        >>> apply_patch("a = 1\nb = 2\n", "# why: x\n@@\n-b = 2\n+b = 3\n", "p")
        'a = 1\nb = 3\n'
    """
    hunks: list[list[str]] = []
    for line in patch.split("\n"):
        if line.startswith("@@"):
            hunks.append([])
        elif hunks:
            hunks[-1].append(line)
        elif line.strip() and not line.startswith("#"):
            raise CourseError(f"{where}: a patch has its '#' header, then '@@' hunks")
    if not hunks:
        raise CourseError(f"{where}: no '@@' hunk (a '.py' file holds a whole answer cell instead)")
    for number, hunk in enumerate(hunks, start=1):
        while hunk and not hunk[-1].strip():
            hunk.pop()
        odd = [line for line in hunk if line and line[0] not in "-+ "]
        if odd:
            raise CourseError(
                f"{where}, hunk {number}: lines start with '-', '+' or ' ': {odd[0]!r}"
            )
        old = "\n".join(line[1:] for line in hunk if line[:1] in ("-", " ", ""))
        new = "\n".join(line[1:] for line in hunk if line[:1] in ("+", " ", ""))
        count = source.count(old)
        if count != 1:
            raise CourseError(
                f"{where}, hunk {number}: the '-' and ' ' lines occur {count} times in the "
                "solution (they must match it exactly once: update the patch to the solution)"
            )
        source = source.replace(old, new)
    return source


def read_equivalent(path: Path) -> dict[str, str]:
    """``equivalent_mutants.txt``: ``{mutant id: justification}``.

    Raises:
        CourseError: for a line without a justification.
    """
    if not path.is_file():
        return {}
    found = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        ident, _, why = text.partition(" ")
        if not why.strip():
            raise CourseError(
                f"{path}, line {number}: write 'MUTANT_ID  why it is equivalent' (one line)"
            )
        found[ident] = why.strip()
    return found


# --- grading a candidate in-process --------------------------------------------------------------


class _Timeout(KeyboardInterrupt):
    """A test cell's budget ran out (an interrupt, as the kernel's own timeout raises)."""


class _Alarm:
    """A ``SIGALRM`` timer that raises :class:`_Timeout` until disarmed (main thread only)."""

    def __init__(self) -> None:
        self.armed = False

    def _fire(self, signum: int, frame: object) -> None:
        if self.armed:
            raise _Timeout()

    @contextlib.contextmanager
    def budget(self, seconds: float) -> Iterator[None]:
        previous = signal.signal(signal.SIGALRM, self._fire)
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, max(0.05, seconds), 0.25)  # repeats if swallowed
        try:
            yield
        finally:
            self.disarm()
            signal.signal(signal.SIGALRM, previous)

    def disarm(self) -> None:
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)


class LocalSandbox:
    """Stands in for :class:`recsys_grader.sandbox.Sandbox` for instructor code: answers the
    judge's requests with :func:`recsys_grader.agent.handle` against a namespace here, through
    the same JSON encoding, so the test sees exactly what a sandbox would send back.

    Args:
        namespace: the candidate's kernel namespace.
        alarm: the timer whose interrupt ends a call that ran out of time.
    """

    def __init__(self, namespace: dict, alarm: _Alarm) -> None:
        self.namespace, self.alarm = namespace, alarm

    def request(self, message: dict, timeout: float) -> dict:
        """One call or get, as :meth:`Sandbox.request` answers it."""
        request = json.loads(json.dumps(message, allow_nan=True))
        sink = io.StringIO()
        try:
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stdout(sink),
                contextlib.redirect_stderr(sink),
            ):
                warnings.simplefilter("ignore")  # the kernel's warnings never reach the judge
                answer = agent.handle(request, self.namespace)
            answer = json.loads(json.dumps(answer, allow_nan=True))
        except _Timeout:
            self.alarm.disarm()
            return {"status": "timeout"}
        except Exception:  # noqa: BLE001 (the agent's cell failed: no answer, as in a kernel)
            return {"status": "no_answer"}
        return {"status": "ok", "answer": answer}


@dataclass
class Trial:
    """How one candidate fared.

    Attributes:
        kind, ident, note: the candidate.
        points: what it earned on the exercise's test cells.
        max_points: what they are worth.
        statuses: ``{test cell: passed/failed/timeout/unavailable}``.
        feedback: the first failing cell's student feedback (names the hidden case).
        seconds: time taken.
        cell_seconds: time taken by each test cell.
    """

    kind: str
    ident: str
    note: str
    points: float
    max_points: float
    statuses: dict[str, str]
    feedback: str = ""
    seconds: float = 0.0
    cell_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def full_marks(self) -> bool:
        """True when every test cell passed."""
        return self.points >= self.max_points - 1e-9


class AssignmentChecker:
    """Grades candidates of one assignment's exercises against its reference namespace.

    Args:
        source_path: the solution notebook.
        budget_floor: the least seconds a test cell gets (see :data:`BUDGET_FLOOR`).
    """

    def __init__(self, source_path: Path, budget_floor: float = BUDGET_FLOOR) -> None:
        from recsys_grader.validate import solution_submission

        self.source = nbs.read_notebook(source_path)
        self.ref = nbs.reference(self.source)
        self.judge = judge.Judge(self.source)
        self.solution = solution_submission(self.source, self.ref)
        self.code = cellscores.student_code(self.solution, self.ref)
        self.cells = {
            c.metadata.nbgrader["grade_id"]: c
            for c in self.source.cells
            if "grade_id" in c.get("metadata", {}).get("nbgrader", {})
        }
        self._read: dict[str, set[str]] = {}
        self.budget_floor = budget_floor
        self.alarm = _Alarm()
        self.budgets: dict[str, int] = {}
        self.bound = {
            c.metadata.nbgrader["grade_id"]: judge.answer_names(nbformat.v4.new_notebook(cells=[c]))
            for c in self.source.cells
            if c.cell_type == "code" and nbu.is_solution(c) and "grade_id" in c.metadata.nbgrader
        }

    def build(self) -> None:
        """Run the solution notebook without its tests (the reference namespace)."""
        with contextlib.redirect_stdout(io.StringIO()):
            self.judge.build(rehearse=True)

    def read_by(self, exercise: Exercise) -> set[str]:
        """The names the exercise's test cells read: only these get a private copy per
        candidate (a copy of the whole reference namespace for each of hundreds of candidates
        would cost more than grading them)."""
        if exercise.grade_id not in self._read:
            from IPython.core.inputtransformer2 import TransformerManager

            names: set[str] = set()
            for test_id in exercise.tests:
                code = TransformerManager().transform_cell(self.cells[test_id].source)
                names |= {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}
            self._read[exercise.grade_id] = names
        return self._read[exercise.grade_id]

    def _code_cells(self, exercise: Exercise, source: str) -> list[tuple[str, str]]:
        """What the static checks read: the solution's answer cells, this one replaced."""
        suffix = f"({exercise.grade_id})"
        return [(label, source if label.endswith(suffix) else code) for label, code in self.code]

    def grade(self, exercise: Exercise, candidate: Candidate, until_failure: bool = False) -> Trial:
        """Grade one candidate on the exercise's test cells.

        Args:
            exercise: the exercise.
            candidate: the answer cell to grade.
            until_failure: stop at the first failing cell (enough to know that a mutant or a
                wrong answer is rejected; its points are then a lower bound).
        """
        start = time.monotonic()
        cell_seconds: dict[str, float] = {}
        namespace = dict(self.judge.namespace)
        functions, variables = self.bound.get(exercise.grade_id, ([], []))
        for name in functions + variables:  # the kernel holds what the candidate's cell defines
            namespace.pop(name, None)
        statuses: dict[str, str] = {}
        feedback = ""
        points = 0.0
        try:
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
                self.alarm.budget(self.budget_floor),
            ):
                warnings.simplefilter("ignore")
                code = compile(candidate.source, f"<{candidate.kind} {candidate.ident}>", "exec")
                exec(code, namespace)  # noqa: S102 (instructor code: mutants, own wrong answers)
        except _Timeout:
            statuses = dict.fromkeys(exercise.tests, judge.TIMEOUT)
        except Exception as exc:  # noqa: BLE001 (what the cell defined before it failed stays)
            feedback = f"the answer cell raised {type(exc).__name__}"
        if not statuses:
            student = judge.Student(
                LocalSandbox(namespace, self.alarm),
                Limits(),
                self._code_cells(exercise, candidate.source),
                {},
            )
            session = judge.Session(self.judge, student, None, private=self.read_by(exercise))
            for test_id in exercise.tests:
                budget = self.budgets.get(test_id, Limits().cell_timeout)
                student.limits = Limits(cell_timeout=budget)
                began = time.monotonic()
                try:
                    with self.alarm.budget(budget + 1):
                        session.test(test_id)
                    verdict = session.verdicts[test_id]
                except _Timeout:
                    verdict = judge.Verdict(test_id, 0.0, 0.0, judge.TIMEOUT, "time budget")
                cell_seconds[test_id] = time.monotonic() - began
                statuses[test_id] = verdict.status
                points += verdict.points or 0.0
                if verdict.status != judge.PASSED:
                    feedback = feedback or verdict.feedback
                    if until_failure:
                        break
        return Trial(
            candidate.kind,
            candidate.ident,
            candidate.note,
            points,
            exercise.points,
            statuses,
            feedback.split("\n")[0][:300],
            time.monotonic() - start,
            cell_seconds,
        )

    def calibrate(self, exercise: Exercise) -> Trial:
        """Grade the reference solution; its time per test cell (a cold run: an upper bound)
        sets the cells' budgets."""
        reference = Candidate(REFERENCE, "solution", exercise.grade_id, exercise.source, "")
        for test_id in exercise.tests:
            self.budgets[test_id] = Limits().cell_timeout
        trial = self.grade(exercise, reference)
        for test_id, seconds in trial.cell_seconds.items():
            budget = BUDGET_FACTOR * seconds + self.budget_floor
            self.budgets[test_id] = int(min(Limits().cell_timeout, math.ceil(budget)))
        return trial


# --- reports -------------------------------------------------------------------------------------


@dataclass
class ExerciseReport:
    """What the candidates of one exercise got.

    Attributes:
        exercise: the answer cell's grade id.
        points: what its test cells are worth.
        mutants: graded mutants (equivalent ones excluded).
        wrong: graded wrong answers.
        alternatives: graded correct alternatives.
        equivalent: ``{mutant id: justification}`` of the mutants left out.
        problems: what makes the check itself fail (the reference does not pass, ...).
    """

    exercise: str
    points: float
    mutants: list[Trial] = field(default_factory=list)
    wrong: list[Trial] = field(default_factory=list)
    alternatives: list[Trial] = field(default_factory=list)
    equivalent: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """Mutants and wrong answers that scored less than full marks."""
        return sum(not t.full_marks for t in self.mutants + self.wrong)

    @property
    def total(self) -> int:
        """Mutants and wrong answers graded."""
        return len(self.mutants) + len(self.wrong)

    @property
    def survivors(self) -> list[Trial]:
        """Mutants and wrong answers that got full marks."""
        return [t for t in self.mutants + self.wrong if t.full_marks]

    @property
    def refused(self) -> list[Trial]:
        """Correct alternatives that lost points."""
        return [t for t in self.alternatives if not t.full_marks]


@dataclass
class ModuleReport:
    """What check-tests found for one assignment.

    Attributes:
        assignment: the assignment.
        exercises: one report per exercise.
        problems: missing or malformed files, stale equivalent ids, harness failures.
        seconds: (building the reference namespace, grading the candidates).
    """

    assignment: str
    exercises: list[ExerciseReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: tuple[float, float] = (0.0, 0.0)

    @property
    def rejected(self) -> int:
        """Mutants and wrong answers rejected, over every exercise."""
        return sum(e.rejected for e in self.exercises)

    @property
    def total(self) -> int:
        """Mutants and wrong answers graded, over every exercise."""
        return sum(e.total for e in self.exercises)

    @property
    def rejected_share(self) -> float:
        """Share of mutants and wrong answers rejected (1.0 when there is none)."""
        return self.rejected / self.total if self.total else 1.0

    @property
    def alternatives_accepted(self) -> bool:
        """Every correct alternative got full marks."""
        return not any(e.refused for e in self.exercises)

    def all_problems(self) -> list[str]:
        """The module's problems and its exercises'."""
        return self.problems + [p for e in self.exercises for p in e.problems]

    def ok(self, min_rejected: float = MIN_REJECTED) -> bool:
        """The module meets the thresholds and nothing went wrong."""
        return (
            self.rejected_share >= min_rejected
            and self.alternatives_accepted
            and not self.all_problems()
        )


def _load_files(
    folder: Path, solutions: dict[str, str], report: ModuleReport
) -> dict[str, list[Candidate]]:
    """The wrong answers and alternatives of a module, by exercise (patches applied)."""
    by_exercise: dict[str, list[Candidate]] = {}
    for kind, sub in ((WRONG, WRONG_DIR), (ALTERNATIVE, ALTERNATIVES_DIR)):
        paths = sorted(p for p in (folder / sub).glob("*") if p.suffix in (".py", ".patch"))
        for path in paths:
            try:
                candidate = read_candidate(path, kind)
                if candidate.exercise not in solutions:
                    raise CourseError(
                        f"{path}: '# exercise: {candidate.exercise}' is not an autograded exercise "
                        f"of this notebook (one of: {', '.join(sorted(solutions))})"
                    )
                if path.suffix == ".patch":
                    source = apply_patch(solutions[candidate.exercise], candidate.source, str(path))
                    candidate = replace(candidate, source=source)
            except CourseError as exc:
                report.problems.append(str(exc))
                continue
            by_exercise.setdefault(candidate.exercise, []).append(candidate)
    return by_exercise


def check_assignment(
    source_path: Path,
    max_mutants: int | None = MAX_MUTANTS,
    only: list[str] | None = None,
    log: Callable[[str], None] | None = None,
    budget_floor: float = BUDGET_FLOOR,
) -> ModuleReport:
    """Grade every candidate of one assignment's exercises (in this process, whose main thread
    must be free for the ``SIGALRM`` timer).

    Args:
        source_path: ``solutions/NN_name/NN_name.ipynb``.
        max_mutants: mutants per exercise (None: all of them).
        only: exercise ids to check (default: all).
        log: progress lines (per exercise).
        budget_floor: the least seconds a test cell gets.

    Returns:
        The module's report.
    """
    folder = source_path.parent
    report = ModuleReport(source_path.stem)
    checker = AssignmentChecker(source_path, budget_floor)
    all_exercises = exercises(checker.source)
    try:
        equivalent = read_equivalent(folder / EQUIVALENT_FILE)
    except CourseError as exc:
        report.problems.append(str(exc))
        equivalent = {}
    files = _load_files(folder, {e.grade_id: e.source for e in all_exercises}, report)
    start = time.monotonic()
    try:
        checker.build()
    except Exception as exc:  # noqa: BLE001 (reported: the check cannot run at all)
        report.problems.append(f"the reference notebook could not be built: {exc}"[:800])
        return report
    built = time.monotonic()
    for name, cell in sorted(checker.judge.stale):
        report.problems.append(
            f"`{name}` changes after cell {cell} of the solution notebook in a way the grader's "
            "reading of the cells does not see (another name for the same object, or a "
            "function that changes it): tests that read it while the reference builds are "
            "graded twice. Change it through its own name, or copy it first"
        )
    generated: set[str] = set()
    for exercise in all_exercises:
        if only and exercise.grade_id not in only:
            continue
        er = ExerciseReport(exercise.grade_id, exercise.points)
        report.exercises.append(er)
        reference = checker.calibrate(exercise)
        if not reference.full_marks:
            er.problems.append(
                f"{exercise.grade_id}: the reference solution itself scores "
                f"{reference.points:g}/{exercise.points:g} here ({reference.feedback})"
            )
            continue
        found = mutants.mutants(exercise.source, exercise.grade_id, None)
        generated |= {m.ident for m in found}
        kept = [m for m in found if m.ident not in equivalent]
        er.equivalent = {m.ident: equivalent[m.ident] for m in found if m.ident in equivalent}
        for m in mutants.select(kept, max_mutants):
            candidate = Candidate(MUTANT, m.ident, exercise.grade_id, m.source, m.note)
            er.mutants.append(checker.grade(exercise, candidate, until_failure=True))
        for m in found:  # a listed mutant the tests reject is not equivalent: the list is wrong
            if m.ident in er.equivalent:
                listed = Candidate(MUTANT, m.ident, exercise.grade_id, m.source, m.note)
                trial = checker.grade(exercise, listed, until_failure=True)
                if not trial.full_marks:
                    er.problems.append(
                        f"{exercise.grade_id}: {m.ident} is listed in {EQUIVALENT_FILE} but the "
                        f"tests reject it ({trial.feedback[:120]}): remove the line"
                    )
        for candidate in files.get(exercise.grade_id, []):
            trial = checker.grade(exercise, candidate, until_failure=candidate.kind == WRONG)
            (er.alternatives if candidate.kind == ALTERNATIVE else er.wrong).append(trial)
        again = checker.grade(
            exercise, Candidate(REFERENCE, "solution", exercise.grade_id, exercise.source, "")
        )
        if not again.full_marks:
            er.problems.append(
                f"{exercise.grade_id}: the reference solution fails after the candidates ran: "
                "one of them changed a shared object of the reference namespace"
            )
        if log:
            log(_exercise_line(er))
    if not only:  # every exercise graded on its own (issue 14): the release with one solved
        from recsys_grader.independence import independence_problems

        report.problems += independence_problems(checker)
    stale = sorted(set(equivalent) - generated) if not only else []
    for ident in stale:
        report.problems.append(
            f"{folder / EQUIVALENT_FILE}: {ident} is no longer a mutant of any exercise "
            "(the solution changed): remove the line"
        )
    report.seconds = (built - start, time.monotonic() - built)
    return report


def _worker(args: tuple) -> dict:
    path, max_mutants, only, budget_floor = args
    return asdict(check_assignment(Path(path), max_mutants, only, None, budget_floor))


def _from_dict(data: dict) -> ModuleReport:
    exercises_ = []
    for e in data["exercises"]:
        lists = {k: [Trial(**t) for t in e[k]] for k in ("mutants", "wrong", "alternatives")}
        exercises_.append(
            ExerciseReport(
                e["exercise"],
                e["points"],
                **lists,
                equivalent=e["equivalent"],
                problems=e["problems"],
            )
        )
    return ModuleReport(data["assignment"], exercises_, data["problems"], tuple(data["seconds"]))


def check_notebooks(
    paths: list[Path],
    max_mutants: int | None = MAX_MUTANTS,
    jobs: int | None = None,
    only: list[str] | None = None,
    log: Callable[[str], None] | None = None,
    budget_floor: float = BUDGET_FLOOR,
) -> list[ModuleReport]:
    """Check solution notebooks, each in a fresh process (a notebook's reference namespace
    never sees another's, and each process's main thread runs the timer).

    Args:
        paths: the solution notebooks.
        max_mutants: mutants per exercise (None: all).
        jobs: notebooks checked at once (default: the CPUs, at most 4).
        only: exercise ids to check (default: all).
        log: called with each module's report (text) as soon as it is ready.
        budget_floor: the least seconds a test cell gets.

    Returns:
        One report per notebook, in the order given.
    """
    if not paths:
        return []
    jobs = max(1, min(jobs or min(4, os.cpu_count() or 1), len(paths)))
    context = multiprocessing.get_context("spawn")
    reports: list[ModuleReport] = []
    with ProcessPoolExecutor(jobs, mp_context=context, max_tasks_per_child=1) as pool:
        futures = [pool.submit(_worker, (str(p), max_mutants, only, budget_floor)) for p in paths]
        for path, future in zip(paths, futures):
            try:
                report = _from_dict(future.result())
            except Exception as exc:  # noqa: BLE001 (one broken module never hides the others)
                report = ModuleReport(Path(path).stem, problems=[f"check-tests crashed: {exc!r}"])
            reports.append(report)
            if log:
                log(format_report(report))
    return reports


def check(
    assignments: list[str] | None = None,
    max_mutants: int | None = MAX_MUTANTS,
    jobs: int | None = None,
    only: list[str] | None = None,
    root: str | None = None,
    log: Callable[[str], None] | None = None,
) -> list[ModuleReport]:
    """Check the tests of the course's assignments (see :func:`check_notebooks`).

    Args:
        assignments: names, or None for all.
        max_mutants: mutants per exercise (None: all).
        jobs: assignments checked at once.
        only: exercise ids to check (default: all).
        root: course root.
        log: called with each module's report as soon as it is ready.

    Returns:
        One report per assignment, in course order.
    """
    layout = CourseLayout.load(root)
    selected = layout.select(assignments)
    paths = [layout.source_notebook(a) for a in selected]
    return check_notebooks(paths, max_mutants, jobs, only, log)


# --- output --------------------------------------------------------------------------------------


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole else "    -"


def _exercise_line(e: ExerciseReport) -> str:
    m_rej = sum(not t.full_marks for t in e.mutants)
    w_rej = sum(not t.full_marks for t in e.wrong)
    alt_ok = sum(t.full_marks for t in e.alternatives)
    return (
        f"  {e.exercise:<28} {m_rej:>3}/{len(e.mutants):<3} {w_rej:>3}/{len(e.wrong):<3} "
        f"{_pct(e.rejected, e.total):>7}   {alt_ok}/{len(e.alternatives)}"
        + (f"   ({len(e.equivalent)} equivalent)" if e.equivalent else "")
    )


def format_report(r: ModuleReport, min_rejected: float = MIN_REJECTED) -> str:
    """A module's table, its survivors and its problems, as text."""
    lines = [
        f"{r.assignment}: {'ok' if r.ok(min_rejected) else 'FAILED'}  "
        f"{r.rejected}/{r.total} rejected ({_pct(r.rejected, r.total).strip()}), alternatives "
        f"{'all accepted' if r.alternatives_accepted else 'REFUSED'}  "
        f"(built in {r.seconds[0]:.0f} s, checked in {r.seconds[1]:.0f} s)",
        f"  {'exercise':<28} {'mutants':>7} {'wrong':>7} {'rejected':>8}   alternatives",
    ]
    lines += [_exercise_line(e) for e in r.exercises]
    for e in r.exercises:
        for t in e.survivors:
            lines.append(f"  survivor  {e.exercise} {t.kind} {t.ident}: {t.note}"[:160])
        for t in e.refused:
            lines.append(f"  REFUSED   {e.exercise} alternative {t.ident}: {t.feedback}"[:200])
    lines += [f"  problem: {p}" for p in r.all_problems()]
    return "\n".join(lines)


def run(args) -> int:
    """CLI entry: one table per assignment; exit 1 when a module misses the thresholds."""
    reports = check(
        args.assignments,
        max_mutants=None if args.max_mutants == 0 else args.max_mutants,
        jobs=args.jobs,
        only=args.exercise or None,
        root=args.root,
        log=lambda text: print(text, flush=True),
    )
    failed = [r.assignment for r in reports if not r.ok(args.min_rejected)]
    if failed:
        print(
            f"check-tests: {', '.join(failed)} below {args.min_rejected:.0%} rejected, with a "
            "refused alternative, or with a problem: strengthen the hidden tests (or list a truly "
            f"equivalent mutant in {EQUIVALENT_FILE})",
            file=sys.stderr,
        )
        return 1
    return 0
