"""The ``recsys-course`` command: argument parsing and dispatch to one module per verb.

Exit codes: 0 success; 1 the verb ran and found a failure (out-of-date release, invalid
notebook, leaked hidden test, unrecorded grade); 2 bad usage or configuration (the message names
the problem and the fix).

Example:
    >>> from recsys_grader.cli import main
    >>> main(["release", "--check"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import importlib
import sys

from recsys_grader.layout import CourseError

#: verb -> (module in recsys_grader, help); the module's ``run(args)`` runs it unless ENTRY says
VERBS = {
    "release": ("release", "generate the student notebooks into course/ (nbgrader)"),
    "validate": ("validate", "solutions score full marks, untouched releases score zero"),
    "import-roster": ("roster", "merge a class roster CSV into roster.csv and the gradebook"),
    "collect": ("collect", "bring submissions into submitted/ from a folder or the exchange"),
    "autograde": ("autograde", "grade every submission in grading/submitted/ in a sandbox"),
    "merge": ("merge", "merge shards' results.json and gradebook.db into the course root"),
    "feedback": ("feedback", "per-student HTML feedback without hidden tests"),
    "return-feedback": ("collect", "hand the feedback back: to a folder or the exchange"),
    "report": ("report", "grading/reports/grades.csv and report.html"),
    "check-tests": (
        "checktests",
        "grade mutants, wrong answers and alternatives: how much the hidden tests reject",
    ),
    "export-grades": ("gradesheet", "one row per student, one column per assignment (LMS CSV)"),
    "export-student": ("export_student", "write the student-facing repository to a folder"),
    "course": ("mainjob", "the demo: release, grade the samples in demo/, feedback, report"),
}
#: verbs whose entry point is not ``run``
ENTRY = {"course": "main_cli", "collect": "run_collect", "return-feedback": "run_return"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every verb."""
    from recsys_grader.autograde import add_limit_arguments

    parser = argparse.ArgumentParser(
        prog="recsys-course",
        description="Course machinery of 'LLM-powered e-commerce search and recommendation'.",
        epilog="Exit codes: 0 ok, 1 a check failed, 2 usage or configuration error.",
    )
    parser.add_argument(
        "--root", default=None, help="nbgrader course root (default: grading/ of the repository)"
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, (_, help_text) in VERBS.items():
        p = sub.add_parser(verb, help=help_text, description=help_text)
        p.set_defaults(verb=verb)
        # also accepted after the verb; SUPPRESS keeps a value given before it
        p.add_argument("--root", default=argparse.SUPPRESS, help="nbgrader course root")
        if verb in ("import-roster", "export-grades"):
            what = "CSV with a header row (an LMS export)" if verb == "import-roster" else "the CSV"
            p.add_argument("file", metavar="FILE", help=what)
        if verb in ("release", "validate", "autograde", "feedback", "export-grades", "check-tests"):
            p.add_argument(
                "assignments",
                nargs="*",
                metavar="ASSIGNMENT",
                help="assignment names (default: all)",
            )
        if verb == "release":
            p.add_argument(
                "--check",
                action="store_true",
                help="change nothing; exit 1 listing notebooks that are out of date",
            )
        if verb in ("validate", "autograde"):
            add_limit_arguments(p)
        if verb == "course":
            from recsys_grader.mainjob import SAMPLE_LIMITS

            add_limit_arguments(p, SAMPLE_LIMITS)
        if verb == "autograde":
            p.add_argument(
                "--cluster",
                default=None,
                metavar="ADDRESS",
                help="grade on a Dask cluster: its scheduler address (tcp://host:8786), or "
                "local:N for N worker processes here; --workers is then per worker",
            )
        if verb in ("autograde", "feedback"):
            p.add_argument(
                "--student",
                action="append",
                default=None,
                metavar="ID",
                help="only this student (repeatable)",
            )
        if verb == "check-tests":
            from recsys_grader.checktests import MAX_MUTANTS, MIN_REJECTED

            p.add_argument(
                "--max-mutants",
                type=int,
                default=MAX_MUTANTS,
                metavar="N",
                help=f"mutants per exercise, chosen deterministically (default {MAX_MUTANTS}; "
                "0: all)",
            )
            p.add_argument(
                "--min-rejected",
                type=float,
                default=MIN_REJECTED,
                metavar="SHARE",
                help=f"share a module's tests must reject (default {MIN_REJECTED})",
            )
            p.add_argument(
                "--jobs", type=int, default=None, metavar="N", help="assignments at once"
            )
            p.add_argument(
                "--exercise",
                action="append",
                default=None,
                metavar="GRADE_ID",
                help="only this exercise (repeatable), e.g. 06_prf",
            )
        if verb == "import-roster":
            p.add_argument(
                "--id-column", default=None, metavar="NAME", help="header of the student id column"
            )
            p.add_argument(
                "--replace", action="store_true", help="drop roster students absent from FILE"
            )
        if verb in ("collect", "return-feedback"):
            p.add_argument("assignment", metavar="ASSIGNMENT")
            where = p.add_mutually_exclusive_group()
            if verb == "collect":
                where.add_argument(
                    "--from",
                    dest="source",
                    default=None,
                    metavar="DIR",
                    help="folder of student folders: DIR/<student>/<assignment>.ipynb",
                )
            else:
                where.add_argument(
                    "--to",
                    dest="dest",
                    default=None,
                    metavar="DIR",
                    help="write DIR/<student>/<assignment>.html",
                )
            where.add_argument(
                "--exchange",
                nargs="?",
                const="",
                default=None,
                metavar="ROOT",
                help="nbgrader's exchange (default: Exchange.root of the course config)",
            )
        if verb == "export-grades":
            p.add_argument(
                "--missing-as-zero",
                action="store_true",
                help="write 0 (not empty) for a roster student who submitted nothing",
            )
        if verb == "merge":
            p.add_argument(
                "shards",
                nargs="+",
                metavar="SHARD_DIR",
                help="folder holding a shard's results.json and gradebook.db (docs/deploy.md)",
            )
        if verb == "export-student":
            p.add_argument("dest", metavar="DIR", help="folder to create (must be new or empty)")
            p.add_argument(
                "--force", action="store_true", help="replace DIR if it holds a previous export"
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command.

    Args:
        argv: arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    try:
        import nbgrader  # noqa: F401
    except ImportError:  # the student install: say how to get the grader's dependencies
        print(
            "recsys-course needs the instructor extra (nbgrader): run "
            '`pip install -e ".[instructor]"` from the course repository',
            file=sys.stderr,
        )
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(f"recsys_grader.{VERBS[args.verb][0]}")
    entry = getattr(module, ENTRY.get(args.verb, "run"))
    try:
        return int(entry(args))
    except CourseError as exc:
        print(f"recsys-course {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"recsys-course {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
