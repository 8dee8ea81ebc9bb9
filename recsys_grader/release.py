"""``recsys-course release``: generate the student versions of the notebooks into ``course/``.

nbgrader's ``generate_assignment`` writes into a temporary folder (and records the assignment in
the gradebook); the notebooks are then normalised (no outputs, execution counts, editor metadata
or timestamps; stable cell ids) and copied to ``course/`` only when their bytes change, so a
release of unchanged solutions is byte-identical. ``--check`` changes nothing (not even the
gradebook) and lists what is out of date.

Example:
    >>> from recsys_grader.release import release
    >>> outcomes = release(check=True)  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.converters import GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import SaveCells
from nbgrader.utils import capture_log

from recsys_grader import notebooks as nbs
from recsys_grader.layout import CourseError, CourseLayout

_IGNORED = {".ipynb_checkpoints", "__pycache__", ".DS_Store"}


@dataclass
class ReleaseOutcome:
    """What a release (or check) of one assignment found.

    Attributes:
        assignment: the assignment name.
        changed: files (relative to ``course/``) written, or out of date with ``check``.
        removed: stale files deleted, or that would be deleted with ``check``.
        unchanged: files already up to date.
    """

    assignment: str
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        """True when ``course/`` already held exactly this release."""
        return not self.changed and not self.removed


def generate(layout: CourseLayout, assignment: str, record: bool) -> dict[str, bytes]:
    """Run nbgrader generate_assignment into a temporary folder and normalise its output.

    Args:
        layout: the course.
        assignment: assignment name.
        record: whether nbgrader records the assignment in the gradebook.

    Returns:
        {path relative to the assignment folder: file bytes}.

    Raises:
        CourseError: with nbgrader's log when generation fails.
    """
    if not layout.source_notebook(assignment).is_file():
        raise CourseError(f"missing source notebook {layout.source_notebook(assignment)}")
    with tempfile.TemporaryDirectory(prefix="recsys-release-") as tmp:
        config = layout.nbgrader_config(release_directory=tmp)
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id = assignment
        app = GenerateAssignment(coursedir=coursedir, config=config)
        app.force = True
        app.create_assignment = True
        app.no_database = not record
        if not record:  # nbgrader 0.9.6 still runs SaveCells (a database write) without this
            app.preprocessors = [pp for pp in app.preprocessors if pp is not SaveCells]
        result = capture_log(app)
        if not result["success"]:
            raise CourseError(
                f"nbgrader generate_assignment failed for {assignment}:\n"
                f"{result.get('log', '')}{result.get('error', '')}"
            )
        out_dir = Path(tmp) / assignment
        files: dict[str, bytes] = {}
        for path in sorted(out_dir.rglob("*")):
            if not path.is_file() or _IGNORED & set(path.relative_to(out_dir).parts):
                continue
            rel = path.relative_to(out_dir).as_posix()
            if path.suffix == ".ipynb":
                files[rel] = nbs.dumps(nbs.normalise(nbs.read_notebook(path))).encode("utf-8")
            else:
                files[rel] = path.read_bytes()
    return files


def _existing(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {
        p.relative_to(folder).as_posix(): p
        for p in folder.rglob("*")
        if p.is_file() and not _IGNORED & set(p.relative_to(folder).parts)
    }


def release_assignment(layout: CourseLayout, assignment: str, check: bool) -> ReleaseOutcome:
    """Release (or check) one assignment.

    Args:
        layout: the course.
        assignment: assignment name.
        check: compare only; write nothing and leave the gradebook alone.

    Returns:
        The outcome, with paths relative to ``course/``.
    """
    wanted = generate(layout, assignment, record=not check)
    folder = layout.release / assignment
    present = _existing(folder)
    outcome = ReleaseOutcome(assignment)
    for rel, data in wanted.items():
        target = folder / rel
        shown = f"{assignment}/{rel}"
        if rel in present and present[rel].read_bytes() == data:
            outcome.unchanged.append(shown)
            continue
        outcome.changed.append(shown)
        if not check:
            if target.suffix == ".ipynb":
                nbs.write_text_if_changed(target, data.decode("utf-8"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
    for rel in sorted(set(present) - set(wanted)):
        outcome.removed.append(f"{assignment}/{rel}")
        if not check:
            present[rel].unlink()
    return outcome


def release(
    assignments: list[str] | None = None, check: bool = False, root: str | None = None
) -> list[ReleaseOutcome]:
    """Release or check several assignments (all by default).

    Args:
        assignments: names, or None for every assignment of the course.
        check: compare only.
        root: course root (default ``grading/``).

    Returns:
        One outcome per assignment.
    """
    layout = CourseLayout.load(root)
    return [release_assignment(layout, a, check) for a in layout.select(assignments)]


def run(args) -> int:
    """CLI entry: print one line per file that changed; exit 1 on ``--check`` drift."""
    outcomes = release(args.assignments, check=args.check, root=args.root)
    stale = False
    for outcome in outcomes:
        if args.check:
            for path in outcome.changed:
                print(f"out of date: course/{path}")
            for path in outcome.removed:
                print(f"stale (not in solutions/): course/{path}")
            stale |= not outcome.in_sync
            if outcome.in_sync:
                print(f"{outcome.assignment}: in sync")
        else:
            for path in outcome.changed:
                print(f"written: course/{path}")
            for path in outcome.removed:
                print(f"removed: course/{path}")
            print(
                f"{outcome.assignment}: {len(outcome.changed)} written, "
                f"{len(outcome.removed)} removed, {len(outcome.unchanged)} unchanged"
            )
    if stale:
        print("course/ is out of date with solutions/: run `recsys-course release`")
        return 1
    return 0
