"""``recsys-course course`` (what ``make course`` runs): the course's main job, end to end.

1. release every assignment (``course/`` and the gradebook);
2. copy the sample submissions ``grading/samples/<student>/<assignment>/`` into
   ``grading/submitted/`` (fresh copies of the sample students only: real submissions of other
   students are left alone);
3. autograde the assignments the samples cover (sandboxed, parallel);
4. write feedback and the report;
5. print the grade table and compare it with ``grading/samples/expected.csv``.

Example:
    >>> from recsys_grader.mainjob import run
    >>> run()  # doctest: +SKIP
    0
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable

from recsys_grader import autograde as ag
from recsys_grader import feedback as fb
from recsys_grader import release as rel
from recsys_grader import report as rep
from recsys_grader.layout import CourseError, CourseLayout
from recsys_grader.sandbox import Limits, sandbox_support

#: Limits for the samples: Module 0 runs in seconds, so a short per-cell limit keeps the
#: infinite-loop sample cheap; 2 GiB is ample for pandas and stops the memory hog quickly.
SAMPLE_LIMITS = Limits(cell_timeout=10, notebook_timeout=300, memory_mb=2048)


def copy_samples(layout: CourseLayout) -> tuple[list[str], list[str]]:
    """Replace ``submitted/<student>/<assignment>`` by each sample's fresh copy.

    Returns:
        (sample students, assignments they cover).

    Raises:
        CourseError: when there are no samples.
    """
    samples = layout.root / "samples"
    folders = sorted(p for p in samples.glob("*/*") if p.is_dir())
    if not folders:
        raise CourseError(f"no samples in {samples}: run `python grading/make_samples.py`")
    students, assignments = set(), set()
    for folder in folders:
        student, assignment = folder.parent.name, folder.name
        target = layout.submitted / student / assignment
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(folder, target)
        students.add(student)
        assignments.add(assignment)
    return sorted(students), sorted(assignments)


def expected_outcomes(layout: CourseLayout) -> dict[tuple[str, str], tuple[str, str]]:
    """{(student, assignment): (status, score text)} from ``samples/expected.csv``."""
    path = layout.root / "samples" / "expected.csv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {
            (r["student"], r["assignment"]): (r["status"], r["score"]) for r in csv.DictReader(fh)
        }


def run(
    limits: Limits | None = None,
    workers: int | None = None,
    root: str | None = None,
    log: Callable[[str], None] = print,
) -> int:
    """Run the main job.

    Args:
        limits: sandbox limits (default SAMPLE_LIMITS).
        workers: parallel executions.
        root: course root.
        log: where lines go.

    Returns:
        0 when every step worked and every sample ended as expected, else 1.
    """
    layout = CourseLayout.load(root)
    ok = True
    log("== release")
    for assignment in layout.select(None):
        try:
            outcome = rel.release_assignment(layout, assignment, check=False)
        except CourseError as exc:
            log(f"{assignment}: release FAILED: {exc}")
            ok = False
            continue
        log(f"{assignment}: {len(outcome.changed)} written, {len(outcome.unchanged)} unchanged")
    log("== samples")
    students, assignments = copy_samples(layout)
    log(f"copied {len(students)} sample submissions for {', '.join(assignments)}")
    log("== autograde")
    available, why = sandbox_support()
    if not available:  # the samples are the course's own notebooks: grading them is safe
        log(f"warning: no sandbox here ({why}); grading the course's own samples without one")
    results = ag.autograde(
        assignments, None, limits or SAMPLE_LIMITS, workers, root, log, insecure=not available
    )
    log("== feedback")
    for o in fb.feedback(assignments, None, root):
        if o.path is None and not o.problem.startswith(("failed_to_run", "missing")):
            log(f"{o.student}/{o.assignment}: feedback FAILED: {o.problem}")
            ok = False
    log(f"feedback in {layout.feedback}")
    log("== report")
    rep.report(root)
    log(f"{layout.reports / 'grades.csv'} and {layout.reports / 'report.html'}")
    log("== grades")
    ag.print_table(results, log)
    expected = expected_outcomes(layout)
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
    return 0 if ok else 1


def main_cli(args) -> int:
    """CLI entry (``recsys-course course``)."""
    return run(ag.limits_from(args), args.workers, args.root)
