"""Tests of the course machinery (``recsys-course``) on a temporary copy of the course root.

The repository's own ``grading/`` state is never touched: a session fixture copies ``grading/``
(config, samples, roster, templates), ``solutions/00_orientation`` and ``course/00_orientation``
into a temporary folder, releases, and autogrades the samples plus a few extra failure cases
once, with short limits. Each failure behaviour observed in nbgrader 0.9.6 has its own test.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import socket
import threading
import tomllib
import warnings
from pathlib import Path

import nbformat
import pytest
from coursecopy import A, copy_course, make_samples, right_answers, submit, variant
from nbgrader.api import Gradebook

from recsys_grader import executor, mainjob
from recsys_grader import notebooks as nbs
from recsys_grader import results as res
from recsys_grader.autograde import autograde
from recsys_grader.cellscores import prepare
from recsys_grader.cli import main
from recsys_grader.export_student import export_student, hidden_secrets, scan
from recsys_grader.feedback import check_html, feedback
from recsys_grader.layout import CourseLayout
from recsys_grader.release import release
from recsys_grader.report import collect, report
from recsys_grader.sandbox import Limits, Sandbox, sandbox_support
from recsys_grader.validate import validate
from recsys_kit.paths import REPO_ROOT

# Module 0's slowest cell takes well under 1 s on an idle machine, but the judge's first calls
# into a sandbox (the catalog sent as Arrow, the agent's imports) took over 8 s at a load
# average of 12-20 on the 2-core test machine: 30 s per cell keeps timeouts for the samples
# that loop, at the price of ~1 minute for the infinite-loop sample.
LIMITS = Limits(cell_timeout=30, notebook_timeout=300, memory_mb=1536)


class CountingServer:
    """A TCP server outside the sandbox that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.sendall(b"hello")
            conn.close()

    def close(self) -> None:
        self.sock.close()


def network_answer(port: int) -> str:
    """Exercise 1's right answer, but it first phones home (fails without network)."""
    return (
        "import socket\n\n"
        f"with socket.create_connection(('127.0.0.1', {port}), timeout=3) as _s:\n"
        "    _s.recv(5)\n"
        "with socket.create_connection(('1.1.1.1', 53), timeout=3):\n"
        "    pass\n\n" + right_answers()[make_samples.EX1]
    )


@pytest.fixture(scope="session")
def server():
    srv = CountingServer()
    yield srv
    srv.close()


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """``recsys-course course`` on a course copy, once: (real root, demo root, exit code, lines)."""
    real = copy_course(tmp_path_factory.mktemp("course"))
    # the real class already has a student and a gradebook: the demo must leave both alone
    (real / "roster.csv").write_text("student_id,first_name,last_name,email\nreal,Rea,L,\n")
    layout = CourseLayout.load(real)
    with warnings.catch_warnings(), Gradebook(layout.db_url, layout.course_id) as gb:
        warnings.simplefilter("ignore")
        gb.update_or_create_student("real")
    before = {p.name: p.read_bytes() for p in real.iterdir() if p.is_file()}
    lines: list[str] = []
    code = mainjob.run(limits=LIMITS, workers=2, root=str(real), log=lines.append)
    after = {p.name: p.read_bytes() for p in real.iterdir() if p.is_file()}
    assert after == before, "the demo wrote into the real course root"
    return real, real.parent / mainjob.DEMO_DIR, code, lines


@pytest.fixture(scope="session")
def graded(demo, server):
    """The demo course with the samples and extra cases autograded: (root, {student: Result})."""
    _, root, _, _ = demo
    right = right_answers()
    # the kernel exits while running exercise 2's answer: later tests must not pass (nbgrader#427)
    submit(root, "dead_kernel", variant({**right, make_samples.EX2: "import os\nos._exit(1)"}))
    # megabytes of output in an answer cell must be capped
    flood = "print('x' * 5_000_000)\nfor _i in range(2000):\n    print(_i)\n\n"
    submit(root, "megaprint", variant({**right, make_samples.EX1: flood + right[make_samples.EX1]}))
    submit(root, "network", variant({**right, make_samples.EX1: network_answer(server.port)}))
    extra = ["dead_kernel", "megaprint", "network"]
    autograde(students=extra, limits=LIMITS, workers=2, root=str(root), log=lambda line: None)
    stored = res.load(CourseLayout.load(root).results_file)
    return root, {student: r for (student, _), r in stored.items()}


