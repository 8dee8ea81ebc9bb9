"""Fixtures of the red-team suite: one autograde batch per module, graded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys_grader.release import release
from recsys_grader.sandbox import sandbox_support

from . import payloads
from .harness import Batch, course_copy, grade


@pytest.fixture(scope="session")
def sandboxed() -> None:
    """Skip where bubblewrap cannot run (the suite attacks the real sandbox)."""
    available, why = sandbox_support()
    if not available:
        pytest.skip(f"no sandbox here: {why}")


@pytest.fixture(scope="session")
def m0_root(tmp_path_factory) -> Path:
    """A released copy of the course with Module 0."""
    root = course_copy(tmp_path_factory.mktemp("sec-m0"), [payloads.M0])
    release(root=str(root))
    return root


@pytest.fixture(scope="session")
def m0(sandboxed, m0_root) -> Batch:
    """Every Module 0 attack, with victims after them, graded in one batch."""
    return grade(m0_root, payloads.M0, payloads.module0(m0_root))


@pytest.fixture(scope="session")
def m0_next(m0) -> Batch:
    """A second batch on the same course root: what the first one left behind."""
    return grade(m0.root, payloads.M0, payloads.module0_next())


@pytest.fixture(scope="session")
def m2(sandboxed, tmp_path_factory) -> Batch:
    """The delegation evasions of Module 2, with a victim, in one batch."""
    root = course_copy(tmp_path_factory.mktemp("sec-m2"), [payloads.M2])
    release(root=str(root))
    return grade(root, payloads.M2, payloads.module2())


@pytest.fixture(scope="session")
def m5(sandboxed, tmp_path_factory) -> Batch:
    """Module 6's metric exercises done by the kit (several ways), with a victim, in one batch."""
    root = course_copy(tmp_path_factory.mktemp("sec-m5"), [payloads.M5])
    release(root=str(root))
    return grade(root, payloads.M5, payloads.module5())
