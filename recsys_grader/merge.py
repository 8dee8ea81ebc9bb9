"""``recsys-course merge``: bring the grades of shard machines into the primary course root.

When a class is graded on several machines (``docs/deploy.md``, "Autograding on several
machines"), each shard runs ``recsys-course autograde --student ...`` on its own copy of the
course, and its two outputs are copied back to the primary into one folder per shard::

    shards/<k>/results.json   # the shard's grading/reports/results.json
    shards/<k>/gradebook.db   # the shard's grading/gradebook.db

Merging a shard does what :func:`recsys_grader.autograde.record` would have done on the
primary for each of the shard's submissions:

* the results store: the shard's records replace the primary's by (student, assignment); other
  records are kept;
* the gradebook, for every submission that is not ``missing``: the student and the submission
  (with its timestamp) are created when needed, then the automatic scores, the "needs manual
  grading" flags (still set where a grader already gave a manual score on the primary), the
  automatic comments and the flagged (tampered / failed to run) state are copied. Manual scores,
  extra credit and manual comments of the primary are kept.

Everything is read and checked before anything is written (a shard folder without its files, a
corrupt file, an assignment the primary gradebook does not know, a shard graded for another
course or against another release, a results store that does not match its gradebook), and the
gradebook of the primary is written in one transaction, then the results store atomically. The
shards' files are opened read-only. When a (student, assignment) pair is in several shards, the
last shard given wins. The executed notebooks (``autograded/``) are not merged: copy them with
``rsync`` as ``docs/deploy.md`` shows.

Example:
    >>> from recsys_grader.layout import CourseLayout
    >>> from recsys_grader.merge import merge_shards
    >>> merged = merge_shards(CourseLayout.load(), ["shards/0", "shards/1"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sqlite3
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from nbgrader.api import (
    Assignment,
    Comment,
    Course,
    Grade,
    Notebook,
    Student,
    SubmittedAssignment,
    SubmittedNotebook,
)
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SAWarning, SQLAlchemyError
from sqlalchemy.orm import Session

from recsys_grader import results as res
from recsys_grader.autograde import print_table
from recsys_grader.layout import CONFIG_NAME, CourseError, CourseLayout

RESULTS_NAME = "results.json"
GRADEBOOK_NAME = "gradebook.db"
#: tables every nbgrader 0.9.6 gradebook has (and that the merge reads)
_TABLES = {
    "course",
    "assignment",
    "notebook",
    "student",
    "submitted_assignment",
    "submitted_notebook",
    "grade",
    "comment",
}
_STEP6 = "docs/deploy.md, 'Autograding on several machines', step 6"
#: statuses whose points autograde records in the gradebook (failed_to_run clears them)
_RECORDED = (res.GRADED, res.NEEDS_MANUAL, res.TAMPERED)


@dataclass(frozen=True)
class _Notebook:
    """What autograde records for one submitted notebook, read from a shard's gradebook."""

    timestamp: datetime | None
    grades: dict[str, tuple[float | None, bool]]  # name -> (auto_score, needs_manual_grade)
    comments: dict[str, str | None]  # name -> auto_comment
    flagged: bool


@dataclass
class _Gradebook:
    """The parts of a gradebook the merge checks (and, for a shard, copies)."""

    courses: set[str]
    assignments: dict[str, str]  # name -> course id
    releases: dict[str, tuple]  # name -> (notebook, source checksums, grade cells' points)
    submissions: dict[tuple[str, str], _Notebook] = field(default_factory=dict)


@dataclass
class MergedShard:
    """What was merged from one shard folder.

    Attributes:
        folder: the shard folder.
        results: its records, now in the primary's results store.
        recorded: (student, assignment) pairs whose gradebook entry was copied to the primary
            (every record except ``missing`` ones and unrecordable ``failed_to_run`` ones).
    """

    folder: Path
    results: list[res.Result]
    recorded: list[tuple[str, str]]