def read_grades(root: Path) -> dict[str, dict[str, str]]:
    """grades.csv rows by student (Module 0 only in the copies)."""
    with open(root / "reports" / "grades.csv", newline="") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


def gradebook_grades(root: Path, student: str) -> dict[str, object]:
    layout = CourseLayout.load(root)
    with warnings.catch_warnings(), Gradebook(layout.db_url, layout.course_id) as gb:
        warnings.simplefilter("ignore")
        nb = gb.find_submission_notebook(A, A, student)
        return {g.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in nb.grades}


# --- layout and release ----------------------------------------------------------------------


def test_config_paths_match_the_spec():
    layout = CourseLayout.load()
    assert layout.root == REPO_ROOT / "grading"
    assert layout.config.CourseDirectory.source_directory == "../solutions"
    assert layout.config.CourseDirectory.release_directory == "../course"
    assert layout.source == REPO_ROOT / "solutions" and layout.release == REPO_ROOT / "course"
    assert A in layout.assignments


def test_course_folder_is_in_sync_with_solutions():
    outcomes = release(check=True)
    stale = [p for o in outcomes for p in o.changed + o.removed]
    assert not stale, f"course/ is out of date, run `recsys-course release`: {stale}"


def test_release_is_byte_identical_and_check_detects_drift(tmp_path, capsys):
    root = copy_course(tmp_path)
    target = tmp_path / "course" / A / f"{A}.ipynb"
    committed = (REPO_ROOT / "course" / A / f"{A}.ipynb").read_bytes()
    target.unlink()
    assert main(["--root", str(root), "release", A]) == 0
    assert target.read_bytes() == committed
    mtime = target.stat().st_mtime_ns
    (outcome,) = release([A], root=str(root))
    assert outcome.changed == [] and target.stat().st_mtime_ns == mtime  # not even rewritten
    assert main(["release", "--check", "--root", str(root)]) == 0
    source = tmp_path / "solutions" / A / f"{A}.ipynb"
    source.write_text(source.read_text().replace("Learning goals", "Goals"), encoding="utf-8")
    assert main(["--root", str(root), "release", "--check"]) == 1
    assert f"out of date: course/{A}/{A}.ipynb" in capsys.readouterr().out
    assert target.read_bytes() == committed  # --check changed nothing


def test_bad_usage_exits_2_with_a_clear_message(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "release"]) == 2
    assert "nbgrader_config.py" in capsys.readouterr().err
    root = copy_course(tmp_path / "c")
    assert main(["--root", str(root), "autograde", "99_nope"]) == 2
    assert "unknown assignment" in capsys.readouterr().err


def test_samples_are_up_to_date():
    assert make_samples.main(["--check"]) == 0, "run `python grading/make_samples.py`"


def test_released_notebook_matches_reference():
    ref = nbs.reference(nbs.read_notebook(REPO_ROOT / "solutions" / A / f"{A}.ipynb"))
    released = nbs.read_notebook(REPO_ROOT / "course" / A / f"{A}.ipynb")
    _, reasons = prepare(released, ref)
    assert reasons == []
    assert ref.max_points == 13 and sum(c.grade and not c.solution for c in ref.cells) >= 8
    assert any(c.solution and c.grade and c.cell_type == "markdown" for c in ref.cells)


# --- validate and autograde --------------------------------------------------------------------


