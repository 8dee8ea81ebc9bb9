"""``recsys-course course`` (what ``make course`` runs): the course's demo, end to end.

The sample students are graded in a demo course root of their own, ``demo/`` next to
``grading/`` (recreated by every run), so the real course's gradebook, roster and reports are
never touched:

1. write ``demo/nbgrader_config.py`` (the course's config with the demo's root, gradebook and
   exchange) and ``demo/roster.csv`` (``grading/samples/roster.csv``);
2. release every assignment (``course/`` and the demo gradebook);
3. copy the sample submissions ``grading/samples/<student>/<assignment>/`` into
   ``demo/submitted/``;
4. autograde the assignments the samples cover (sandboxed, parallel);
5. write feedback and the report;
6. print the grade table, compare it with ``grading/samples/expected.csv``, and say what to do
   next (where the report is, grading written answers in the formgrader, a real class).

Example:
    >>> from recsys_grader.mainjob import run
    >>> run()  # doctest: +SKIP
    0
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from recsys_grader import autograde as ag
from recsys_grader import feedback as fb
from recsys_grader import notebooks as nbs
from recsys_grader import pending
from recsys_grader import release as rel
from recsys_grader import report as rep
from recsys_grader.layout import CONFIG_NAME, CourseError, CourseLayout
from recsys_grader.sandbox import Limits, sandbox_support

#: Limits for the samples: Module 0 runs in seconds, so a short per-cell limit keeps the
#: infinite-loop sample cheap; 2 GiB is ample for pandas and stops the memory hog quickly.
SAMPLE_LIMITS = Limits(cell_timeout=10, notebook_timeout=300, memory_mb=2048)
#: The demo course root, next to the real one.
DEMO_DIR = "demo"
_MARKER = "# recsys-course demo course root"
#: Runtime state of the demo, removed before each run (the demo always starts fresh).
_DEMO_STATE = ("gradebook.db", "submitted", "autograded", "feedback", "reports", "exchange")

_DEMO_CONFIG = '''{marker}: written by `recsys-course course` (make course); safe to delete.
"""The demo course: the sample students, graded apart from the real course ({real}).