def _sqlite_path(db_url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other databases or an in-memory one)."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def _read_only_engine(path: Path) -> Engine:
    """An engine that cannot change (or create) the sqlite file ``path``."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))


def _read(engine: Engine, keys: Iterable[tuple[str, str]]) -> _Gradebook:
    """Read courses, assignments, releases and the submitted notebooks of ``keys``.

    Raises:
        ValueError: when the database is not an nbgrader gradebook.
        SQLAlchemyError: when it cannot be read.
    """
    missing_tables = _TABLES - set(inspect(engine).get_table_names())
    if missing_tables:
        raise ValueError(f"no nbgrader tables {', '.join(sorted(missing_tables))}")
    with warnings.catch_warnings(), Session(engine) as session:
        warnings.simplefilter("ignore", SAWarning)
        book = _Gradebook(
            courses=set(session.scalars(select(Course.id))),
            assignments={a.name: a.course_id for a in session.scalars(select(Assignment))},
            releases={},
        )
        for assignment in session.scalars(select(Assignment)):
            book.releases[assignment.name] = tuple(
                (
                    nb.name,
                    tuple(sorted((c.name, c.checksum) for c in nb.source_cells)),
                    tuple(sorted((c.name, float(c.max_score)) for c in nb.grade_cells)),
                )
                for nb in sorted(assignment.notebooks, key=lambda n: n.name)
            )
        for student, assignment in keys:
            nb = session.scalars(
                select(SubmittedNotebook)
                .join(Notebook, Notebook.id == SubmittedNotebook.notebook_id)
                .join(SubmittedAssignment, SubmittedNotebook.assignment)
                .join(Assignment, Assignment.id == SubmittedAssignment.assignment_id)
                .where(
                    Notebook.name == assignment,
                    Assignment.name == assignment,
                    SubmittedAssignment.student_id == student,
                )
            ).one_or_none()
            if nb is not None:
                book.submissions[(student, assignment)] = _Notebook(
                    timestamp=nb.assignment.timestamp,
                    grades={g.name: (g.auto_score, bool(g.needs_manual_grade)) for g in nb.grades},
                    comments={c.name: c.auto_comment for c in nb.comments},
                    flagged=bool(nb.flagged),
                )
    return book


def _read_file(path: Path, keys: Iterable[tuple[str, str]], fix: str) -> _Gradebook:
    """Read a sqlite gradebook read-only; CourseError naming the file and ``fix`` otherwise."""
    if not path.is_file():
        raise CourseError(f"{path} is missing: {fix}")
    engine = _read_only_engine(path)
    try:
        return _read(engine, keys)
    except (ValueError, SQLAlchemyError, sqlite3.Error) as exc:
        why = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CourseError(f"{path} is not a readable nbgrader gradebook ({why}): {fix}") from None
    finally:
        engine.dispose()


def _read_results(path: Path) -> dict[tuple[str, str], res.Result]:
    """A shard's results store; CourseError when it is missing or corrupt."""
    fix = f"copy grading/reports/{RESULTS_NAME} from the shard machine to {path} ({_STEP6})"
    if not path.is_file():
        raise CourseError(f"{path} is missing: {fix}")
    try:
        return res.load(path)
    except ValueError as exc:
        why = exc.__context__ or exc
        raise CourseError(f"{path} is not a valid results store ({why}): {fix}") from None


def _read_primary(layout: CourseLayout) -> _Gradebook:
    """The primary gradebook, read without writing to it."""
    fix = "run `recsys-course release` on the primary first (docs/deploy.md, step 2)"
    path = _sqlite_path(layout.db_url)
    if path is not None:
        return _read_file(path, (), fix)
    engine = create_engine(layout.db_url)
    try:
        return _read(engine, ())
    except (ValueError, SQLAlchemyError) as exc:
        raise CourseError(f"cannot read the gradebook {layout.db_url} ({exc}): {fix}") from None
    finally:
        engine.dispose()


