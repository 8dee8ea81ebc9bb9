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

import difflib
import json
import os
import shutil
import stat
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
from recsys_grader.roster import STUDENT_ID, load_roster
from recsys_grader.sandbox import Limits, SandboxUnavailable, exposed, sandbox_support

__all__ = ["autograde", "load_roster", "survey", "Submission", "print_table"]


#: Files of an nbgrader submission kept next to the graded notebook (never student code).
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


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


def survey(
    layout: CourseLayout, assignments: list[str], students: list[str] | None = None
) -> tuple[list[Submission], list[str]]:
    """Submission folders for the given assignments (and students), and what looks wrong.

    Nothing under ``submitted/`` is silently ignored: a folder that is not a valid student id,
    a folder or notebook that is not an assignment of the course (with the closest name), a
    notebook dropped directly in a student's folder and a submitter who is not on the roster
    are each reported.

    Args:
        layout: the course.
        assignments: assignments to grade.
        students: only these students (None: everyone).

    Returns:
        (submissions, problems to report).
    """
    found: list[Submission] = []
    problems: list[str] = []
    if not layout.submitted.is_dir():
        return found, problems
    roster = set(load_roster(layout))
    known = list(layout.assignments)
    layout_hint = "submitted/<student>/<assignment>/<assignment>.ipynb"
    for entry in sorted(layout.submitted.iterdir()):
        if entry.name.startswith(".") or (students and entry.name not in students):
            continue
        if not entry.is_dir():
            problems.append(f"{entry}: not graded, expected {layout_hint}")
            continue
        if not STUDENT_ID.match(entry.name):
            problems.append(
                f"{entry}: not graded, {entry.name!r} is not a valid student id (letters, "
                "digits, _.-)"
            )
            continue
        mine = [a for a in assignments if (entry / a).is_dir()]
        if roster and entry.name not in roster and mine:
            problems.append(
                f"{entry.name} submitted {', '.join(mine)} but is not on the roster "
                f"({layout.roster}): graded; add them with `recsys-course import-roster`"
            )
        found += [Submission(entry.name, a, entry / a) for a in mine]
        for item in sorted(entry.iterdir()):
            name = item.name.removesuffix(".ipynb")
            if item.name.startswith(".") or (item.is_dir() and item.name in known):
                continue
            if item.is_file() and name in known:
                problems.append(
                    f"{item}: not graded, a notebook must sit in its assignment's folder: move "
                    f"it to {entry / name / item.name}"
                )
                continue
            guess = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = (
                f"did you mean {guess[0]}? Rename it to {entry / guess[0]}"
                if guess
                else f"assignments are {', '.join(known)}"
            )
            problems.append(f"{item}: not an assignment of this course, not graded ({hint})")
    return found, problems


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


#: Largest submitted notebook read (bytes).
MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024


