"""The Dask path (``autograde --cluster``) keeps every grading task inside the sandbox.

Hostile Module 0 submissions are graded on a local Dask cluster (worker processes of their own,
as on a real cluster): the code of each runs in the same bubblewrap sandbox as on one machine
(same uid rules, capabilities, namespaces, environment and file system as the one-machine batch
sees), every escape is denied, the grader's files stay out of reach, kernel tricks get nothing
and an honest classmate keeps full marks. A worker that cannot sandbox refuses its chunk.
"""

from __future__ import annotations

import os

import pytest

from recsys_grader import cluster
from recsys_grader.release import release

from . import payloads
from .harness import Batch, course_copy, grade
from .test_sandbox import report_of

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]


@pytest.fixture(scope="module")
def on_dask(sandboxed, tmp_path_factory) -> Batch:
    pytest.importorskip("distributed")
    root = course_copy(tmp_path_factory.mktemp("sec-dask"), [payloads.M0])
    release(root=str(root))
    students = {
        "a_custom_exc": payloads.attack(payloads.CUSTOM_EXC),
        "a_escape": payloads.escape(),
        "a_read_grader_files": payloads.read_grader_files(root),
        "a_where_am_i": payloads.where_am_i(),
        "z_victim_right": payloads._c.submission(
            payloads.M0, {g: payloads.right(g) for g in (payloads.EX1, payloads.EX2)}
        ),
    }
    return grade(root, payloads.M0, students, cluster="local:1")


def test_tasks_on_a_worker_run_in_the_same_sandbox_as_on_one_machine(on_dask, m0):
    there, here = (
        report_of(on_dask, "a_where_am_i", "WHERE"),
        report_of(m0, "a_where_am_i", "WHERE"),
    )
    assert there["uid"] == there["euid"] and there["uid"] not in (0, os.getuid()), there
    assert int(there["cap_eff"], 16) == 0 and int(there["cap_bnd"], 16) == 0, there
    assert there["no_new_privs"] == "1", there
    assert there["interfaces"] == ["lo"] and there["hostname"] == "recsys-sandbox", there
    assert len(there["pids"]) <= 6 and "bwrap" in there["pid1"], there
    assert not [k for k in there["env"] if k.startswith(("DASK", "RECSYS_SANDBOX"))], there
    for key in ("env", "cwd", "root", "interfaces", "hostname", "no_new_privs", "cap_eff"):
        assert there[key] == here[key], (key, there[key], here[key])


def test_escapes_and_grader_files_are_denied_on_a_worker(on_dask):
    tried = report_of(on_dask, "a_escape", "ESCAPE")
    assert len(tried) >= 25 and not [k for k, v in tried.items() if v.startswith("ALLOWED")]
    tried = report_of(on_dask, "a_read_grader_files", "GRADER")
    assert len(tried) == 10 and not [k for k, v in tried.items() if v.startswith("ALLOWED")]


def test_grades_on_a_worker_are_what_the_work_deserves(on_dask):
    got = {s: (r.status, r.score) for s, r in on_dask.results.items()}
    assert got == {
        "a_custom_exc": ("graded", 0.0),
        "a_escape": ("graded", 0.0),
        "a_read_grader_files": ("graded", 0.0),
        "a_where_am_i": ("graded", 0.0),
        "z_victim_right": ("graded", 7.0),
    }, {s: r.detail for s, r in on_dask.results.items()}


def test_a_worker_that_cannot_sandbox_refuses_its_chunk(monkeypatch):
    """A worker that joins after the client's check, without a working bubblewrap: the chunk is
    refused before any student code starts (its submissions become grader errors)."""
    expected: dict[str, str] = {}  # (the course files are the same)
    monkeypatch.setattr(cluster, "sandbox_support", lambda: (False, "no bwrap on this node"))
    monkeypatch.setattr(cluster, "fingerprint", lambda sources: {})
    started = []
    monkeypatch.setattr(cluster.judge, "run_judge", lambda *a, **k: started.append(a) or [])
    with pytest.raises(cluster.CourseMismatch, match="cannot sandbox student code"):
        cluster.grade_chunk("x.ipynb", expected, [], {}, 1, False)
    assert started == []
    assert cluster.grade_chunk("x.ipynb", expected, [], {}, 1, True) == []  # --insecure