@pytest.mark.notebooks
def test_validate_module_0(tmp_path):
    root = copy_course(tmp_path)
    release(root=str(root))
    (report_,) = validate([A], limits=Limits(cell_timeout=60), workers=2, root=str(root))
    assert report_.ok, report_.problems
    assert report_.solution_score == report_.max_score == 11
    assert report_.release_score == 0
    # the judge's namespace is kept for the first grading (which then loads it)
    assert [p.name.startswith(A) for p in (root / ".judge-cache").glob("*.pkl")] == [True]


@pytest.mark.notebooks
def test_samples_end_with_the_expected_statuses(graded):
    root, results = graded
    with open(REPO_ROOT / "grading" / "samples" / "expected.csv", newline="") as fh:
        expected = {r["student"]: (r["status"], r["score"]) for r in csv.DictReader(fh)}
    got = {
        s: (results[s].status, "" if results[s].score is None else f"{results[s].score:g}")
        for s in expected
    }
    assert got == expected
    perfect = results["perfect"]
    auto = [c for c in perfect.cells.values() if c["status"] != "manual"]
    assert sum(c["points"] for c in auto) == sum(c["max"] for c in auto) == 11  # full marks


@pytest.mark.notebooks
def test_make_course_grades_the_samples_apart_from_the_real_course(demo):
    real, root, code, lines = demo
    text = "\n".join(lines)
    assert code == 0, text
    for state in ("submitted", "autograded", "feedback", "reports"):
        assert not (real / state).exists(), f"the demo wrote {state}/ into the real course"
    layout = CourseLayout.load(real)
    with warnings.catch_warnings(), Gradebook(layout.db_url, layout.course_id) as gb:
        warnings.simplefilter("ignore")
        assert [s.id for s in gb.students] == ["real"] and not gb.assignments
    demo_layout = CourseLayout.load(root)
    assert demo_layout.root == root and demo_layout.source == layout.source
    assert "perfect" in (root / "roster.csv").read_text()
    assert (root / "reports" / "report.html").is_file()
    # the next steps: where the report is, the formgrader for written answers, a real class
    steps = text[text.index("== next steps") :]
    assert "reports/report.html" in steps and "not touched" in steps
    assert "formgrader" in steps.lower() and "RECSYS_COURSE_ROOT=demo" in steps
    for verb in ("import-roster", "collect", "autograde", "return-feedback", "export-grades"):
        assert verb in steps, verb
    assert "awaiting grading (perfect)" in text  # feedback written before a TA graded


@pytest.mark.notebooks
def test_timeout_is_never_counted_as_passed(graded):
    _, results = graded
    cells = results["infinite_loop"].cells
    for grade_id in (make_samples.EX1_VISIBLE, "00_count_by_department_hidden"):
        assert cells[grade_id] == {
            "points": 0.0,
            "max": cells[grade_id]["max"],
            "status": "timeout",
        }


@pytest.mark.notebooks
def test_dead_kernel_never_counts_as_passed(graded):
    root, results = graded
    result = results["dead_kernel"]
    assert result.status == res.GRADED and result.score == 3  # exercise 1 only
    for grade_id in (make_samples.EX2_VISIBLE, make_samples.EX2_HIDDEN):
        assert result.cells[grade_id]["points"] == 0.0
        assert result.cells[grade_id]["status"] == "unavailable"
        assert gradebook_grades(root, "dead_kernel")[grade_id][0] == 0.0
    graded_nb = nbformat.read(root / "autograded" / "dead_kernel" / A / f"{A}.ipynb", 4)
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in graded_nb.cells}
    # the stored notebook carries an explicit error, so nbgrader's own rule also gives 0
    enames = [o.get("ename") for o in by_id[make_samples.EX2_VISIBLE].outputs]
    assert "KernelUnavailable" in enames


@pytest.mark.notebooks
def test_memory_hog_is_stopped_and_never_passes(graded):
    _, results = graded
    cells = results["memory_hog"].cells
    assert cells[make_samples.EX1_VISIBLE]["points"] == 0.0
    assert results["memory_hog"].cells[make_samples.EX2_VISIBLE]["points"] == 1.0  # kept running


