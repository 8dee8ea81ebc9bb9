"""A real class, end to end, on a copy of the course (``recsys-course`` only, as documented).

Three students: the instructor imports the roster CSV exported from an LMS, releases Module 0
through nbgrader's exchange, alice and bob fetch and submit through it (nbgrader's own student
commands), chen hands in a misnamed notebook by e-mail (collected from a folder); the instructor
collects, grades, finds the written answers pending in the feedback, grades one, returns the
feedback (through the exchange, and to a folder for chen) and exports the grades for the LMS.
The other tests cover what must be reported rather than ignored, and what must never be lost.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
from coursecopy import A, copy_course, sample_text, submit
from nbgrader.api import Gradebook
from traitlets.config import Config

from recsys_grader import results as res
from recsys_grader.cli import main
from recsys_grader.layout import CourseLayout
from recsys_grader.release import release
from recsys_grader.roster import read_roster
from recsys_grader.sandbox import Limits

LIMITS = Limits(cell_timeout=20, notebook_timeout=240, memory_mb=2048)
LIMIT_ARGS = ["--cell-timeout", "20", "--notebook-timeout", "240", "--workers", "2"]
LMS_EXPORT = (
    "Student ID,First Name,Last Name,Email,Section\n"
    "alice,Alice,Anders,alice@example.edu,A\n"
    "bob,Bob,Brown,bob@example.edu,A\n"
    "chen,Chen,Wei,chen@example.edu,B\n"
)


def _exchange_app(kind: str, config: Config, assignment: str = A):
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeFactory

    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    factory = getattr(ExchangeFactory(config=config), kind)
    return factory(coursedir=coursedir, authenticator=Authenticator(config=config), config=config)


def _student_config(exchange: Path, home: Path, student: str) -> Config:
    config = Config()
    config.Exchange.root = str(exchange)
    config.Exchange.cache = str(home / ".cache")
    config.Exchange.assignment_dir = str(home)
    config.CourseDirectory.root = str(home)
    config.CourseDirectory.course_id = "recsys_course"
    config.CourseDirectory.student_id = student
    return config


def _as_student(exchange: Path, home: Path, student: str, answers: str) -> None:
    """What a student does in JupyterLab's Assignments tab: fetch, work, submit."""
    home.mkdir(parents=True)
    config = _student_config(exchange, home, student)
    _exchange_app("FetchAssignment", config).start()
    (home / A / f"{A}.ipynb").write_text(answers, encoding="utf-8")
    _exchange_app("Submit", config).start()


def _cli(root: Path, *args: str) -> int:
    return main(["--root", str(root), *args])


def _grade_written_answer(root: Path, student: str, points: float) -> None:
    """What a TA does in the formgrader (tests/test_browser.py does it in the real UI)."""
    layout = CourseLayout.load(root)
    with warnings.catch_warnings(), Gradebook(layout.db_url, layout.course_id) as gb:
        warnings.simplefilter("ignore")
        grade = gb.find_grade("00_metric_answer", A, A, student)
        grade.manual_score, grade.needs_manual_grade = points, False
        gb.db.commit()


