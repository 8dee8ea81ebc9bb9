"""What the sandbox sends the grader: hostile frames are refused before they cost anything."""

from __future__ import annotations

import os
import struct
import threading
import tracemalloc

import pytest

from recsys_grader import judge, wire


def _pipe_frame(body: bytes) -> int:
    """A pipe whose reader end holds one frame with ``body`` (written by a thread)."""
    read, write = os.pipe()

    def feed() -> None:
        with os.fdopen(write, "wb") as fh:
            fh.write(struct.pack(">Q", len(body)) + body)

    threading.Thread(target=feed, daemon=True).start()
    return read


@pytest.mark.parametrize(
    "body",
    [
        b'{"answer": [' + b",".join([b"{}"] * 3_000_000) + b"]}",  # 9 MB -> 3 M dicts
        b'{"answer": [' + b",".join([b"0"] * 9_000_000) + b"]}",  # 18 MB -> 9 M items
    ],
    ids=["objects", "items"],
)
def test_a_container_bomb_is_refused_before_it_is_parsed(body):
    fd = _pipe_frame(body)
    tracemalloc.start()
    try:
        with pytest.raises(wire.WireError, match="refused"):
            wire.recv(fd)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        os.close(fd)
    assert peak < 3 * len(body), f"{peak / 1e6:.0f} MB used to refuse it"


def test_deep_nesting_and_garbage_are_wire_errors():
    for body in (b"[" * 200_000 + b"]" * 200_000, b"\xff\xfe", b"[1, 2]"):
        fd = _pipe_frame(body)
        with pytest.raises(wire.WireError):
            wire.recv(fd)
        os.close(fd)
    deep = {"$t": "tuple", "v": []}
    for _ in range(100):
        deep = {"$t": "tuple", "v": [deep]}
    with pytest.raises(wire.WireError):
        wire.decode(deep)


def test_an_oversized_frame_header_is_refused_without_reading():
    read, write = os.pipe()
    os.write(write, struct.pack(">Q", 1 << 62))
    with pytest.raises(wire.WireError, match="exceeds"):
        wire.recv(read)
    os.close(read)
    os.close(write)


def test_nothing_from_the_sandbox_can_name_or_build_an_object():
    for tag in ({"$t": "ref", "name": "catalog"}, {"$t": "construct", "factory": "os:system"}):
        with pytest.raises(wire.WireError):
            wire.decode(tag)


def test_a_student_exception_never_ends_a_tests_iteration():
    """``all(map(check, cases))`` over a function that raises StopIteration must fail, not pass
    as ``all([])`` (PEP 479 for the judge's stand-ins)."""
    for name in ("StopIteration", "StopAsyncIteration"):
        exc = judge._student_exception({"type": name, "mro": [f"builtins.{name}"]})
        assert isinstance(exc, RuntimeError) and isinstance(exc, judge.StudentRaised)
        assert not isinstance(exc, StopIteration | StopAsyncIteration)

    def student(_):
        raise judge._student_exception({"type": "StopIteration", "mro": ["builtins.StopIteration"]})

    with pytest.raises(RuntimeError):
        all(map(student, [1, 2, 3]))


def test_malformed_answers_stop_the_test_cell_instead_of_raising_a_catchable_error():
    """A decoding error is a ValueError; a test's ``except ValueError`` must not take it for the
    student's own ValueError (``{"$t": "bogus"}`` would pass ``must raise ValueError`` cases)."""

    class Box:
        dead = None

        def request(self, message, timeout, max_frame=wire.MAX_FRAME):
            return {"status": "ok", "answer": {"value": {"$t": "bogus"}}}

    from recsys_grader.sandbox import Limits

    student = judge.Student(Box(), Limits(cell_timeout=5), [], {})
    with pytest.raises(judge.GradingInterrupted) as info:
        try:
            judge.RemoteFunction(student, "f")(1)
        except ValueError:
            pytest.fail("the malformed answer looked like the student's ValueError")
    assert info.value.status == judge.FAILED
