"""``recsys-course autograde``: grade every submission under ``grading/submitted/``.

Each submission ``submitted/<student>/<assignment>/<assignment>.ipynb`` is

1. read and sanitised in the main process (:func:`recsys_grader.cellscores.prepare`): read-only
   cells are restored from the release (no hidden test ever goes to the sandbox), tampering is
   recorded, and the cells the student wrote are kept for the static checks;
2. graded by one trusted judge process per assignment (:mod:`recsys_grader.judge`): each
   notebook executes in its own bubblewrap sandbox (``--workers`` at once; no network, an
   unprivileged uid, private ``/tmp``, memory, process, disk and time limits), then every test
   runs in the judge against plain data the sandbox returns: no verdict is decided in the
   student's kernel;
3. recorded in the main process, one at a time, because parallel writes to one sqlite gradebook
   are unsafe (nbgrader#174): points go to the gradebook, the judged notebook to
   ``autograded/``, the status to ``reports/results.json``.

A submission that cannot be read gets ``failed_to_run``: its old automatic scores, autograded
notebook and feedback are removed (a failed re-grade never keeps stale points), while manual
scores given by a grader are kept. A notebook that crashes, hangs or kills its own kernel is
graded (its tests fail): the student's code can never turn a grade into ``failed_to_run``. One
bad submission never stops the batch. Without bubblewrap, grading refuses unless ``--insecure``.

Example:
    >>> from recsys_grader.autograde import autograde
    >>> results = autograde(workers=2)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.utils import compute_checksum, parse_utc
from sqlalchemy.exc import SAWarning

from recsys_grader import cellscores, executor, judge
from recsys_grader import notebooks as nbs
from recsys_grader import results as res
from recsys_grader.layout import CourseError, CourseLayout
from recsys_grader.sandbox import Limits, SandboxUnavailable, sandbox_support

_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def default_workers() -> int:
    """min(2, number of CPUs)."""
    return max(1, min(2, os.cpu_count() or 1))


@dataclass(frozen=True)
class Submission:
    """One student's folder for one assignment."""

    student: str
    assignment: str
    folder: Path

    @property
    def notebook(self) -> Path:
        """The notebook the student must submit: ``<assignment>.ipynb``."""
        return self.folder / f"{self.assignment}.ipynb"