Every `make course` recreates this folder. Its gradebook, roster, submissions and reports are
the demo's own; the source and release folders are the real course's.
"""

import os

c = get_config()  # noqa: F821
_HERE = os.path.dirname(os.path.abspath(__file__))
load_subconfig(os.path.join(_HERE, {real_config!r}))  # noqa: F821
c.CourseDirectory.root = _HERE
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_HERE, "gradebook.db")
c.Exchange.root = os.path.join(_HERE, "exchange")
os.makedirs(c.Exchange.root, exist_ok=True)
'''


def demo_layout(real: CourseLayout) -> CourseLayout:
    """Create (or reset) the demo course root next to ``real`` and return its layout.

    Args:
        real: the real course (``grading/``).

    Returns:
        The demo course's layout (root ``<repository>/demo``).

    Raises:
        CourseError: when ``real`` is itself a demo root, or the samples have no roster.
    """
    if _MARKER in (real.root / CONFIG_NAME).read_text(encoding="utf-8"):
        raise CourseError(
            f"{real.root} is the demo course root: run `recsys-course course` with the real "
            "course root (default grading/)"
        )
    demo = real.root.parent / DEMO_DIR
    config = demo / CONFIG_NAME
    ours = config.is_file() and _MARKER in config.read_text(encoding="utf-8")
    if demo.exists() and any(demo.iterdir()) and not ours:
        raise CourseError(
            f"{demo} exists and is not a demo course written by `recsys-course course`: "
            "move it away (nothing there is deleted)"
        )
    roster = real.root / "samples" / "roster.csv"
    if not roster.is_file():
        raise CourseError(f"no {roster}: run `python grading/make_samples.py`")
    demo.mkdir(exist_ok=True)
    for name in _DEMO_STATE:
        path = demo / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    text = _DEMO_CONFIG.format(
        marker=_MARKER,
        real=real.root,
        real_config=os.path.relpath(real.root / CONFIG_NAME, demo),
    )
    nbs.write_text_if_changed(config, text)
    nbs.write_text_if_changed(demo / "roster.csv", roster.read_text(encoding="utf-8"))
    layout = CourseLayout.load(demo)
    if layout.source != real.source or layout.release != real.release:
        raise CourseError(
            f"the demo root {demo} does not see the course's source and release folders "
            f"({layout.source}, {layout.release}): keep grading/ next to solutions/ and course/"
        )
    return layout


def copy_samples(real: CourseLayout, demo: CourseLayout) -> tuple[list[str], list[str]]:
    """Copy ``<real root>/samples/<student>/<assignment>`` into the demo's ``submitted/``.

    Returns:
        (sample students, assignments they cover).

    Raises:
        CourseError: when there are no samples.
    """
    samples = real.root / "samples"
    folders = sorted(p for p in samples.glob("*/*") if p.is_dir())
    if not folders:
        raise CourseError(f"no samples in {samples}: run `python grading/make_samples.py`")
    students, assignments = set(), set()
    for folder in folders:
        student, assignment = folder.parent.name, folder.name
        target = demo.submitted / student / assignment
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(folder, target)
        students.add(student)
        assignments.add(assignment)
    return sorted(students), sorted(assignments)


def expected_outcomes(real: CourseLayout) -> dict[tuple[str, str], tuple[str, str]]:
    """{(student, assignment): (status, score text)} from ``samples/expected.csv``."""
    path = real.root / "samples" / "expected.csv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {
            (r["student"], r["assignment"]): (r["status"], r["score"]) for r in csv.DictReader(fh)
        }


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it lies below it (shorter to read)."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def next_steps(real: CourseLayout, demo: CourseLayout, assignment: str) -> list[str]:
    """The lines printed after the demo: where things are and how to grade a real class."""
    d = _shown(demo.root)
    repo = real.root.parent
    bin_dir = Path(sys.executable).parent
    jupyter = bin_dir / "jupyter"
    if jupyter.is_relative_to(repo):
        jupyter = jupyter.relative_to(repo)
    return [
        f"This was the demo: the sample students were graded in {d}/ (recreated by every "
        f"`make course`); the real course in {_shown(real.root)}/ was not touched.",
        f"* Report: {d}/reports/report.html (and grades.csv); "
        f"feedback: {d}/feedback/<student>/{assignment}/",
        "* Written answers are graded by a person, in the formgrader: from "
        f"{_shown(repo) if repo != Path.cwd() else 'here'}, "
        f"RECSYS_COURSE_ROOT={os.path.relpath(demo.root, repo)} {jupyter} lab, then Nbgrader > "
        f"Formgrader > Manual Grading; then `recsys-course --root {d} feedback` and `... report`.",
        "* A real class (README, 'Teaching a real class'): recsys-course import-roster "
        f"class.csv; collect {assignment} --from DIR (or --exchange); autograde {assignment}; "
        f"grade written answers in the formgrader; feedback {assignment}; return-feedback "
        f"{assignment} --to DIR (or --exchange); export-grades grades.csv",
    ]


def run(
    limits: Limits | None = None,
    workers: int | None = None,
    root: str | None = None,
    log: Callable[[str], None] = print,
) -> int:
    """Run the demo.

    Args:
        limits: sandbox limits (default SAMPLE_LIMITS).
        workers: parallel executions.
        root: the real course root (default ``grading/``); the demo goes next to it.
        log: where lines go.

    Returns:
        0 when every step worked and every sample ended as expected, else 1.
    """
    real = CourseLayout.load(root)
    layout = demo_layout(real)
    demo_root = str(layout.root)
    ok = True
    log(f"== release (demo course root: {_shown(layout.root)})")
    for assignment in layout.select(None):
        try:
            outcome = rel.release_assignment(layout, assignment, check=False)
        except CourseError as exc:
            log(f"{assignment}: release FAILED: {exc}")
            ok = False
            continue
        log(f"{assignment}: {len(outcome.changed)} written, {len(outcome.unchanged)} unchanged")
    log("== samples")
    students, assignments = copy_samples(real, layout)
    log(f"copied {len(students)} sample submissions for {', '.join(assignments)}")
    log("== autograde")
    available, why = sandbox_support()
    if not available:  # the samples are the course's own notebooks: grading them is safe
        log(f"warning: no sandbox here ({why}); grading the course's own samples without one")
    results = ag.autograde(
        assignments, None, limits or SAMPLE_LIMITS, workers, demo_root, log, insecure=not available
    )
    log("== feedback")
    for o in fb.feedback(assignments, None, demo_root):
        if o.path is None and not o.problem.startswith(("failed_to_run", "missing")):
            log(f"{o.student}/{o.assignment}: feedback FAILED: {o.problem}")
            ok = False
    log(f"feedback in {_shown(layout.feedback)}")
    for line in pending.warning_lines(layout, assignments, None):
        log(f"note: {line}")
    log("== report")
    rep.report(demo_root)
    log(f"{_shown(layout.reports / 'grades.csv')} and {_shown(layout.reports / 'report.html')}")
    log("== grades")
    ag.print_table(results, log)
    expected = expected_outcomes(real)
    by_key = {r.key: r for r in results}
    for key, (status, score) in sorted(expected.items()):
        got = by_key.get(key)
        got_score = "" if got is None or got.score is None else f"{got.score:g}"
        if got is None or got.status != status or got_score != score:
            shown = "nothing" if got is None else f"{got.status} {got_score}".strip()
            log(
                f"UNEXPECTED {key[0]}/{key[1]}: expected {status} {score}".rstrip()
                + f", got {shown}"
            )
            ok = False
    log("all samples ended as expected" if ok else "main job finished with problems (see above)")
    log("== next steps")
    for line in next_steps(real, layout, assignments[0]):
        log(line)
    return 0 if ok else 1


def main_cli(args) -> int:
    """CLI entry (``recsys-course course``)."""
    return run(ag.limits_from(args), args.workers, args.root)