@pytest.mark.notebooks
@pytest.mark.slow
def test_a_real_class_of_three_students(tmp_path, capsys):
    root = copy_course(tmp_path / "repo")
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    roster_csv = tmp_path / "lms_export.csv"
    roster_csv.write_text(LMS_EXPORT, encoding="utf-8")

    # 1. roster: recognised columns, recorded in roster.csv and the gradebook
    assert _cli(root, "import-roster", str(roster_csv)) == 0
    assert [s.student_id for s in read_roster(CourseLayout.load(root))] == ["alice", "bob", "chen"]
    assert read_roster(CourseLayout.load(root))[2].email == "chen@example.edu"
    layout = CourseLayout.load(root)
    with warnings.catch_warnings(), Gradebook(layout.db_url, layout.course_id) as gb:
        warnings.simplefilter("ignore")
        assert sorted(s.id for s in gb.students) == ["alice", "bob", "chen"]
        assert gb.find_student("bob").last_name == "Brown"

    # 2. release to the exchange; alice and bob submit through it, chen by e-mail
    assert _cli(root, "release", A) == 0
    instructor = layout.nbgrader_config()
    instructor.Exchange.root = str(exchange)
    _exchange_app("ReleaseAssignment", instructor).start()
    _as_student(exchange, tmp_path / "alice", "alice", sample_text("perfect"))
    _as_student(exchange, tmp_path / "bob", "bob", sample_text("partial"))
    inbox = tmp_path / "inbox"
    (inbox / "chen").mkdir(parents=True)
    (inbox / "chen" / f"{A} (1).ipynb").write_text(sample_text("partial"), encoding="utf-8")

    capsys.readouterr()
    assert _cli(root, "collect", A, "--exchange", str(exchange)) == 0
    out = capsys.readouterr().out
    assert "collected 2 (alice, bob)" in out and "1 roster student(s) submitted nothing" in out
    assert _cli(root, "collect", A, "--from", str(inbox)) == 0
    out = capsys.readouterr().out
    assert f"chen: collected {A} (1).ipynb as {A}.ipynb" in out and "collected 1 (chen)" in out
    assert _cli(root, "collect", A, "--from", str(inbox)) == 0  # again: nothing new
    assert "collected 0 (none), 1 unchanged" in capsys.readouterr().out

    # 3. grade; the written answers await a TA, and the feedback says so
    assert _cli(root, "autograde", A, *LIMIT_ARGS) == 0
    stored = res.load(layout.results_file)
    got = {s: (r.status, r.score) for (s, _), r in stored.items()}
    assert got == {
        "alice": (res.NEEDS_MANUAL, 11.0),
        "bob": (res.GRADED, 4.0),
        "chen": (res.GRADED, 4.0),
    }
    capsys.readouterr()
    assert _cli(root, "feedback", A) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "awaiting grading (alice)" in out
    html = (root / "feedback" / "alice" / A / f"{A}.html").read_text()
    assert "Awaiting grading (2.0 points)" in html and "2.0 points awaiting grading" in html
    assert "Written response</a> (Score: 0.0" not in html

    # 4. the TA grades alice's written answer; feedback again: no warning, a real score
    _grade_written_answer(root, "alice", 2.0)
    assert _cli(root, "feedback", A) == 0
    out = capsys.readouterr().out
    assert "awaiting grading" not in out
    html = (root / "feedback" / "alice" / A / f"{A}.html").read_text()
    assert "Awaiting grading" not in html and "Score: 13.0 / 13.0" in html

    # 5. return the feedback: through the exchange (alice, bob), to a folder (chen)
    assert _cli(root, "return-feedback", A, "--exchange", str(exchange)) == 0
    out = capsys.readouterr().out
    assert "returned feedback to 2 (alice, bob)" in out and "chen" in out  # chen: not exchange
    fetched = {}
    for student in ("alice", "bob"):
        config = _student_config(exchange, tmp_path / student, student)
        _exchange_app("FetchFeedback", config).start()
        (fetched[student],) = (tmp_path / student / A / "feedback").glob(f"*/{A}.html")
    assert "Score: 13.0 / 13.0" in fetched["alice"].read_text()
    outbox = tmp_path / "outbox"
    assert _cli(root, "return-feedback", A, "--to", str(outbox)) == 0
    assert sorted(p.parent.name for p in outbox.glob(f"*/{A}.html")) == ["alice", "bob", "chen"]

    # 6. grades for the LMS: one row per student, points only where final
    assert _cli(root, "report") == 0
    sheet = tmp_path / "lms_grades.csv"
    assert _cli(root, "export-grades", str(sheet)) == 0
    with open(sheet, newline="") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh)}
    column = f"{A} (13 pts)"
    assert {s: rows[s][column] for s in rows} == {"alice": "13", "bob": "4", "chen": "4"}
    assert rows["chen"]["email"] == "chen@example.edu" and rows["alice"]["notes"] == ""


