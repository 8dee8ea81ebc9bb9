"""Submissions in, feedback out: ``recsys-course collect`` and ``recsys-course return-feedback``.

A real class hands in notebooks either through nbgrader's *exchange* (JupyterHub: students
``nbgrader submit``) or as files (an LMS download, a shared drive, e-mail). Both end in the
layout ``autograde`` reads, ``submitted/<student>/<assignment>/<assignment>.ipynb``:

* ``collect A --exchange [ROOT]`` runs nbgrader's own collect (newest submission of each
  student; ``timestamp.txt`` and the submission secret kept for returning feedback);
* ``collect A --from DIR`` copies ``DIR/<student>/<A>.ipynb`` or ``DIR/<student>/<A>/<A>.ipynb``
  (the file's time becomes the submission time). A student folder holding one notebook with
  another name (``00_orientation (1).ipynb``) is collected under the right name, and said so.

Then each collect reports what it did and everything it did not take: folders that are not
valid student ids, students with no notebook or several candidates, submitters who are not on
the roster, roster students who submitted nothing. Nothing under ``submitted/`` is deleted; a
student's folder is replaced only by a newer, different submission.

``return-feedback A --to DIR`` copies each student's feedback to ``DIR/<student>/<A>.html``;
``--exchange`` releases it through nbgrader's exchange (students ``nbgrader fetch_feedback``).

Example:
    >>> from recsys_grader.collect import collect_folder
    >>> outcome = collect_folder("00_orientation", "downloads/")  # doctest: +SKIP
    >>> outcome.collected
    ['alice', 'bob', 'chen']
"""

from __future__ import annotations

import datetime as dt
import filecmp
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from recsys_grader import results as res
from recsys_grader.layout import CourseError, CourseLayout
from recsys_grader.roster import STUDENT_ID, load_roster


@dataclass
class TransferOutcome:
    """What a collect or a return did, per student, and what it reported."""

    done: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def collected(self) -> list[str]:
        """Students whose submission was copied (new or newer)."""
        return self.done


def _nbgrader_config(layout: CourseLayout, exchange: str | None):
    config = layout.nbgrader_config()
    if exchange:
        config.Exchange.root = str(Path(exchange).resolve())
    return config


def _check_roster(layout: CourseLayout, assignment: str, outcome: TransferOutcome) -> None:
    """Report submitters who are not on the roster and roster students with nothing submitted."""
    roster = load_roster(layout)
    have = (
        sorted(p.parent.name for p in layout.submitted.glob(f"*/{assignment}") if p.is_dir())
        if layout.submitted.is_dir()
        else []
    )
    if not roster:
        outcome.problems.append(
            f"the roster {layout.roster} lists nobody: import the class with "
            "`recsys-course import-roster FILE` to see who is missing"
        )
        return
    strangers = [s for s in have if s not in roster]
    if strangers:
        outcome.problems.append(
            f"not on the roster ({layout.roster}): {', '.join(strangers)}; they will be graded. "
            "Add them with `recsys-course import-roster`, or remove their folders from "
            f"{layout.submitted}"
        )
    absent = [s for s in roster if s not in have]
    if absent:
        outcome.notes.append(
            f"{len(absent)} roster student(s) submitted nothing yet: {res.name_list(absent, 20)}"
        )


def _stamp(path: Path) -> str:
    """nbgrader's timestamp format, from a file's modification time (UTC)."""
    when = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f %Z")


def _pick_notebook(folder: Path, assignment: str, others: set[str]) -> tuple[Path | None, str]:
    """The student's notebook of ``assignment`` in ``folder`` and a note (empty: as named)."""
    for candidate in (folder / f"{assignment}.ipynb", folder / assignment / f"{assignment}.ipynb"):
        if candidate.is_file():
            return candidate, ""
    notebooks = [
        p
        for p in sorted(folder.glob("*.ipynb")) + sorted(folder.glob(f"{assignment}/*.ipynb"))
        if p.stem not in others and ".ipynb_checkpoints" not in p.parts
    ]
    if len(notebooks) == 1:
        return notebooks[0], f"collected {notebooks[0].name} as {assignment}.ipynb"
    if notebooks:
        names = ", ".join(p.name for p in notebooks)
        return None, f"several notebooks ({names}), none named {assignment}.ipynb: not collected"
    return None, f"no {assignment}.ipynb: not collected"


