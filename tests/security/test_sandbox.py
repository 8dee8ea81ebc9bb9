"""Issue 12: the sandbox holds against a student who tries to leave it or read the grader.

The attacks report what they tried in a ``TAG: {json}`` line of their output (read from the
instructor's copy of the notebook); every attempt must be denied, and none may earn a point.
"""

from __future__ import annotations

import json
import re

import pytest

from recsys_grader import notebooks as nbs
from recsys_grader.feedback import check_html, feedback
from recsys_kit.paths import REPO_ROOT

from .payloads import M0, MARK

pytestmark = pytest.mark.notebooks


def report_of(batch, student: str, tag: str) -> dict | list:
    """The JSON an attack printed after ``TAG: ``."""
    # (a JSON value is decoded from just after the tag, whatever precedes or follows it: an attack
    # that writes raw bytes to its descriptors has them forwarded by the kernel's output capture
    # at its own pace, before or after its report, on the same line; the last report that parses
    # wins)
    printed = batch.printed(student)
    decoder = json.JSONDecoder()
    for match in reversed(list(re.finditer(rf"{tag}: (?=[{{\[])", printed))):
        try:
            return decoder.raw_decode(printed, match.end())[0]
        except ValueError:
            continue
    raise AssertionError(f"{student} printed no {tag} line: {printed[-800:]}")


def test_no_way_out_of_the_sandbox(m0):
    tried = report_of(m0, "a_escape", "ESCAPE")
    assert len(tried) >= 25, tried
    allowed = {k: v for k, v in tried.items() if v.startswith("ALLOWED")}
    assert allowed == {}, allowed
    assert m0.results["a_escape"].score == 0 and m0.results["a_escape"].status == "graded"


def test_grader_files_and_classmates_are_out_of_reach(m0):
    tried = report_of(m0, "a_read_grader_files", "GRADER")
    assert len(tried) == 10, tried
    allowed = {k: v for k, v in tried.items() if v.startswith("ALLOWED")}
    assert allowed == {}, allowed


def test_hidden_tests_are_nowhere_the_student_can_read(m0):
    """A submission reads every file it can (and the environment and command line of every
    process it sees): no line of a hidden test is among them; a control line of the grader's
    own source, which the sandbox does show, is found, so the search works."""
    walk = report_of(m0, "a_walk_filesystem", "WALK")
    assert walk["files"] > 200 and walk["control"], walk
    assert walk["found"] == [], walk["found"]


def test_feedback_shows_no_hidden_test_text(m0):
    outcomes = {o.student: o for o in feedback([M0], root=str(m0.root))}
    source = nbs.read_notebook(m0.root.parent / "solutions" / M0 / f"{M0}.ipynb")
    secrets = nbs.secret_lines(nbs.hidden_test_blocks(source))
    assert secrets
    written = [o.path for o in outcomes.values() if o.path is not None]
    assert len(written) >= 20, {s: o.problem for s, o in outcomes.items() if o.path is None}
    assert not [o for o in outcomes.values() if o.problem.startswith("LEAK")]
    for path in written:
        assert check_html(path, secrets) == [], path
    # neither in what the students' cells printed
    for student in m0.results:
        if m0.results[student].status != "failed_to_run":
            assert nbs.leaked_lines(m0.printed(student), secrets) == [], student


def test_signals_reach_only_the_senders_own_sandbox(m0):
    seen = report_of(m0, "a_signal_others", "SIGNALS")
    assert seen["hit"] == [], seen
    # no undeserved point for the sender, and its classmates graded in the same batch keep theirs
    # (whether the sender's own kernel survives the signals it sent itself depends on timing)
    sender = m0.results["a_signal_others"]
    assert sender.status == "graded" and sender.score is not None and sender.score <= 7.0


def test_forged_frames_on_every_descriptor_change_nothing(m0):
    tried = report_of(m0, "a_forged_frames", "FRAMES")
    assert not [k for k, v in tried.items() if k.startswith("/proc") and v.startswith("ALLOWED")]
    result = m0.results["a_forged_frames"]
    # no undeserved point (exercise 2 is right: 4 when its kernel survives its own forged frames)
    assert result.status == "graded" and result.score is not None and result.score <= 4.0, (
        result.detail,
        result.cells,
    )
    assert MARK not in result.detail


def test_the_repository_is_untouched(m0):
    assert not (REPO_ROOT / "sitecustomize.py").exists()
    assert not list((REPO_ROOT / "recsys_kit").rglob("sitecustomize.py"))
    for path in (REPO_ROOT / "recsys_kit").rglob("*.py"):
        assert MARK not in path.read_text(encoding="utf-8"), path
    assert MARK not in (REPO_ROOT / "recsys_grader" / "judge.py").read_text(encoding="utf-8")


def test_a_course_root_the_sandbox_would_show_is_refused(tmp_path, monkeypatch):
    """--root (or a configured course directory) inside a folder the sandbox mounts read-only
    (here the embedding cache) would show students the gradebook, solutions and classmates'
    work: grading refuses and says why, before any notebook runs."""
    from recsys_grader.autograde import autograde
    from recsys_grader.layout import CourseError
    from recsys_grader.release import release

    from . import payloads
    from .harness import course_copy, submit

    cache = tmp_path / "cache"
    root = course_copy(cache, [M0])
    release(root=str(root))
    submit(root, "s1", M0, payloads._c.submission(M0, {}))
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(cache))
    with pytest.raises(CourseError, match=r"the course root .* lies inside .*cache"):
        autograde([M0], ["s1"], root=str(root), log=lambda _: None)
    assert not (root / "autograded").exists()