@pytest.mark.notebooks
def test_deleted_test_cell_is_not_silently_ungraded(graded):
    root, results = graded
    result = results["deletes_test"]
    assert result.status == res.TAMPERED
    assert f"deleted test cell {make_samples.EX2_HIDDEN}" in result.detail
    assert result.cells[make_samples.EX2_HIDDEN]["status"] == "failed"  # put back and run
    assert gradebook_grades(root, "deletes_test")[make_samples.EX2_HIDDEN][0] == 0.0
    assert results["edits_readonly"].status == res.TAMPERED
    assert "changed read-only cell" in results["edits_readonly"].detail


@pytest.mark.notebooks
def test_broken_notebook_is_not_a_real_zero(graded):
    root, results = graded
    result = results["invalid_json"]
    assert result.status == res.FAILED and result.score is None
    assert "not a valid notebook" in result.detail
    grades = gradebook_grades(root, "invalid_json")
    assert all(auto is None and flagged for auto, _, flagged in grades.values())
    assert results["no_submission"].status == res.MISSING


@pytest.mark.notebooks
def test_huge_output_is_capped(graded):
    root, results = graded
    assert results["megaprint"].status == res.GRADED and results["megaprint"].score == 7
    stored = root / "autograded" / "megaprint" / A / f"{A}.ipynb"
    assert stored.stat().st_size < 400_000
    cell = next(
        c
        for c in nbformat.read(stored, 4).cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == make_samples.EX1
    )
    text = "".join(o.get("text", "") for o in cell.outputs)
    assert len(text) <= LIMITS.output_cap + 200 and "output truncated" in text
    assert (root / "gradebook.db").stat().st_size < 2_000_000


@pytest.mark.notebooks
def test_student_code_cannot_reach_the_network(graded, server, tmp_path):
    available, reason = sandbox_support()
    if not available:
        pytest.skip(f"no sandbox here: {reason}")
    _, results = graded
    assert results["network"].cells[make_samples.EX1_VISIBLE]["points"] == 0.0
    assert server.accepted == 0
    # control: the same code outside the sandbox does reach the server, so the test can fail
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                f"import socket\nsocket.create_connection(('127.0.0.1', {server.port})).close()"
            )
        ]
    )
    limits = Limits(cell_timeout=20, network=True)
    with Sandbox(limits=limits) as box:
        run = executor.run_notebook(box, nb, limits)
    assert executor.status_of(run.notebook.cells[0]) == executor.OK
    assert server.accepted == 1


@pytest.mark.notebooks
def test_failed_regrade_does_not_keep_old_scores(tmp_path):
    root = copy_course(tmp_path)
    release(root=str(root))
    submit(root, "alice", (root / "samples" / "perfect" / A / f"{A}.ipynb").read_text())
    (first,) = autograde(students=["alice"], limits=LIMITS, root=str(root), log=lambda _: None)
    assert first.status == res.NEEDS_MANUAL and first.score == 11
    assert (root / "autograded" / "alice" / A / f"{A}.ipynb").is_file()
    feedback(root=str(root))
    assert (root / "feedback" / "alice" / A / f"{A}.html").is_file()
    # the judge kept its reference namespace (private to the course root); the same regrade
    # loads it instead of running the solution again and gives the same verdicts
    (kept,) = CourseLayout.load(root).judge_cache.glob(f"{A}-*.pkl")
    written = kept.stat().st_mtime_ns
    (again,) = autograde(students=["alice"], limits=LIMITS, root=str(root), log=lambda _: None)
    assert (again.status, again.score, again.cells) == (first.status, first.score, first.cells)
    assert kept.stat().st_mtime_ns == written  # loaded, not built and saved again
    submit(root, "alice", "{ this is not json")
    (second,) = autograde(students=["alice"], limits=LIMITS, root=str(root), log=lambda _: None)
    assert second.status == res.FAILED and second.score is None
    assert all(auto is None for auto, _, _ in gradebook_grades(root, "alice").values())
    assert not (root / "autograded" / "alice" / A).exists()
    assert not (root / "feedback" / "alice" / A).exists()
    report(str(root))
    rows = read_grades(root)
    assert rows["alice"]["status"] == res.FAILED and rows["alice"]["score"] == ""
    stored = json.loads((root / "reports" / "results.json").read_text())["results"]
    assert [r["status"] for r in stored if r["student"] == "alice"] == [res.FAILED]