def load_roster(layout: CourseLayout) -> list[str]:
    """Student ids of ``roster.csv`` (column ``student_id``); empty when there is no roster.

    Raises:
        CourseError: when the file has no ``student_id`` column or a bad id.
    """
    if not layout.roster.is_file():
        return []
    with open(layout.roster, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if "student_id" not in (reader.fieldnames or []):
            raise CourseError(f"{layout.roster} needs a header row with a student_id column")
        ids = [row["student_id"].strip() for row in reader if row.get("student_id", "").strip()]
    bad = [i for i in ids if not _STUDENT_ID.match(i)]
    if bad:
        raise CourseError(f"{layout.roster}: invalid student id(s) {bad} (letters, digits, _.-)")
    return ids


def find_submissions(
    layout: CourseLayout, assignments: list[str], students: list[str] | None
) -> list[Submission]:
    """Submission folders for the given assignments (and students, when given)."""
    found = []
    if not layout.submitted.is_dir():
        return found
    for student_dir in sorted(layout.submitted.iterdir()):
        if not student_dir.is_dir() or (students and student_dir.name not in students):
            continue
        if not _STUDENT_ID.match(student_dir.name):
            print(f"warning: skipping {student_dir}: not a valid student id (letters, digits, _.-)")
            continue
        for assignment in assignments:
            folder = student_dir / assignment
            if folder.is_dir():
                found.append(Submission(student_dir.name, assignment, folder))
    return found


def checked_reference(layout: CourseLayout, assignment: str) -> nbs.Reference:
    """The reference of an assignment, after checking that ``course/`` and the gradebook hold
    the same release (grading against tests the students never saw is refused).

    Raises:
        CourseError: naming what is out of date and the command that fixes it.
    """
    ref = nbs.reference(nbs.read_notebook(layout.source_notebook(assignment)))
    fix = "run `recsys-course release` (then re-grade)"
    released_path = layout.release_notebook(assignment)
    if not released_path.is_file():
        raise CourseError(f"{released_path} does not exist: {fix}")
    released = {
        c.metadata.nbgrader["grade_id"]: c
        for c in nbs.read_notebook(released_path).cells
        if "grade_id" in c.get("metadata", {}).get("nbgrader", {})
    }
    stale = [
        r.grade_id
        for r in ref.cells
        if r.grade_id not in released
        or compute_checksum(released[r.grade_id]) != r.release_checksum
    ]
    if stale or set(released) - set(ref.by_id):
        raise CourseError(f"{released_path} is out of date with solutions/ ({stale[:3]}): {fix}")
    graded = {
        c.metadata.nbgrader["grade_id"]: c for c in ref.graded.cells if "nbgrader" in c.metadata
    }
    with Gradebook(layout.db_url, layout.course_id) as gb:
        try:
            notebook = gb.find_notebook(assignment, assignment)
        except MissingEntry:
            raise CourseError(
                f"{assignment} is not in the gradebook {layout.db_url}: {fix}"
            ) from None
        in_db = {c.name: c.checksum for c in notebook.source_cells}
        points = {c.name: float(c.max_score) for c in notebook.grade_cells}
    wanted = {g: c.metadata.nbgrader.get("checksum") for g, c in graded.items()}
    if in_db != wanted or points != {r.grade_id: r.points for r in ref.cells if r.grade}:
        raise CourseError(f"the gradebook's copy of {assignment} is out of date: {fix}")
    return ref


@dataclass
class _Job:
    submission: Submission
    ref: nbs.Reference
    prepared: nbformat.NotebookNode | None
    reasons: list[str]
    failure: str | None
    code: list[tuple[str, str]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.submission.student}/{self.submission.assignment}"


def _prepare(sub: Submission, ref: nbs.Reference) -> _Job:
    if not sub.notebook.is_file():
        others = sorted(p.name for p in sub.folder.glob("*.ipynb"))
        hint = f" (found {', '.join(others)}; keep the notebook's name)" if others else ""
        return _Job(sub, ref, None, [], f"no {sub.notebook.name} in the submission{hint}")
    try:
        notebook = nbs.read_notebook(sub.notebook)
        prepared, reasons = cellscores.prepare(notebook, ref)
        code = cellscores.student_code(notebook, ref)
    except CourseError as exc:
        return _Job(sub, ref, None, [], str(exc))
    except Exception as exc:  # malformed cells: a failed run, never a crash of the batch
        return _Job(sub, ref, None, [], f"unusable notebook ({type(exc).__name__}: {exc})"[:500])
    return _Job(sub, ref, prepared, reasons, None, code)


def _timestamp(folder: Path):
    stamp = folder / "timestamp.txt"
    if stamp.is_file():
        try:
            return parse_utc(stamp.read_text().strip())
        except Exception:  # a bad timestamp must not block grading
            return None
    return None


def record(
    layout: CourseLayout,
    sub: Submission,
    ref: nbs.Reference,
    executed: nbformat.NotebookNode | None,
    cell_scores: dict[str, cellscores.CellScore],
    result: res.Result,
) -> None:
    """Write one outcome to the gradebook and ``autograded/`` (call from one thread only).

    A failed run sets every automatic score to None and flags the notebook for a person;
    manual scores are kept.
    """
    out_dir = layout.autograded / sub.student / sub.assignment
    feedback_dir = layout.feedback / sub.student / sub.assignment
    for stale in (out_dir, feedback_dir):
        if stale.exists():
            shutil.rmtree(stale)
    with warnings.catch_warnings(), Gradebook(layout.db_url, layout.course_id) as gb:
        # nbgrader 0.9.6's relationships trigger SQLAlchemy 2 autoflush warnings; harmless here
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(sub.student)
        timestamp = _timestamp(sub.folder)
        if timestamp is not None:
            gb.update_or_create_submission(sub.assignment, sub.student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(sub.assignment, sub.student)
        nb_sub = gb.find_submission_notebook(sub.assignment, sub.assignment, sub.student)
        failed = executed is None
        for grade in nb_sub.grades:
            verdict = cell_scores.get(grade.name)
            grade.auto_score = None if failed or verdict is None else verdict.points
            grade.needs_manual_grade = (
                failed or grade.auto_score is None or grade.manual_score is not None
            )
        for comment in nb_sub.comments:
            verdict = cell_scores.get(comment.name)
            no_answer = verdict is not None and verdict.status == "no_response"
            comment.auto_comment = "No response." if no_answer else None
        nb_sub.flagged = result.status in (res.FAILED, res.TAMPERED)
        gb.db.commit()
    if executed is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(executed, out_dir / f"{sub.assignment}.ipynb")


def _summarise(
    sub: Submission,
    cell_scores: dict[str, cellscores.CellScore],
    reasons: list[str],
    seconds: float,
    max_score: float,
    run_error: str | None = None,
) -> res.Result:
    auto = [s for s in cell_scores.values() if s.points is not None]
    pending = [s for s in cell_scores.values() if s.points is None]
    bad = [
        f"{s.grade_id}: {s.status}"
        for s in cell_scores.values()
        if s.status not in (executor.OK, "manual", "no_response")
    ]
    if reasons:
        status = res.TAMPERED
    elif pending:
        status = res.NEEDS_MANUAL
    else:
        status = res.GRADED
    detail = "; ".join(
        reasons
        + [run_error] * bool(run_error)
        + bad
        + [f"{len(pending)} written answer(s) to grade"] * bool(pending)
    )
    return res.Result(
        sub.student,
        sub.assignment,
        status,
        score=float(sum(s.points for s in auto)),
        max_score=max_score,
        detail=detail,
        cells={
            s.grade_id: {"points": s.points, "max": s.max_points, "status": s.status}
            for s in cell_scores.values()
        },
        seconds=round(seconds, 2),
    )


def autograde(
    assignments: list[str] | None = None,
    students: list[str] | None = None,
    limits: Limits | None = None,
    workers: int | None = None,
    root: str | None = None,
    log: Callable[[str], None] = print,
    insecure: bool = False,
    cluster: object = None,
) -> list[res.Result]:
    """Grade submissions (all by default) and record the outcomes.

    Args:
        assignments: assignment names, or None for all.
        students: student ids, or None for every submission (and the roster's ``missing``).
        limits: sandbox limits (default: 60 s per cell, 600 s per notebook, 4 GiB).
        workers: parallel executions (default min(2, CPUs)).
        root: course root (default ``grading/``).
        log: where progress lines go.
        insecure: grade without a sandbox where bubblewrap is missing (trusted notebooks only).
        cluster: grade on a Dask cluster: ``"local:N"``, a scheduler address or a
            ``distributed.Client`` (:mod:`recsys_grader.cluster`); ``workers`` is then the
            sandboxes at once on each worker.

    Returns:
        One result per graded submission, plus ``missing`` for roster students.

    Raises:
        CourseError: when the release or gradebook is out of date, or arguments are wrong.
    """
    layout = CourseLayout.load(root)
    selected = layout.select(assignments)
    limits = limits or Limits()
    workers = workers or default_workers()
    if workers < 1:
        raise CourseError(f"--workers must be at least 1, got {workers}")
    refs = {a: checked_reference(layout, a) for a in selected}
    roster = load_roster(layout)
    subs = find_submissions(layout, selected, students)
    outcomes: list[res.Result] = []
    submitted = {(s.student, s.assignment) for s in subs}
    wanted_students = students or roster
    for student in wanted_students:
        for assignment in selected:
            if (student, assignment) not in submitted:
                outcomes.append(
                    res.Result(
                        student,
                        assignment,
                        res.MISSING,
                        None,
                        refs[assignment].max_points,
                        "no submission folder",
                    )
                )
                log(f"{student}/{assignment}: missing")
    jobs = [_prepare(s, refs[s.assignment]) for s in subs]
    warned: set[str] = set()

    def finish(job: _Job, event: dict | None) -> None:
        sub, ref = job.submission, job.ref
        for warning in (event or {}).get("warnings", []):
            if warning not in warned:
                warned.add(warning)
                log(f"warning: {warning}")
        failure = job.failure or (event or {}).get("error")
        seconds = round(float((event or {}).get("seconds", 0.0)), 2)
        try:
            if failure:
                result = res.Result(
                    sub.student,
                    sub.assignment,
                    res.FAILED,
                    None,
                    ref.max_points,
                    failure,
                    seconds=seconds,
                )
                record(layout, sub, ref, None, {}, result)
            else:
                cell_scores = cellscores.from_verdicts(event["verdicts"])
                executed = nbformat.reads(json.dumps(event["executed"]), as_version=4)
                result = _summarise(
                    sub, cell_scores, job.reasons, seconds, ref.max_points, event.get("run_error")
                )
                record(layout, sub, ref, executed, cell_scores, result)
        except Exception as exc:  # keep going; the status says the record is not trustworthy
            result = res.Result(
                sub.student,
                sub.assignment,
                res.FAILED,
                None,
                ref.max_points,
                f"could not record the grade ({type(exc).__name__}: {exc})",
            )
        outcomes.append(result)
        res.update(layout.results_file, [result])
        shown = "-" if result.score is None else f"{result.score:g}/{result.max_score:g}"
        log(f"{sub.student}/{sub.assignment}: {result.status} {shown} {result.detail}".rstrip())

    runnable = {j.key: j for j in jobs if j.prepared is not None}
    batches = {
        layout.source_notebook(a): [
            judge.JudgeJob(k, j.prepared, j.code)
            for k, j in runnable.items()
            if j.submission.assignment == a
        ]
        for a in selected
    }
    if cluster:  # connects and checks every worker's course files and sandbox now
        from recsys_grader.cluster import grade_on_cluster

        events = grade_on_cluster(cluster, batches, limits, workers, insecure, log)
    else:
        events = (
            e for s, b in batches.items() for e in judge.run_judge(s, b, limits, workers, insecure)
        )
    for job in jobs:
        if job.prepared is None:
            finish(job, None)
    if any(j.prepared is not None for j in jobs) and not insecure and not cluster:
        available, why = sandbox_support()
        if not available:
            raise SandboxUnavailable(
                f"cannot sandbox student code here: {why}. Install bubblewrap (apt-get install "
                "bubblewrap), or pass --insecure to grade without isolation (trusted notebooks "
                "only)"
            )
    for event in events:  # recorded here, in this process only (one gradebook writer)
        finish(runnable[event["key"]], event)
    missing = [o for o in outcomes if o.status == res.MISSING]
    if missing:
        res.update(layout.results_file, missing)
    return sorted(outcomes, key=lambda r: r.key)


def add_limit_arguments(parser, default: Limits | None = None) -> None:
    """The sandbox flags shared by ``autograde``, ``validate`` and ``course``.

    Args:
        parser: an argparse (sub)parser.
        default: the verb's default limits.
    """
    default = default or Limits()
    parser.add_argument(
        "--cell-timeout",
        type=int,
        default=default.cell_timeout,
        help="seconds per cell before it is interrupted (default %(default)s)",
    )
    parser.add_argument(
        "--notebook-timeout",
        type=int,
        default=default.notebook_timeout,
        help="seconds per notebook before it is killed (default %(default)s)",
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=default.memory_mb,
        help="address-space limit per process in MiB (default %(default)s)",
    )
    parser.add_argument(
        "--output-cap",
        type=int,
        default=default.output_cap,
        help="bytes of output kept per cell (default %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="parallel executions (default min(2, CPUs) = %(default)s)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="grade without the bubblewrap sandbox where it is missing (trusted notebooks only)",
    )


def limits_from(args) -> Limits:
    """Build Limits from parsed CLI flags (bad values raise CourseError)."""
    try:
        return Limits(args.cell_timeout, args.notebook_timeout, args.memory_mb, args.output_cap)
    except ValueError as exc:
        raise CourseError(str(exc)) from None


def print_table(results: list[res.Result], log: Callable[[str], None] = print) -> None:
    """Print student, assignment, score, max and status as an aligned table."""
    rows = [("student", "assignment", "score", "max", "status")]
    for r in results:
        score = "" if r.score is None else f"{r.score:g}"
        rows.append((r.student, r.assignment, score, f"{r.max_score:g}", r.status))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        log("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def run(args) -> int:
    """CLI entry: exit 0 when every submission got a status (whatever it is), 1 otherwise."""
    results = autograde(
        args.assignments,
        args.student,
        limits_from(args),
        args.workers,
        args.root,
        insecure=args.insecure,
        cluster=args.cluster,
    )
    print_table(results)
    broken = [r for r in results if r.detail.startswith("could not record")]
    return 1 if broken else 0
