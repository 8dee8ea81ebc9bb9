"""``recsys-course report``: ``grades.csv`` and ``report.html`` in ``grading/reports/``.

One CSV row per student x assignment with an explicit ``status`` so that a notebook that could
not run (``failed_to_run``, empty score) is never read as a real 0. Points come from the
gradebook, so manual grades given in formgrader after autograding are included, and a submission
whose written answers are all graded turns from ``needs_manual`` into ``graded``. The HTML page
shows score distributions per module and per exercise as embedded PNG images (matplotlib, Agg).

Example:
    >>> from recsys_grader.report import report
    >>> rows = report()  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import csv
import html
import io
import re
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from recsys_grader import notebooks as nbs
from recsys_grader import results as res
from recsys_grader.layout import CourseError, CourseLayout
from recsys_grader.pending import AWAITING
from recsys_grader.roster import load_roster
from recsys_grader.safe_html import clean

COLUMNS = (
    "student",
    "assignment",
    "status",
    "score",
    "max_score",
    "percent",
    "manual_pending",
    "detail",
)
_SUFFIX = re.compile(r"_(tests|hidden|visible|answer)$")


def exercise_of(grade_id: str) -> str:
    """The exercise of a graded cell: ``00_price_summary_hidden`` -> ``00_price_summary``."""
    return _SUFFIX.sub("", grade_id)


@dataclass
class Row:
    """One line of grades.csv, plus per-cell points for the charts."""

    student: str
    assignment: str
    status: str
    score: float | None
    max_score: float
    manual_pending: int = 0
    detail: str = ""
    cells: dict[str, tuple[float | None, float]] = field(default_factory=dict)

    def csv(self) -> dict[str, str]:
        """The CSV fields (empty score and percent when there is no real score)."""
        score = "" if self.score is None else f"{self.score:g}"
        percent = (
            ""
            if self.score is None or not self.max_score
            else f"{100 * self.score / self.max_score:.1f}"
        )
        return {
            "student": self.student,
            "assignment": self.assignment,
            "status": self.status,
            "score": score,
            "max_score": f"{self.max_score:g}",
            "percent": percent,
            "manual_pending": str(self.manual_pending),
            "detail": self.detail,
        }


def collect(layout: CourseLayout) -> list[Row]:
    """Join the results store, the roster and the gradebook into rows.

    Raises:
        CourseError: when there are no results yet.
    """
    try:
        stored = res.load(layout.results_file)
    except ValueError as exc:
        raise CourseError(str(exc)) from None
    roster = load_roster(layout)
    if not stored and not roster:
        raise CourseError(f"nothing to report: no {layout.results_file} and no roster")
    max_points = {}
    for a in layout.assignments:
        try:
            max_points[a] = nbs.reference(nbs.read_notebook(layout.source_notebook(a))).max_points
        except CourseError:
            max_points[a] = 0.0
    graded_assignments = sorted({a for _, a in stored})  # never-graded modules are not "missing"
    for student in roster:
        for a in graded_assignments:
            if (student, a) not in stored:
                stored[(student, a)] = res.Result(
                    student, a, res.MISSING, None, max_points[a], "no submission"
                )
    rows = []
    with warnings.catch_warnings(), Gradebook(layout.db_url, layout.course_id) as gb:
        warnings.simplefilter("ignore", SAWarning)
        for (student, assignment), r in sorted(stored.items()):
            row = Row(student, assignment, r.status, r.score, r.max_score or 0.0, 0, r.detail)
            if r.status in (res.GRADED, res.NEEDS_MANUAL, res.TAMPERED):
                try:
                    nb_sub = gb.find_submission_notebook(assignment, assignment, student)
                except MissingEntry:
                    row.status, row.score = res.FAILED, None
                    row.detail = "no gradebook entry: run autograde again"
                else:
                    grades = list(nb_sub.grades)
                    # nbgrader's Grade.score is 0.0 for a cell nobody has scored yet: keep
                    # such a cell as None (pending), so charts do not count it as a zero
                    row.cells = {
                        g.name: (
                            None if g.manual_score is None and g.auto_score is None else g.score,
                            float(g.max_score),
                        )
                        for g in grades
                    }
                    row.score = float(sum(g.score or 0.0 for g in grades))
                    row.max_score = float(sum(g.max_score for g in grades))
                    row.manual_pending = sum(bool(g.needs_manual_grade) for g in grades)
                    if r.status != res.TAMPERED:
                        row.status = res.NEEDS_MANUAL if row.manual_pending else res.GRADED
            rows.append(row)
    return rows


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def score_histogram(assignment: str, group: list[Row]):
    """Histogram of the submissions' scores (%); those whose written answers await a grader are
    stacked in their own colour at their score so far. The legend sits outside the axes, so it
    never covers a bar.

    Args:
        assignment: the assignment (title).
        group: its rows (those without a score are left out).

    Returns:
        The matplotlib figure, or None when no row has a score.
    """
    import matplotlib.pyplot as plt

    scored = [r for r in group if r.score is not None and r.max_score]
    if not scored:
        return None
    fig, ax = plt.subplots(figsize=(6, 3))
    done = [100 * r.score / r.max_score for r in scored if r.status != res.NEEDS_MANUAL]
    waiting = [100 * r.score / r.max_score for r in scored if r.status == res.NEEDS_MANUAL]
    ax.hist(
        [done, waiting],
        bins=10,
        range=(0, 100),
        stacked=True,
        color=["tab:blue", "tab:orange"],
        label=["graded", f"{AWAITING} (score so far)"],
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.set_xlabel("score (%)")
    ax.set_ylabel("students")
    ax.set_title(f"{assignment}: score distribution (n={len(scored)})")
    return fig


def exercise_chart(assignment: str, group: list[Row]):
    """Per-exercise scores (%) as box plots. A cell nobody has graded yet is not a zero: an
    exercise shows how many submissions await grading, and one that nobody has graded yet is
    drawn as an "awaiting grading" slot instead of a box.

    Args:
        assignment: the assignment (title).
        group: its rows.

    Returns:
        The matplotlib figure, or None when there is nothing to draw.
    """
    import matplotlib.pyplot as plt

    values: dict[str, list[float]] = defaultdict(list)
    waiting: Counter[str] = Counter()
    for r in group:
        if r.score is None or not r.max_score:
            continue
        totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        open_: set[str] = set()
        for grade_id, (points, maximum) in r.cells.items():
            exercise = exercise_of(grade_id)
            if points is None:
                open_.add(exercise)
                continue
            totals[exercise][0] += points
            totals[exercise][1] += maximum
        for exercise in open_:
            waiting[exercise] += 1
        for exercise, (points, maximum) in totals.items():
            if maximum and exercise not in open_:
                values[exercise].append(100 * points / maximum)
    names = sorted(set(values) | set(waiting))
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(names)), 3.4))
    drawn = [i for i, n in enumerate(names, start=1) if values.get(n)]
    if drawn:
        ax.boxplot([values[names[i - 1]] for i in drawn], positions=drawn, showmeans=True)
    for i, name in enumerate(names, start=1):
        if waiting[name] and not values.get(name):
            ax.axvspan(i - 0.3, i + 0.3, color="tab:orange", alpha=0.15)
            ax.text(i, 50, f"{AWAITING}\n(n={waiting[name]})", ha="center", va="center",
                    fontsize=8, color="tab:orange")  # fmt: skip
    labels = [f"{n}\n({waiting[n]} {AWAITING})" if waiting[n] else n for n in names]
    ax.set_xticks(range(1, len(names) + 1), labels, rotation=20, ha="right")
    ax.set_xlim(0.4, len(names) + 0.6)
    ax.set_ylim(-5, 105)
    ax.set_ylabel("score (%)")
    ax.set_title(f"{assignment}: per-exercise scores (mean = triangle)")
    return fig


def _charts(rows: list[Row]) -> list[tuple[str, str, str]]:
    """(assignment, chart title, base64 PNG) for every assignment with scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts = []
    by_assignment: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_assignment[row.assignment].append(row)
    for assignment, group in sorted(by_assignment.items()):
        for title, build in (
            ("Score distribution", score_histogram),
            ("Per-exercise scores", exercise_chart),
        ):
            fig = build(assignment, group)
            if fig is not None:
                charts.append((assignment, title, _png(fig)))
                plt.close(fig)
    return charts