# --- feedback, report, export ------------------------------------------------------------------


@pytest.mark.notebooks
def test_feedback_hides_hidden_tests(graded, tmp_path):
    root, _ = graded
    outcomes = feedback(root=str(root))
    written = [o.path for o in outcomes if o.path is not None]
    assert len(written) >= 7
    source = nbs.read_notebook(root.parent / "solutions" / A / f"{A}.ipynb")
    blocks = nbs.hidden_test_blocks(source)
    lines = [ln.strip() for b in blocks for ln in b.split("\n") if len(ln.strip()) > 25]
    for html_file in written:
        text = re.sub(r"\s+", "", nbs.html_text(html_file.read_text()))
        assert not [ln for ln in lines if re.sub(r"\s+", "", ln) in text], html_file
    assert "Hidden tests failed" in nbs.html_text(
        (root / "feedback/partial" / A / f"{A}.html").read_text()
    )
    # control: nbgrader's stock feedback leaks, and the checker catches it
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import GetGrades
    from nbgrader.utils import capture_log

    layout = CourseLayout.load(root)
    config = layout.nbgrader_config(feedback_directory=str(tmp_path / "stock"))
    config.HTMLExporter.template_name = "feedback"
    config.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor]  # stock
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id, coursedir.student_id = A, "partial"
    app = GenerateFeedback(coursedir=coursedir, config=config)
    app.force = True
    assert capture_log(app)["success"]
    secrets = nbs.secret_lines(blocks)
    assert check_html(tmp_path / "stock" / "partial" / A / f"{A}.html", secrets)


