"""Issue 12: students graded in one batch cannot reach each other, and nothing persists.

Attackers and victims share a batch (two sandboxes at a time, attackers first); a second batch
on the same course root then checks what the first left behind.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from recsys_kit.paths import REPO_ROOT

from .payloads import MARK
from .test_sandbox import report_of

pytestmark = pytest.mark.notebooks

VICTIMS = {"z_victim_release": 0.0, "z_victim_right": 7.0, "z_victim_right_2": 7.0}


def test_victims_keep_exactly_their_scores(m0):
    """Planted startup files, symlinks, a changed reference catalog: no victim gains or loses."""
    got = {v: m0.results[v].score for v in VICTIMS}
    assert got == VICTIMS, {v: m0.results[v].cells for v in VICTIMS}
    assert all(m0.results[v].status == "graded" for v in VICTIMS)


def test_planting_reaches_only_the_planters_own_sandbox(m0):
    written = report_of(m0, "a_plant_for_classmates", "PLANTED")
    assert all(w.startswith("/tmp") for w in written), written
    root = m0.root
    assert not [p for p in root.rglob("*") if MARK in p.name or p.name == "sitecustomize.py"]
    assert (root / "roster.csv").read_text(encoding="utf-8").startswith("student_id")


def test_a_classmates_work_is_invisible(m0):
    seen = report_of(m0, "a_copy_classmate", "CLASSMATES")
    assert not [p for p in seen["seen"] if "victim" in p or "submitted" in p], seen
    assert len(seen["pids"]) <= 6, seen  # bwrap, executor, kernel and its own children only


def test_a_changed_argument_does_not_change_the_reference_for_others(m0):
    """The attacker drops the price column of the catalog the tests pass it, in place: the
    change is replayed on its own session's copy only, so later students are graded against the
    real catalog (their price_summary would fail on the changed one)."""
    assert m0.results["a_mutate_reference"].cells["00_count_by_department_tests"]["points"] == 1
    assert m0.results["z_victim_right"].score == 7.0
    assert m0.results["z_victim_right_2"].score == 7.0


def test_no_write_outside_the_sandboxs_own_tmp(m0):
    tried = report_of(m0, "a_persist", "PERSIST")
    allowed = sorted(k for k, v in tried.items() if v.startswith("ALLOWED"))
    assert allowed == ["/tmp/home/.ipython/profile_default/startup/00-sec.py", "/tmp/home/sec-mark",
                       "/tmp/sec-mark"], tried  # fmt: skip
    for path in tried:
        if not path.startswith("/tmp"):
            assert not Path(path).exists() or MARK not in Path(path).read_text(errors="replace")
    assert not (Path(sys.prefix) / "lib" / "sitecustomize.py").exists()
    assert not Path(os.__file__).with_name("sitecustomize.py").exists()
    assert not (REPO_ROOT / ".cache" / "sec-mark").exists()
    assert not Path("/tmp/sec-mark").exists()


def test_nothing_of_a_batch_survives_into_the_next(m0_next):
    left = report_of(m0_next, "b_persist_probe", "LEFT")
    assert left == {"files": [], "env": []}, left
    assert m0_next.results["b_persist_probe"].score == 7.0
    assert m0_next.results["b_victim_release"].score == 0.0