def _check_shard(
    layout: CourseLayout,
    primary: _Gradebook,
    folder: Path,
) -> tuple[dict[tuple[str, str], res.Result], _Gradebook]:
    """Read one shard folder and check it against the primary (writes nothing).

    Returns:
        The shard's results and the gradebook entries of its recorded submissions.

    Raises:
        CourseError: naming the file at fault and the fix.
    """
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise CourseError(
            f"shard folder {folder} {what}: copy the shard's grading/reports/"
            f"{RESULTS_NAME} and grading/{GRADEBOOK_NAME} into a folder of its own ({_STEP6})"
        )
    results_path, gradebook_path = folder / RESULTS_NAME, folder / GRADEBOOK_NAME
    stored = _read_results(results_path)
    unknown = sorted({a for _, a in stored if primary.assignments.get(a) != layout.course_id})
    if unknown:
        raise CourseError(
            f"{results_path} has results for {', '.join(unknown)}, which the primary gradebook "
            f"{layout.db_url} does not have: release it on the primary (`recsys-course release "
            f"{' '.join(unknown)}`), give the shards that release (docs/deploy.md, steps 2 and "
            f"4), grade them again, then merge"
        )
    wanted = [k for k, r in stored.items() if r.status != res.MISSING]
    shard = _read_file(
        gradebook_path,
        wanted,
        f"copy grading/{GRADEBOOK_NAME} from the shard machine to {gradebook_path} ({_STEP6})",
    )
    config_file = layout.root / CONFIG_NAME
    graded_for = {shard.assignments[a] for _, a in stored if a in shard.assignments}
    foreign = sorted(((shard.courses - primary.courses) | graded_for) - {layout.course_id})
    if foreign:
        raise CourseError(
            f"{gradebook_path} was graded for course {', '.join(map(repr, foreign))}, not "
            f"{layout.course_id!r} (CourseDirectory.course_id of {config_file}): grade the shard "
            f"on an unchanged copy of the primary's repository (docs/deploy.md, step 4), then merge"
        )
    for assignment in sorted({a for _, a in stored}):
        if shard.releases.get(assignment) != primary.releases.get(assignment):
            raise CourseError(
                f"{gradebook_path} holds another release of {assignment} than the primary "
                f"gradebook {layout.db_url}: copy the primary's course/ and gradebook.db to the "
                f"shard, grade it again (docs/deploy.md, steps 2 and 4), then merge"
            )
    for key in wanted:
        if key not in shard.submissions and stored[key].status in _RECORDED:
            raise CourseError(
                f"{results_path} says {key[0]}/{key[1]} is {stored[key].status}, but "
                f"{gradebook_path} has no submission for it: the two files must come from the "
                f"same shard machine; copy both again ({_STEP6})"
            )
    return stored, shard


def _submission(session: Session, student: str, assignment: str) -> SubmittedAssignment:
    """The primary's submission, created like nbgrader's ``Gradebook.add_submission`` when new
    (the student too), without committing."""
    person = session.get(Student, student)
    if person is None:
        person = Student(id=student)
        session.add(person)
    sub = session.scalars(
        select(SubmittedAssignment)
        .join(Assignment, Assignment.id == SubmittedAssignment.assignment_id)
        .where(Assignment.name == assignment, SubmittedAssignment.student_id == student)
    ).one_or_none()
    if sub is not None:
        return sub
    master = session.scalars(select(Assignment).where(Assignment.name == assignment)).one()
    sub = SubmittedAssignment(assignment=master, student=person)
    for notebook in master.notebooks:
        nb = SubmittedNotebook(notebook=notebook, assignment=sub)
        for cell in notebook.grade_cells:
            Grade(cell_id=cell.id, notebook=nb)
        for cell in notebook.solution_cells:
            Comment(cell_id=cell.id, notebook=nb)
        for cell in notebook.task_cells:
            Comment(cell_id=cell.id, notebook=nb)
            Grade(cell_id=cell.id, notebook=nb)
    session.add(sub)
    session.flush()
    return sub