@pytest.mark.notebooks
def test_nothing_is_lost_and_nothing_is_silently_ignored(tmp_path, capsys):
    """Bad input is reported; a run that does not see a submission never downgrades its grade;
    the formgrader's Autograde action goes through the same sandboxed, trusted grader."""
    root = copy_course(tmp_path)
    release(root=str(root))
    (tmp_path / "class.csv").write_text("student_id\nalice\nbob\n")
    assert _cli(root, "import-roster", str(tmp_path / "class.csv")) == 0
    capsys.readouterr()

    # nothing submitted: said so; asking for something specific is an error; nothing recorded
    assert _cli(root, "autograde") == 0
    assert "nothing to grade" in capsys.readouterr().out
    assert _cli(root, "autograde", A) == 1
    assert _cli(root, "autograde", "--student", "alice") == 1
    assert "nothing to grade" in capsys.readouterr().out
    assert not (root / "reports" / "results.json").exists()
    # an unknown student is an error, and leaves no phantom row anywhere
    assert _cli(root, "autograde", "--student", "nobody") == 2
    assert "unknown student(s) nobody" in capsys.readouterr().err
    assert _cli(root, "report") == 0  # nothing graded yet: an empty report
    assert not (root / "reports" / "results.json").exists()
    assert "nobody" not in (root / "reports" / "grades.csv").read_text()

    # alice is graded through the formgrader's Autograde action (nbgrader's API, as its button)
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    submit(root, "alice", sample_text("perfect"))
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.merge(Config({"TrustedAutograde": {"cell_timeout": 20, "notebook_timeout": 240}}))
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    outcome = api.autograde(A, "alice")
    assert outcome["success"], outcome.get("error") or outcome.get("log")
    assert "recsys-course autograde" in outcome["log"]
    stored = res.load(CourseLayout.load(root).results_file)
    assert (stored[("alice", A)].status, stored[("alice", A)].score) == (res.NEEDS_MANUAL, 11.0)
    graded = json.loads((root / "autograded" / "alice" / A / f"{A}.ipynb").read_text())
    assert "BEGIN HIDDEN TESTS" in json.dumps(graded)  # the judge's annotated notebook

    # alice's folder is gone from this machine (a shard, a clean-up); bob misnames his folder;
    # eve is not on the roster; a notebook sits loose in a student folder
    shutil.rmtree(root / "submitted" / "alice")
    submit(root, "bob", sample_text("partial"), assignment="00_orientaton")
    submit(root, "eve", sample_text("partial"))
    (root / "submitted" / "eve" / f"{A}.ipynb").write_text(sample_text("partial"))
    capsys.readouterr()
    assert _cli(root, "autograde", *LIMIT_ARGS) == 0
    out = capsys.readouterr().out
    assert "00_orientaton: not an assignment of this course" in out
    assert f"did you mean {A}?" in out
    assert "eve submitted 00_orientation but is not on the roster" in out
    assert "a notebook must sit in its assignment's folder: move it to" in out
    stored = res.load(CourseLayout.load(root).results_file)
    assert stored[("alice", A)].status == res.NEEDS_MANUAL  # not downgraded to missing
    assert stored[("bob", A)].status == res.MISSING  # reported above, no earlier grade
    assert stored[("eve", A)].status == res.GRADED
    assert _cli(root, "report") == 0
    with open(root / "reports" / "grades.csv", newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"alice", "bob", "eve"} and rows["alice"]["score"] == "11"


