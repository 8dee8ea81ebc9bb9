"""The judge's kept reference namespace (recsys_grader.judgecache) is out of students' reach.

It is loaded with pickle by the next judge of the assignment, so a student who could write it
would run code as the grader in every later grading. A submission tries to read it and to plant
or replace it (with the real course root's path, as if it had guessed it from our source); then
a late student is graded alone on the same course root, by a judge that loads the namespace.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys_grader.layout import CourseLayout
from recsys_grader.release import release

from . import payloads
from .harness import Batch, course_copy, grade
from .test_sandbox import report_of

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]

PWNED = Path(f"/tmp/{payloads.MARK}-judge-cache")


def _right() -> str:
    return payloads._c.submission(
        payloads.M0, {g: payloads.right(g) for g in (payloads.EX1, payloads.EX2)}
    )


@pytest.fixture(scope="module")
def batches(sandboxed, tmp_path_factory) -> tuple[Batch, Batch, dict[str, bytes]]:
    PWNED.unlink(missing_ok=True)
    root = course_copy(tmp_path_factory.mktemp("sec-cache"), [payloads.M0])
    release(root=str(root))
    # a first grading keeps the namespace, so the attack finds a file to go for
    grade(root, payloads.M0, {"z_first": _right()})
    cache = CourseLayout.load(root).judge_cache
    kept = {p.name: p.read_bytes() for p in cache.iterdir()}
    first = grade(root, payloads.M0, {"a_poison": payloads.poison_judge_cache(root)})
    late = grade(root, payloads.M0, {"z_late": _right()})
    return first, late, kept


def test_the_kept_namespace_cannot_be_read(batches):
    first, _, _ = batches
    tried = report_of(first, "a_poison", "CACHE")
    assert len(tried) == 5 and tried["list"].startswith("denied"), tried
    assert tried["read"].startswith("denied"), tried
    assert first.results["a_poison"].score == 0.0
    # (its writes, where "allowed", land in the sandbox's own private /tmp: the next test checks
    # that the host's folder is untouched)


def test_a_late_judge_loads_only_what_the_judge_wrote(batches):
    first, late, kept = batches
    cache = CourseLayout.load(first.root).judge_cache
    assert len(kept) == 1 and {p.name: p.read_bytes() for p in cache.iterdir()} == kept
    assert (late.results["z_late"].status, late.results["z_late"].score) == ("graded", 7.0)
    assert not PWNED.exists()