@pytest.mark.notebooks
def test_report_has_explicit_statuses_and_charts(graded):
    root, results = graded
    report(str(root))
    rows = read_grades(root)
    assert set(rows) >= set(results)
    assert rows["invalid_json"]["status"] == res.FAILED and rows["invalid_json"]["score"] == ""
    assert rows["partial"]["status"] == res.GRADED and rows["partial"]["score"] == "4"
    assert rows["no_submission"]["status"] == res.MISSING
    assert (
        rows["perfect"]["status"] == res.NEEDS_MANUAL and rows["perfect"]["manual_pending"] == "1"
    )
    page = (root / "reports" / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 2
    # the written answer nobody has scored yet is pending (None), not a zero, in the charts
    by_student = {(r.student, r.assignment): r for r in collect(CourseLayout.load(root))}
    perfect = by_student[("perfect", A)]
    assert perfect.cells["00_metric_answer"][0] is None
    assert all(p is not None for g, (p, _) in perfect.cells.items() if g != "00_metric_answer")
    # a grader scores the written answer: the perfect submission becomes graded with 13/13
    layout = CourseLayout.load(root)
    with warnings.catch_warnings(), Gradebook(layout.db_url, layout.course_id) as gb:
        warnings.simplefilter("ignore")
        grade = gb.find_grade("00_metric_answer", A, A, "perfect")
        grade.manual_score, grade.needs_manual_grade = 2.0, False
        gb.db.commit()
    report(str(root))
    rows = read_grades(root)
    assert (rows["perfect"]["status"], rows["perfect"]["score"]) == (res.GRADED, "13")


@pytest.mark.slow
def test_export_student_has_no_solutions_or_hidden_tests(tmp_path):
    dest = tmp_path / "student"
    outcome = export_student(dest)
    assert not outcome.leaks, outcome.leaks
    assert (dest / "course" / A / f"{A}.ipynb").is_file()
    assert (dest / "recsys_kit" / "paths.py").is_file() and (dest / "README.md").is_file()
    for absent in ("solutions", "grading", "tests", "nbgrader_config.py", "recsys_grader"):
        assert not (dest / absent).exists()
    # no grading code and no grader dependency in what students install
    assert not list(dest.rglob("recsys_grader*")), "the grader package must not be exported"
    for path in dest.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?m)^\s*(from|import)\s+(nbgrader|recsys_grader)\b", text), path
    pyproject = tomllib.loads((dest / "pyproject.toml").read_text())["project"]
    deps = pyproject["dependencies"] + sum(pyproject["optional-dependencies"].values(), [])
    assert not [d for d in deps if "nbgrader" in d], deps
    assert "scripts" not in pyproject
    assert "nbgrader" not in (dest / "environment.yml").read_text()
    texts = {}
    for path in dest.rglob("*"):
        if path.is_file():
            with contextlib.suppress(UnicodeDecodeError):
                texts[path] = re.sub(r"\s+", "", path.read_text(encoding="utf-8"))
    for solution in sorted((REPO_ROOT / "solutions").glob("*/*.ipynb")):
        for block in nbs.hidden_test_blocks(nbs.read_notebook(solution)):
            squashed = re.sub(r"\s+", "", block)
            assert not [p for p, t in texts.items() if squashed and squashed in t], solution
    for path in dest.rglob("*.ipynb"):
        assert "BEGIN SOLUTION" not in path.read_text() and "HIDDEN TESTS" not in path.read_text()
    # the scanner is not blind: a planted hidden line is reported
    blocks, lines = hidden_secrets(CourseLayout.load())
    (dest / "recsys_kit" / "planted.py").write_text(lines[0] + "\n")
    assert scan(dest, blocks, lines)
    # refuses to overwrite a folder that is not a previous export
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("data")
    assert main(["export-student", str(other), "--force"]) == 2
    assert (other / "keep.txt").read_text() == "data"


@pytest.mark.notebooks
def test_student_code_cannot_read_solutions_or_grades(tmp_path):
    available, reason = sandbox_support()
    if not available:
        pytest.skip(f"no sandbox here: {reason}")
    solutions = REPO_ROOT / "solutions"
    probe = (
        "import os, pathlib\n"
        f"print(os.path.exists({str(solutions)!r}))\n"
        f"pathlib.Path({str(REPO_ROOT / 'grading' / 'planted.txt')!r}).write_text('x')"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(probe)])
    limits = Limits(cell_timeout=20)
    with Sandbox(limits=limits) as box:
        run = executor.run_notebook(box, nb, limits)
    cell = run.notebook.cells[0]
    assert cell.outputs[0]["text"].strip() == "False", "solutions/ must not exist in the sandbox"
    assert executor.status_of(cell) != executor.OK, "writing into grading/ must fail"
    assert not (REPO_ROOT / "grading" / "planted.txt").exists()
    assert any(solutions.iterdir()), "the host's solutions/ is untouched"