def _html(rows: list[Row]) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Course grading report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
        ".failed_to_run,.tampered{background:#fdd}.missing{background:#eee}"
        ".needs_manual{background:#ffd}</style></head><body>",
    ]
    head, parts = parts, ["<h1>Course grading report</h1>"]
    parts += [
        "<p>Scores include manual grades entered in formgrader. <b>failed_to_run</b> means the "
        "notebook could not be executed (no score, not a zero); <b>tampered</b> means read-only "
        "or test cells were changed or deleted (tests were restored for the score shown; review "
        "it); <b>needs_manual</b> means written answers await a grader: the charts show them as "
        f"<i>{AWAITING}</i>, never as a zero.</p>",
    ]
    counts = Counter((r.assignment, r.status) for r in rows)
    assignments = sorted({r.assignment for r in rows})
    parts.append("<h2>Status per module</h2><table><tr><th>assignment</th>")
    parts += [f"<th>{s}</th>" for s in res.STATUSES] + ["</tr>"]
    for a in assignments:
        parts.append(f"<tr><td>{esc(a)}</td>")
        parts += [f"<td>{counts.get((a, s), 0)}</td>" for s in res.STATUSES] + ["</tr>"]
    parts.append("</table>")
    for assignment, title, png in _charts(rows):
        parts.append(f"<h2>{esc(assignment)}: {esc(title)}</h2>")
        parts.append(f"<img alt='{esc(title)}' src='data:image/png;base64,{png}'>")
    parts.append("<h2>Grades</h2><table><tr>")
    parts += [f"<th>{c}</th>" for c in COLUMNS] + ["</tr>"]
    for row in rows:
        fields = row.csv()
        parts.append(f"<tr class='{esc(row.status)}'>")
        parts += [f"<td>{esc(fields[c])}</td>" for c in COLUMNS] + ["</tr>"]
    parts.append("</table>")
    # escaped already; cleaned too, as every page that shows submissions' data is
    body = clean("\n".join(parts), classes={"tr": set(res.STATUSES)})
    return "".join(head) + body + "</body></html>\n"


def report(root: str | None = None) -> list[Row]:
    """Write ``grades.csv`` and ``report.html``.

    Args:
        root: course root.

    Returns:
        The rows written.
    """
    layout = CourseLayout.load(root)
    rows = collect(layout)
    layout.reports.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.csv())
    nbs.write_text_if_changed(layout.reports / "grades.csv", buffer.getvalue())
    nbs.write_text_if_changed(layout.reports / "report.html", _html(rows))
    return rows


def run(args) -> int:
    """CLI entry: print where the files are and the status counts."""
    rows = report(args.root)
    layout = CourseLayout.load(args.root)
    counts = Counter(r.status for r in rows)
    print(f"{layout.reports / 'grades.csv'}: {len(rows)} rows")
    print(f"{layout.reports / 'report.html'}")
    print(", ".join(f"{s}: {counts.get(s, 0)}" for s in res.STATUSES))
    return 0