def test_import_roster_rejects_bad_files_and_changes_nothing(tmp_path, capsys):
    root = copy_course(tmp_path)
    before = (root / "roster.csv").read_bytes()
    cases = {
        "no_id.csv": ("Name,Email\nAlice,a@x\n", "no student id column"),
        "bad_id.csv": ("student_id\nalice\nbad id!\n", "line 3: invalid student id 'bad id!'"),
        "dupe.csv": ("Username\nalice\nalice\n", "'alice' already on line 2"),
        "empty.csv": ("student_id\n", "lists no students"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        assert _cli(root, "import-roster", str(tmp_path / name)) == 2, name
        assert message in capsys.readouterr().err, name
    assert (root / "roster.csv").read_bytes() == before
    assert not (root / "gradebook.db").exists()
    # a column with another name, chosen explicitly; names kept when a later export lacks them
    (tmp_path / "ok.csv").write_text("Login,Given Name,Surname\nalice,Alice,A\n")
    assert _cli(root, "import-roster", str(tmp_path / "ok.csv"), "--id-column", "Login") == 0
    (tmp_path / "more.csv").write_text("student_id\nalice\nbob\n")
    assert _cli(root, "import-roster", str(tmp_path / "more.csv")) == 0
    roster = {s.student_id: s for s in read_roster(CourseLayout.load(root))}
    assert set(roster) == {"alice", "bob"} and roster["alice"].first_name == "Alice"
    assert _cli(root, "import-roster", str(tmp_path / "ok.csv"), "--id-column", "Login",
                "--replace") == 0  # fmt: skip
    assert "dropped from the roster: bob" in capsys.readouterr().out
    assert [s.student_id for s in read_roster(CourseLayout.load(root))] == ["alice"]


def test_collect_reports_what_it_does_not_take(tmp_path, capsys):
    root = copy_course(tmp_path)
    (tmp_path / "class.csv").write_text("student_id\nalice\nbob\nchen\n")
    assert _cli(root, "import-roster", str(tmp_path / "class.csv")) == 0
    inbox = tmp_path / "inbox"
    for folder, files in {
        "alice": [f"{A}.ipynb"],
        "bob": ["draft.ipynb", "final.ipynb"],  # which one?
        "dave": [f"{A}.ipynb"],  # not on the roster
        "bad name": [f"{A}.ipynb"],
    }.items():
        (inbox / folder).mkdir(parents=True)
        for name in files:
            (inbox / folder / name).write_text(sample_text("partial"))
    (inbox / "loose.ipynb").write_text("{}")
    capsys.readouterr()
    assert _cli(root, "collect", A, "--from", str(inbox)) == 0
    out = capsys.readouterr().out
    assert "bob: several notebooks (draft.ipynb, final.ipynb)" in out
    assert "'bad name' is not a valid student id" in out
    assert "loose.ipynb: not collected, expected one folder per student" in out
    assert "not on the roster" in out and "dave" in out
    assert "submitted nothing yet: bob, chen" in out
    assert sorted(p.name for p in (root / "submitted").iterdir()) == ["alice", "dave"]
    stamp = (root / "submitted" / "alice" / A / "timestamp.txt").read_text()
    assert stamp.strip().endswith("UTC")
    assert _cli(root, "collect", A) == 2  # neither --from nor --exchange
    assert _cli(root, "collect", A, "--exchange", str(tmp_path / "no-exchange")) == 2


def test_fresh_course_has_a_working_exchange(tmp_path):
    """The formgrader's "exchange directory does not exist" banner: not on a fresh course."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    root = copy_course(tmp_path)
    assert not (root / "exchange").exists()
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    assert api.exchange_missing is False and api.exchange_is_functional
    shared = "/srv/nbgrader/exchange"  # a hub's exchange wins where it exists (docs/deploy.md)
    expected = shared if os.path.isdir(shared) else str(root / "exchange")
    assert api.exchange_root == expected
    # the Autograde action never runs nbgrader's own (unsandboxed) execution
    assert config.Autograde.autograde_preprocessors == []
    assert config.Autograde.sanitize_preprocessors == ["recsys_grader.formgrader.TrustedAutograde"]