def collect_folder(assignment: str, source: str | Path, root: str | None = None) -> TransferOutcome:
    """Collect submissions of ``assignment`` from a folder of student folders.

    Args:
        assignment: the assignment.
        source: ``DIR`` holding ``<student>/<assignment>.ipynb`` or
            ``<student>/<assignment>/<assignment>.ipynb``.
        root: course root.

    Returns:
        Who was collected, who was unchanged, and what was reported.

    Raises:
        CourseError: an unknown assignment or a missing folder.
    """
    layout = CourseLayout.load(root)
    (assignment,) = layout.select([assignment])
    source = Path(source).expanduser().resolve()
    if not source.is_dir():
        raise CourseError(f"{source} is not a folder of student folders")
    outcome = TransferOutcome()
    others = set(layout.assignments) - {assignment}
    for entry in sorted(source.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            outcome.problems.append(
                f"{entry}: not collected, expected one folder per student "
                f"({source}/<student>/{assignment}.ipynb)"
            )
            continue
        if not STUDENT_ID.match(entry.name):
            outcome.problems.append(
                f"{entry}: not collected, {entry.name!r} is not a valid student id (letters, "
                "digits, _.-; rename the folder to the student's id)"
            )
            continue
        notebook, note = _pick_notebook(entry, assignment, others)
        if notebook is None:
            outcome.problems.append(f"{entry.name}: {note}")
            continue
        if notebook.is_symlink():  # an archive's link could point anywhere on this machine
            outcome.problems.append(f"{notebook}: a symbolic link, not collected")
            continue
        if note:
            outcome.notes.append(f"{entry.name}: {note}")
        target = layout.submitted / entry.name / assignment
        target_nb = target / f"{assignment}.ipynb"
        if target_nb.is_file() and filecmp.cmp(notebook, target_nb, shallow=False):
            outcome.unchanged.append(entry.name)
            continue
        staging = target.with_name(f".{assignment}.collecting")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        shutil.copyfile(notebook, staging / f"{assignment}.ipynb")
        stamp = notebook.parent / "timestamp.txt"
        plain = stamp.is_file() and not stamp.is_symlink() and stamp.stat().st_size <= 100
        text = stamp.read_text(encoding="utf-8").strip() if plain else _stamp(notebook)
        (staging / "timestamp.txt").write_text(text + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        outcome.done.append(entry.name)
    _check_roster(layout, assignment, outcome)
    return outcome


def _capture(app) -> tuple[bool, list[str]]:
    """Run an nbgrader exchange step; (success, its warning and error lines)."""
    import logging

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                lines.append(" ".join(record.getMessage().split()))

    handler = Keep()
    app.log.addHandler(handler)
    try:
        app.start()
    except Exception as exc:  # ExchangeError and friends: the message says what is wrong
        lines.append(str(exc) or type(exc).__name__)
        return False, lines
    finally:
        app.log.removeHandler(handler)
    return True, lines


def _stamps(layout: CourseLayout, assignment: str) -> dict[str, str]:
    stamps = {}
    for folder in layout.submitted.glob(f"*/{assignment}") if layout.submitted.is_dir() else []:
        stamp = folder / "timestamp.txt"
        stamps[folder.parent.name] = stamp.read_text().strip() if stamp.is_file() else ""
    return stamps


def collect_exchange(
    assignment: str, exchange: str | None = None, root: str | None = None
) -> TransferOutcome:
    """Collect submissions of ``assignment`` from nbgrader's exchange (newest per student).

    Args:
        assignment: the assignment.
        exchange: the exchange folder (default: ``Exchange.root`` of the course config).
        root: course root.

    Raises:
        CourseError: when the exchange cannot be read (the message names the folder).
    """
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeFactory

    layout = CourseLayout.load(root)
    (assignment,) = layout.select([assignment])
    config = _nbgrader_config(layout, exchange)
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    collector = ExchangeFactory(config=config).Collect(
        coursedir=coursedir, authenticator=Authenticator(config=config), config=config
    )
    collector.update = True  # a newer submission replaces the one collected before
    before = _stamps(layout, assignment)
    ok, lines = _capture(collector)
    if not ok:
        raise CourseError(
            f"cannot collect {assignment} from the exchange {config.Exchange.root}: "
            + "; ".join(lines)
        )
    outcome = TransferOutcome(problems=[ln for ln in lines if "No submissions" not in ln])
    after = _stamps(layout, assignment)
    for student, stamp in sorted(after.items()):
        if student not in before or before[student] != stamp:
            outcome.done.append(student)
        elif student in before:
            outcome.unchanged.append(student)
    bad = [s for s in outcome.done if not STUDENT_ID.match(s)]
    if bad:
        outcome.problems.append(
            f"submitted under ids autograde cannot grade: {', '.join(bad)} (letters, digits, _.-)"
        )
    _check_roster(layout, assignment, outcome)
    return outcome


def _feedback_files(layout: CourseLayout, assignment: str) -> tuple[dict[str, Path], list[str]]:
    """{student: feedback HTML} and the students graded without feedback (with why)."""
    try:
        stored = res.load(layout.results_file)
    except ValueError as exc:
        raise CourseError(str(exc)) from None
    files, without = {}, []
    for (student, a), result in sorted(stored.items()):
        if a != assignment or result.status == res.MISSING:
            continue
        html = layout.feedback / student / assignment / f"{assignment}.html"
        if html.is_file():
            files[student] = html
        else:
            why = (
                result.status
                if result.status == res.FAILED
                else "run `recsys-course feedback` first"
            )
            without.append(f"{student}: no feedback ({why})")
    return files, without


def return_folder(assignment: str, dest: str | Path, root: str | None = None) -> TransferOutcome:
    """Copy each student's feedback of ``assignment`` to ``dest/<student>/<assignment>.html``.

    Raises:
        CourseError: an unknown assignment, or no feedback at all.
    """
    from recsys_grader import pending

    layout = CourseLayout.load(root)
    (assignment,) = layout.select([assignment])
    files, without = _feedback_files(layout, assignment)
    if not files:
        raise CourseError(
            f"no feedback for {assignment} in {layout.feedback}: run `recsys-course autograde "
            f"{assignment}` and `recsys-course feedback {assignment}` first"
        )
    dest = Path(dest).expanduser().resolve()
    outcome = TransferOutcome(problems=without)
    outcome.problems += pending.warning_lines(layout, [assignment], None)
    for student, html in files.items():
        target = dest / student / f"{assignment}.html"
        if target.is_file() and filecmp.cmp(html, target, shallow=False):
            outcome.unchanged.append(student)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(html, target)
        outcome.done.append(student)
    return outcome


def return_exchange(
    assignment: str, exchange: str | None = None, root: str | None = None
) -> TransferOutcome:
    """Release the feedback of ``assignment`` through nbgrader's exchange.

    Raises:
        CourseError: when the exchange refuses (the message says why).
    """
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeFactory

    from recsys_grader import pending

    layout = CourseLayout.load(root)
    (assignment,) = layout.select([assignment])
    files, without = _feedback_files(layout, assignment)
    outcome = TransferOutcome(problems=without)
    unmatched = [
        s
        for s, html in files.items()
        if not (html.parent / "timestamp.txt").is_file()
        or not (html.parent / "submission_secret.txt").is_file()
    ]
    if unmatched:
        outcome.problems.append(
            f"not through the exchange (their submissions did not come from it): "
            f"{', '.join(unmatched)}; use --to DIR for them"
        )
    exchange_files = {s: p for s, p in files.items() if s not in unmatched}
    if not exchange_files:
        raise CourseError(
            f"no feedback of {assignment} to release through the exchange (collect with "
            "`--exchange`, then autograde and feedback)"
        )
    config = _nbgrader_config(layout, exchange)
    config.CourseDirectory.student_id_exclude = ",".join(unmatched)
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    releaser = ExchangeFactory(config=config).ReleaseFeedback(
        coursedir=coursedir, authenticator=Authenticator(config=config), config=config
    )
    ok, lines = _capture(releaser)
    if not ok:
        raise CourseError(f"cannot release feedback of {assignment}: {'; '.join(lines)}")
    outcome.problems += lines
    outcome.problems += pending.warning_lines(layout, [assignment], None)
    outcome.done = sorted(exchange_files)
    return outcome


def _print(verb: str, assignment: str, outcome: TransferOutcome) -> None:
    for problem in outcome.problems:
        print(f"warning: {problem}")
    for note in outcome.notes:
        print(f"note: {note}")
    print(
        f"{assignment}: {verb} {len(outcome.done)} ({', '.join(outcome.done) or 'none'}), "
        f"{len(outcome.unchanged)} unchanged"
    )


def _transfer(args, folder: str | None, by_folder, by_exchange, verb: str) -> TransferOutcome:
    """Run the folder or the exchange variant of a verb, as the flags say, and print it."""
    if folder is None and args.exchange is None:
        raise CourseError(f"say where: {'--from' if verb == 'collected' else '--to'} DIR or "
                          "--exchange [ROOT] (nbgrader's exchange)")  # fmt: skip
    if folder is not None:
        outcome = by_folder(args.assignment, folder, args.root)
    else:
        outcome = by_exchange(args.assignment, args.exchange or None, args.root)
    _print(verb, args.assignment, outcome)
    return outcome


def run_collect(args) -> int:
    """CLI entry (``recsys-course collect``): exit 1 when nothing could be collected."""
    outcome = _transfer(args, args.source, collect_folder, collect_exchange, "collected")
    return 0 if outcome.done or outcome.unchanged else 1


def run_return(args) -> int:
    """CLI entry (``recsys-course return-feedback``)."""
    _transfer(args, args.dest, return_folder, return_exchange, "returned feedback to")
    return 0