def _copy(session: Session, student: str, assignment: str, entry: _Notebook) -> None:
    """Write one shard submission into the primary's session (as ``autograde.record`` does)."""
    sub = _submission(session, student, assignment)
    if entry.timestamp is not None:
        sub.timestamp = entry.timestamp
    (nb,) = [n for n in sub.notebooks if n.name == assignment]
    for grade in nb.grades:
        if grade.name in entry.grades:
            auto_score, needs_manual = entry.grades[grade.name]
            grade.auto_score = auto_score
            grade.needs_manual_grade = needs_manual or grade.manual_score is not None
    for comment in nb.comments:
        if comment.name in entry.comments:
            comment.auto_comment = entry.comments[comment.name]
    nb.flagged = entry.flagged


def merge_shards(
    layout: CourseLayout,
    shard_dirs: Iterable[str | os.PathLike[str]],
    log: Callable[[str], None] = print,
) -> list[MergedShard]:
    """Merge shard folders (``results.json`` + ``gradebook.db`` each) into the primary course.

    Args:
        layout: the primary course root.
        shard_dirs: shard folders, merged in this order (the last one wins a duplicate pair).
        log: where warnings go.

    Returns:
        One :class:`MergedShard` per folder, in order.

    Raises:
        CourseError: on any bad input (nothing is written then), or when the primary's
            gradebook cannot be written (its transaction is rolled back).
    """
    folders = [Path(d) for d in shard_dirs]
    if not folders:
        raise CourseError(f"no shard folder given: pass the folders of {_STEP6}")
    try:
        merged_results = res.load(layout.results_file)
    except ValueError as exc:
        raise CourseError(str(exc)) from None
    primary = _read_primary(layout)
    if layout.course_id not in primary.courses:
        raise CourseError(
            f"the primary gradebook {layout.db_url} has no course {layout.course_id!r}: run "
            f"`recsys-course release` on the primary first (docs/deploy.md, step 2)"
        )
    checked = [(folder, *_check_shard(layout, primary, folder)) for folder in folders]

    # every input is valid: write the gradebook in one transaction, then the results store
    origin: dict[tuple[str, str], Path] = {}
    merged: list[MergedShard] = []
    for folder, stored, shard in checked:
        for key, result in sorted(stored.items()):
            if key in origin:
                log(f"warning: {key[0]}/{key[1]} is in {origin[key]} and {folder}; {folder} wins")
            elif result.status == res.MISSING and key in merged_results:
                previous = merged_results[key].status
                if previous != res.MISSING:
                    # a shard that did not see the submission never downgrades a grade
                    log(
                        f"warning: {folder} says {key[0]}/{key[1]} is missing; its {previous} "
                        "result is kept (grade shards with --student)"
                    )
                    continue
            origin[key] = folder
            merged_results[key] = result
        recorded = sorted(k for k in stored if k in shard.submissions)
        merged.append(MergedShard(folder, [stored[k] for k in sorted(stored)], recorded))
    engine = create_engine(layout.db_url)
    try:
        with warnings.catch_warnings(), Session(engine) as session:
            warnings.simplefilter("ignore", SAWarning)
            try:
                for (_, _, shard), outcome in zip(checked, merged):
                    for student, assignment in outcome.recorded:
                        _copy(session, student, assignment, shard.submissions[student, assignment])
                session.commit()
            except BaseException:
                session.rollback()
                raise
    except SQLAlchemyError as exc:
        raise CourseError(
            f"could not write the primary gradebook {layout.db_url} ({exc}); nothing was "
            f"merged: close other programs using it (formgrader, autograde) and merge again"
        ) from None
    finally:
        engine.dispose()
    try:
        res.save(layout.results_file, merged_results)
    except OSError as exc:
        raise CourseError(
            f"the gradebook was merged but {layout.results_file} could not be written ({exc}): "
            f"fix that and merge again (merging the same shards again is safe)"
        ) from None
    return merged


def run(args) -> int:
    """CLI entry: merge the shard folders, print what was merged; exit 0."""
    layout = CourseLayout.load(args.root)
    merged = merge_shards(layout, args.shards)
    for m in merged:
        print(
            f"merged {m.folder}: {len(m.results)} result(s), "
            f"{len(m.recorded)} gradebook submission(s)"
        )
    print_table([r for m in merged for r in m.results])
    return 0
