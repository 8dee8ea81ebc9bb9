"""The class roster: ``roster.csv`` of the course root, and ``recsys-course import-roster``.

The roster lists the students expected to submit: ``autograde`` and ``report`` mark a roster
student without a submission ``missing``, and every grading step reports submitters who are not
on it. ``import-roster FILE`` reads a CSV exported from an LMS or a spreadsheet (columns are
recognised by their usual names, or named with ``--id-column``), checks every id, merges it into
``roster.csv`` (or replaces it with ``--replace``) and records the students in the gradebook, so
that the formgrader lists them. A bad file changes nothing.

Example:
    >>> from recsys_grader.roster import import_roster
    >>> outcome = import_roster("class.csv")  # doctest: +SKIP
    >>> outcome.added
    ['alice', 'bob', 'chen']
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from recsys_grader import notebooks as nbs
from recsys_grader.layout import CourseError, CourseLayout

#: What nbgrader accepts as a folder name and we accept as a student id.
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
COLUMNS = ("student_id", "first_name", "last_name", "email")
#: Header names (lower case, spaces and dashes as underscores) recognised for each column.
ALIASES = {
    "student_id": ("student_id", "id", "username", "user_name", "login", "login_id",
                   "sis_login_id", "sis_user_id", "student_number", "student", "netid"),
    "first_name": ("first_name", "firstname", "first", "given_name", "forename"),
    "last_name": ("last_name", "lastname", "last", "surname", "family_name"),
    "email": ("email", "e_mail", "email_address", "mail"),
}  # fmt: skip


@dataclass(frozen=True)
class Student:
    """One roster entry."""

    student_id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""


@dataclass
class ImportOutcome:
    """What ``import_roster`` changed."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _key(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def parse_roster(text: str, source: str, id_column: str | None = None) -> list[Student]:
    """Students of a roster CSV (its header names the columns).

    Args:
        text: the CSV text.
        source: the file's name, for messages.
        id_column: the header of the id column, when it has no usual name.

    Returns:
        The students, in file order.

    Raises:
        CourseError: no id column, a bad or duplicate id (every problem row is listed).
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    headers = reader.fieldnames or []
    by_key = {_key(h): h for h in headers if h}
    columns: dict[str, str] = {}
    for column, names in ALIASES.items():
        found = next((by_key[n] for n in names if n in by_key), None)
        if found is not None:
            columns[column] = found
    if id_column is not None:
        if id_column not in headers:
            raise CourseError(f"{source} has no column {id_column!r}; its columns: {headers}")
        columns["student_id"] = id_column
    if "student_id" not in columns:
        raise CourseError(
            f"{source}: no student id column among {headers}; name it student_id, or pass "
            "--id-column NAME (the column holding the login names students submit under)"
        )
    students, problems, seen = [], [], {}
    for line, row in enumerate(reader, start=2):
        values = {c: (row.get(h) or "").strip() for c, h in columns.items()}
        student_id = values["student_id"]
        if not any(v.strip() for v in row.values() if isinstance(v, str)):
            continue  # a blank line
        if not STUDENT_ID.match(student_id):
            problems.append(f"line {line}: invalid student id {student_id!r}")
        elif student_id in seen:
            problems.append(f"line {line}: {student_id!r} already on line {seen[student_id]}")
        else:
            seen[student_id] = line
            students.append(Student(**values))
    if problems:
        raise CourseError(
            f"{source}: {'; '.join(problems[:10])}"
            + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
            + ". Student ids are letters, digits, '_', '.', '-' (the name of the student's "
            "submission folder); nothing was imported"
        )
    return students


def read_roster(layout: CourseLayout) -> list[Student]:
    """The course's roster (empty when there is no ``roster.csv``).

    Raises:
        CourseError: when the file is malformed.
    """
    if not layout.roster.is_file():
        return []
    return parse_roster(layout.roster.read_text(encoding="utf-8"), str(layout.roster))


def load_roster(layout: CourseLayout) -> list[str]:
    """Student ids of ``roster.csv``; empty when there is no roster.

    Raises:
        CourseError: when the file has no ``student_id`` column or a bad id.
    """
    return [s.student_id for s in read_roster(layout)]


def write_roster(layout: CourseLayout, students: list[Student]) -> None:
    """Write ``roster.csv`` (columns ``COLUMNS``), atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for student in students:
        writer.writerow(asdict(student))
    nbs.write_text_if_changed(layout.roster, buffer.getvalue())


def import_roster(
    source: str | Path,
    replace: bool = False,
    id_column: str | None = None,
    root: str | None = None,
) -> ImportOutcome:
    """Merge a roster CSV into the course's ``roster.csv`` and the gradebook.

    Args:
        source: the CSV to read.
        replace: drop roster students absent from ``source`` (their grades stay in the
            gradebook and ``results.json``).
        id_column: header of the id column when it has no usual name.
        root: course root.

    Returns:
        Who was added, updated, left unchanged or dropped.

    Raises:
        CourseError: when the file cannot be read or holds a bad id (nothing is written).
    """
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    layout = CourseLayout.load(root)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CourseError(f"cannot read the roster {path}: {exc}") from None
    incoming = parse_roster(text, str(path), id_column)
    if not incoming:
        raise CourseError(f"{path} lists no students; nothing was imported")
    current = {s.student_id: s for s in read_roster(layout)}
    outcome = ImportOutcome()
    merged = dict(current)
    for student in incoming:
        old = current.get(student.student_id)
        if old is None:
            outcome.added.append(student.student_id)
        elif old == student:
            outcome.unchanged.append(student.student_id)
            continue
        else:
            outcome.updated.append(student.student_id)
            # an LMS export without e-mails does not erase the ones already known
            student = Student(
                student.student_id,
                *(new or before for new, before in zip(
                    (student.first_name, student.last_name, student.email),
                    (old.first_name, old.last_name, old.email),
                )),
            )  # fmt: skip
        merged[student.student_id] = student
    if replace:
        keep = {s.student_id for s in incoming}
        outcome.dropped = sorted(s for s in current if s not in keep)
        merged = {k: v for k, v in merged.items() if k in keep}
        if outcome.dropped:
            outcome.warnings.append(
                f"dropped from the roster: {', '.join(outcome.dropped)} (their grades stay in "
                "the gradebook and reports/results.json)"
            )
    with warnings.catch_warnings(), Gradebook(layout.db_url, layout.course_id) as gb:
        warnings.simplefilter("ignore", SAWarning)
        for student in merged.values():
            gb.update_or_create_student(
                student.student_id,
                first_name=student.first_name or None,
                last_name=student.last_name or None,
                email=student.email or None,
            )
    write_roster(layout, list(merged.values()))
    return outcome


def run(args) -> int:
    """CLI entry (``recsys-course import-roster FILE``)."""
    outcome = import_roster(args.file, args.replace, args.id_column, args.root)
    layout = CourseLayout.load(args.root)
    for warning in outcome.warnings:
        print(f"warning: {warning}")
    print(
        f"{layout.roster}: {len(outcome.added)} added, {len(outcome.updated)} updated, "
        f"{len(outcome.unchanged)} unchanged, {len(outcome.dropped)} dropped"
    )
    return 0