def submitted_file(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> Path:
    """Check that a file of a submission may be read: a regular file of at most ``limit``
    bytes in folders that are not symbolic links. Whoever hands in the folder chooses what is
    in it: a link (to ``solutions/``, the gradebook, a classmate's notebook), a named pipe
    (which blocks a reader forever) or a device (``/dev/zero``, endless) must never be read.

    Returns:
        ``path``.

    Raises:
        CourseError: naming the problem.
    """
    for part in (path, path.parent, path.parent.parent):
        if part.is_symlink():
            raise CourseError(f"{part.name} in the submission is a symbolic link, not accepted")
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise CourseError(f"no {path.name} in the submission") from None
    if not stat.S_ISREG(info.st_mode):
        raise CourseError(f"{path.name} in the submission is not a regular file")
    if info.st_size > limit:
        raise CourseError(f"{path.name} is larger than {limit // (1024 * 1024)} MiB")
    return path


def _prepare(sub: Submission, ref: nbs.Reference) -> _Job:
    if not os.path.lexists(sub.notebook):
        others = sorted(p.name for p in sub.folder.glob("*.ipynb"))
        hint = f" (found {', '.join(others)}; keep the notebook's name)" if others else ""
        return _Job(sub, ref, None, [], f"no {sub.notebook.name} in the submission{hint}")
    try:
        notebook = nbs.read_notebook(submitted_file(sub.notebook))
        prepared, reasons = cellscores.prepare(notebook, ref)
        code = cellscores.student_code(notebook, ref)
    except CourseError as exc:
        return _Job(sub, ref, None, [], str(exc))
    except Exception as exc:  # malformed cells: a failed run, never a crash of the batch
        # the type only: a message could quote the student's own text into grades.csv
        return _Job(sub, ref, None, [], f"unusable notebook ({type(exc).__name__})")
    return _Job(sub, ref, prepared, reasons, None, code)


def _timestamp(folder: Path):
    stamp = folder / "timestamp.txt"
    try:
        return parse_utc(submitted_file(stamp, limit=200).read_text().strip())
    except Exception:  # a missing, odd or bad timestamp must not block grading
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
        # what nbgrader's release_feedback needs to match feedback to an exchange submission
        for name in EXCHANGE_FILES:
            path = sub.folder / name
            # small plain files only: a submission's symlink must not copy a host file here
            if path.is_file() and not path.is_symlink() and path.stat().st_size <= 4096:
                shutil.copyfile(path, out_dir / name)


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
        One result per graded submission, plus ``missing`` for each roster student without a
        submission of an assignment others submitted, unless an earlier run recorded something
        for that student and assignment (a run that did not see a submission never downgrades
        an earlier grade). Empty when there is nothing to grade.

    Raises:
        CourseError: when the release or gradebook is out of date, or arguments are wrong.
    """
    layout = CourseLayout.load(root)
    selected = layout.select(assignments)
    limits = limits or Limits()
    workers = workers or default_workers()
    if workers < 1:
        raise CourseError(f"--workers must be at least 1, got {workers}")
    roster = load_roster(layout)
    if students:
        unknown = [
            s
            for s in students
            if s not in roster and not (STUDENT_ID.match(s) and (layout.submitted / s).is_dir())
        ]
        if unknown:
            raise CourseError(
                f"unknown student(s) {', '.join(unknown)}: not on the roster ({layout.roster}, "
                f"{len(roster)} students) and no folder under {layout.submitted}. Check the "
                "id, or add the student with `recsys-course import-roster FILE`"
            )
    refs = {a: checked_reference(layout, a) for a in selected}
    subs, problems = survey(layout, selected, students)
    for problem in problems:
        log(f"warning: {problem}")
    if not roster:
        log(
            f"warning: the roster {layout.roster} lists nobody, so nobody can be reported "
            "missing: import the class with `recsys-course import-roster FILE`"
        )
    try:
        stored = res.load(layout.results_file)
    except ValueError as exc:
        raise CourseError(str(exc)) from None
    outcomes: list[res.Result] = []
    submitted = {(s.student, s.assignment) for s in subs}
    # an assignment nobody has submitted yet is not collected: nobody is missing it yet
    collected = {
        a for a in selected if layout.submitted.is_dir() and any(layout.submitted.glob(f"*/{a}"))
    }
    for assignment in selected:
        absent = [
            student
            for student in roster
            if (not students or student in students)
            and assignment in collected
            and (student, assignment) not in submitted
            # a run that did not see a submission never overwrites what an earlier run recorded
            and (student, assignment) not in stored
        ]
        points = refs[assignment].max_points
        outcomes += [
            res.Result(s, assignment, res.MISSING, None, points, "no submission") for s in absent
        ]
        if absent:
            log(
                f"{assignment}: {len(absent)} roster student(s) without a submission: "
                + res.name_list(absent)
            )
    if not subs:
        who = f" from {', '.join(students)}" if students else ""
        log(
            f"nothing to grade: no submission of {', '.join(selected)}{who} under "
            f"{layout.submitted} (expected submitted/<student>/<assignment>/<assignment>.ipynb; "
            "bring them in with `recsys-course collect ASSIGNMENT --from DIR` or `--exchange`)"
        )
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
    leaks = exposed(
        {
            "the course root": layout.root,
            "the solutions folder": layout.source,
            "the submissions folder": layout.submitted,
        }
    )
    if runnable and leaks and not insecure:  # (--root or its config may point anywhere)
        raise CourseError(
            "the sandbox would let students read the grader's files: "
            + "; ".join(leaks)
            + ". Keep the course root and solutions outside the Python environment, the kit, "
            "the datasets and the embedding cache (RECSYS_DATA_DIR, RECSYS_CACHE_DIR)"
        )
    if cluster:  # connects and checks every worker's course files and sandbox now
        from recsys_grader.cluster import grade_on_cluster

        events = grade_on_cluster(cluster, batches, limits, workers, insecure, log)
    else:
        events = (
            e
            for s, b in batches.items()
            for e in judge.run_judge(s, b, limits, workers, insecure, cache=layout.judge_cache)
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
    """CLI entry: exit 0 when every submission got a status (whatever it is); 1 when a grade
    could not be recorded, or when the assignments or students named found nothing to grade."""
    results = autograde(
        args.assignments,
        args.student,
        limits_from(args),
        args.workers,
        args.root,
        insecure=args.insecure,
        cluster=args.cluster,
    )
    if results:
        print_table(results)
    broken = [r for r in results if r.detail.startswith("could not record")]
    graded = [r for r in results if r.status != res.MISSING]
    # asked for something specific and found nothing: a failure, not a quiet success
    nothing = not graded and bool(args.assignments or args.student)
    return 1 if broken or nothing else 0