def test_a_course_kept_under_tmp_stays_visible_in_the_sandbox(tmp_path, monkeypatch):
    """The sandbox's /tmp is private, but a course cloned under /tmp (its venv, data, cache:
    read-only paths) is mounted on top of it, not hidden by it; the rest of the host's /tmp
    stays out of sight."""
    import subprocess
    import sys

    from recsys_grader import sandbox

    available, reason = sandbox_support()
    if not available:
        pytest.skip(f"no sandbox here: {reason}")
    if not str(tmp_path).startswith("/tmp/"):
        pytest.skip("pytest's temporary folder is not under /tmp here")
    course = tmp_path / "course"
    course.mkdir(mode=0o755)
    (course / "data.txt").write_text("visible")
    (tmp_path / "private.txt").write_text("secret")
    real = sandbox._read_only_paths
    monkeypatch.setattr(sandbox, "_read_only_paths", lambda: [*real(), course])
    passwd = tmp_path / "passwd"
    passwd.write_text("student:x:65534:65534::/tmp/home:/bin/false\n")
    code = (
        f"import os; print(open({str(course / 'data.txt')!r}).read(), "
        f"os.path.exists({str(tmp_path / 'private.txt')!r}))\n"
        "for how in ('a', 'new'):  # the course stays read-only: no edit, no new file\n"
        "    try:\n"
        f"        open({str(course / 'data.txt')!r} if how == 'a' else "
        f"{str(course / 'new.py')!r}, how[0] if how == 'a' else 'w').write('x')\n"
        "        print('WRITTEN')\n"
        "    except OSError:\n"
        "        print('denied')\n"
    )
    cmd = sandbox.bwrap_command([sys.executable, "-c", code], Limits(), 65534, passwd)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["visible", "False", "denied", "denied"], out.stderr
    assert (course / "data.txt").read_text() == "visible" and not (course / "new.py").exists()


def test_secret_lines_skip_generic_code_and_keep_distinctive_lines():
    block = "for _ in range(20):\n    assert ndcg_at_k(_qrels, _run, 10) == 0.8172\n"
    assert nbs.secret_lines([block]) == ["assert ndcg_at_k(_qrels, _run, 10) == 0.8172"]
    shown = "assert ndcg_at_k(_qrels, _run, 10) == 0.8172"
    assert nbs.secret_lines([block], public=shown) == []


# --- charts ------------------------------------------------------------------------------------


def _chart_rows() -> list:
    """Rows whose scores crowd the top bins (where a legend inside the axes would sit)."""
    from recsys_grader.report import Row

    rows = []
    for i in range(12):
        pending = i % 3 == 0
        cells = {
            "00_count_by_department_hidden": (2.0, 2.0),
            "00_price_summary_hidden": (3.0 if i % 2 else 1.0, 3.0),
            "00_metric_answer": (None if pending else 2.0, 2.0),
        }
        score = sum(p for p, _ in cells.values() if p is not None)
        status = res.NEEDS_MANUAL if pending else res.GRADED
        rows.append(Row(f"s{i}", A, status, score, 7.0, int(pending), "", cells))
    return rows


def _bars_under(fig, legend) -> list:
    fig.canvas.draw()
    box = legend.get_window_extent()
    bars = [p for p in fig.axes[0].patches if p.get_height() > 0]
    return [p for p in bars if p.get_window_extent().overlaps(box)]


def test_report_legend_covers_no_bar():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recsys_grader.report import score_histogram

    fig = score_histogram(A, _chart_rows())
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()][1].startswith("awaiting grading")
    assert not _bars_under(fig, legend)
    # control: the same legend inside the axes, top right, does cover a bar (the check can fail)
    inside = fig.axes[0].legend(fontsize=8, loc="upper right")
    assert _bars_under(fig, inside)
    plt.close(fig)


def test_report_charts_show_pending_answers_as_awaiting_grading():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recsys_grader.report import exercise_chart

    rows = _chart_rows()
    fig = exercise_chart(A, rows)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[1] == "00_metric\n(4 awaiting grading)"  # 4 of 12 not graded yet
    plt.close(fig)
    # nobody graded yet: a marked slot, not a box at 0 %
    for row in rows:
        row.cells["00_metric_answer"] = (None, 2.0)
    fig = exercise_chart(A, rows)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["awaiting grading\n(n=12)"]
    assert len(fig.axes[0].lines) > 0 and all(
        not (line.get_xdata().size and 1.7 < float(line.get_xdata()[0]) < 2.3)
        for line in fig.axes[0].lines
    )  # no box drawn at the written answer's position
    plt.close(fig)
