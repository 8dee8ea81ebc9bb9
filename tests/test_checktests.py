"""``recsys-course check-tests``: mutants, wrong answers and alternatives graded by the judge.

The fast tests run the machinery on a tiny hand-made notebook (mutant generation, the header of
wrong answers, in-place changes replayed, static delegation checks on a candidate's source, a
mutant that loops forever); the slow one measures every module of the course (a bounded sample of
mutants per exercise) and holds it to all of its non-equivalent mutants and wrong answers
rejected (issue 11 asks for 95%), every correct alternative accepted.
"""

from __future__ import annotations

import dataclasses

import nbformat
import pytest
from coursecopy import grade_cell

from recsys_grader import checktests, mutants
from recsys_grader.layout import CourseError

ANSWER = '''def clipped_sorted(values, low, high):
    """Values clipped to [low, high], sorted; the input list is unchanged."""
    ### BEGIN SOLUTION
    if low > high:
        raise ValueError("low must not exceed high")
    return list(sorted(min(max(v, low), high) for v in values))
    ### END SOLUTION
'''
TESTS = """# Visible tests (1 point).
assert clipped_sorted([3, -1, 2], 0, 2) == [0, 2, 2]
"""
HIDDEN = """# Hidden tests (2 points).
### BEGIN HIDDEN TESTS
# case: bounds
assert clipped_sorted([5, -5, 0.5], -1, 1) == [-1, 0.5, 1]
# case: the input is unchanged
_v = [3, 1, 2]
assert clipped_sorted(_v, 0, 10) == [1, 2, 3] and _v == [3, 1, 2]
# case: bad bounds
try:
    clipped_sorted([1], 2, 1)
except ValueError:
    pass
else:
    raise AssertionError("low > high must raise")
### END HIDDEN TESTS
"""
COUNTDOWN = """def countdown(n):
    ### BEGIN SOLUTION
    steps = 0
    while n > 0:
        n -= 1
        steps += 1
    return steps
    ### END SOLUTION
"""
UNIT = """def unit_rows(x):
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=float)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    ### END SOLUTION
"""
UNIT_HIDDEN = """### BEGIN HIDDEN TESTS
from recsys_kit.encoders import pooling as _pooling
from recsys_grader.testing import assert_does_not_delegate

# case: rows
_x = np.array([[3.0, 4.0], [0.0, 0.0]])
_y = assert_does_not_delegate(unit_rows, [_pooling.l2_normalize], _x)
assert np.allclose(_y, [[0.6, 0.8], [0.0, 0.0]])
### END HIDDEN TESTS
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A one-notebook course folder: three exercises, wrong answers, an alternative."""
    folder = tmp_path_factory.mktemp("solutions") / "00_tiny"
    (folder / "wrong_answers").mkdir(parents=True)
    (folder / "alternatives").mkdir()
    nb = nbformat.v4.new_notebook(
        cells=[
            grade_cell("import numpy as np", "00_setup"),
            grade_cell(ANSWER, "00_clip", solution=True),
            grade_cell(TESTS, "00_clip_tests", grade=True, points=1),
            grade_cell(HIDDEN, "00_clip_hidden", grade=True, points=2),
            grade_cell(COUNTDOWN, "00_countdown", solution=True),
            grade_cell(
                "assert countdown(3) == 3 and countdown(-2) == 0",
                "00_countdown_tests",
                grade=True,
                points=1,
            ),
            grade_cell(UNIT, "00_unit", solution=True),
            grade_cell(UNIT_HIDDEN, "00_unit_hidden", grade=True, points=1),
        ]
    )
    path = folder / "00_tiny.ipynb"
    nbformat.write(nb, path)
    (folder / "wrong_answers" / "sorts_in_place.py").write_text(
        "# exercise: 00_clip\n# why: sorts the caller's list in place.\n"
        "def clipped_sorted(values, low, high):\n"
        "    values.sort()\n"
        "    return [min(max(v, low), high) for v in values]\n"
    )
    (folder / "wrong_answers" / "calls_the_kit.py").write_text(
        "# exercise: 00_unit\n# why: calls the kit's l2_normalize.\n"
        "from recsys_kit.encoders import pooling\n\n\n"
        "def unit_rows(x):\n"
        "    return pooling.l2_normalize(x)\n"
    )
    (folder / "alternatives" / "comprehension.py").write_text(
        "# exercise: 00_clip\n# why: clips with sorted() first, then a comprehension.\n"
        "def clipped_sorted(values, low, high):\n"
        "    if high < low:\n"
        "        raise ValueError(f'empty range [{low}, {high}]')\n"
        "    return [low if v < low else high if v > high else v for v in sorted(values)]\n"
    )
    return path


def test_mutants_are_deterministic_and_stay_inside_the_solution():
    first = mutants.mutants(ANSWER, "00_clip")
    again = mutants.mutants(ANSWER, "00_clip")
    assert [m.ident for m in first] == [m.ident for m in again]
    assert len({m.ident for m in first}) == len(first)
    assert {"guard", "minmax", "cmp"} <= {m.operator for m in first}
    for m in first:
        assert m.source.startswith("def clipped_sorted(values, low, high):")
        assert "Values clipped" in m.source, "the docstring (outside the solution) is kept"
        assert "Values clipped" not in m.before + m.after
    chosen = mutants.select(first, 4)
    assert len(chosen) == 4 and len({m.operator for m in chosen}) == 4, "round-robin by operator"
    assert [m.ident for m in chosen] == [m.ident for m in mutants.select(first, 4)]


def test_an_id_survives_edits_elsewhere_in_thegrade_cell():
    edited = ANSWER.replace("sorted;", "sorted (renamed docstring);") + "\n# trailing comment\n"
    assert {m.ident for m in mutants.mutants(ANSWER, "00_clip")} == {
        m.ident for m in mutants.mutants(edited, "00_clip")
    }


def test_candidate_files_need_their_header(tmp_path):
    bad = tmp_path / "nameless.py"
    bad.write_text("def f():\n    return 1\n")
    with pytest.raises(CourseError, match="# exercise: NN_name"):
        checktests.read_candidate(bad, checktests.WRONG)
    good = tmp_path / "good.py"
    good.write_text("# exercise: 00_x\n# why: first line\n#   second line\ndef f():\n    pass\n")
    candidate = checktests.read_candidate(good, checktests.WRONG)
    assert candidate.exercise == "00_x" and candidate.note == "first line second line"
    listing = tmp_path / "equivalent_mutants.txt"
    listing.write_text("# comment\ncmp-123456  x < y is x <= y on integers\n")
    assert checktests.read_equivalent(listing) == {"cmp-123456": "x < y is x <= y on integers"}
    listing.write_text("cmp-123456\n")
    with pytest.raises(CourseError, match="justification|why"):
        checktests.read_equivalent(listing)


def _mutant(where: str, operator: str) -> str:
    found = [m for m in mutants.mutants(ANSWER, "00_clip") if m.operator == operator]
    return next(m.ident for m in found if m.before.startswith(where))


#: list(sorted(...)) -> sorted(...): truly equivalent; removing the guard: not equivalent.
_EQUIVALENT, _NOT_EQUIVALENT = _mutant("list(sorted(", "unwrap"), _mutant("if low > high", "guard")


@pytest.fixture(scope="module")
def tiny_report(tiny):
    """The tiny course checked once (a process of its own), with a truly equivalent mutant, a
    wrongly listed one and a stale id in its equivalent_mutants.txt."""
    listing = tiny.parent / checktests.EQUIVALENT_FILE
    listing.write_text(
        f"{_EQUIVALENT}  sorted() already returns a list\n"
        f"{_NOT_EQUIVALENT}  wrongly listed: the tests reject it\n"
        "nothing-000000  no longer generated\n"
    )
    try:
        (report,) = checktests.check_notebooks([tiny], max_mutants=None, jobs=1, budget_floor=1.0)
    finally:
        listing.unlink()
    return report


@pytest.mark.slow
def test_the_tiny_course_is_measured_end_to_end(tiny_report):
    by_id = {e.exercise: e for e in tiny_report.exercises}
    assert set(by_id) == {"00_clip", "00_countdown", "00_unit"}
    problems = [p for e in tiny_report.exercises for p in e.problems]
    assert problems == [p for p in problems if _NOT_EQUIVALENT in p], problems
    clip = by_id["00_clip"]
    assert clip.points == 3
    # in-place changes come back through the wire and are seen by the test
    (in_place,) = clip.wrong
    assert not in_place.full_marks and "input is unchanged" in in_place.feedback
    assert clip.alternatives and all(t.full_marks for t in clip.alternatives)
    # the static delegation check reads the candidate's own source
    (delegating,) = by_id["00_unit"].wrong
    assert not delegating.full_marks and "implement it yourself" in delegating.feedback
    # a mutant that never returns is stopped by the time budget and counts as rejected
    loops = [t for t in by_id["00_countdown"].mutants if "timeout" in t.statuses.values()]
    assert loops and all(not t.full_marks for t in loops)
    assert all(t.seconds < 10 for t in loops)
    text = checktests.format_report(tiny_report)
    assert "00_clip" in text and "00_countdown" in text


@pytest.mark.slow
def test_equivalent_mutants_are_left_out_checked_and_stale_ids_reported(tiny_report):
    clip = next(e for e in tiny_report.exercises if e.exercise == "00_clip")
    graded = {t.ident for t in clip.mutants}
    assert {_EQUIVALENT, _NOT_EQUIVALENT} <= set(clip.equivalent) and not graded & set(
        clip.equivalent
    )
    (wrongly_listed,) = clip.problems
    assert _NOT_EQUIVALENT in wrongly_listed and "remove the line" in wrongly_listed
    assert any("nothing-000000" in p for p in tiny_report.problems)
    assert not tiny_report.ok()


#: Mutants graded per exercise by ``make test`` (chosen deterministically, round-robin by operator,
#: so every kind of rewrite is represented): a bounded sample that keeps the whole suite in its
#: budget. ``recsys-course check-tests --max-mutants 0`` grades every mutant (about 15 minutes on
#: 2 cores); run it after changing a solution or its hidden tests.
MAKE_TEST_MUTANTS = 12

#: Exercises (or whole modules) whose wrong answers and alternatives are not written yet: they are
#: left out of the check below, each with its reason, until they are (see the notes on issue 11).
PENDING: dict[str, str] = {}


@pytest.mark.slow
def test_every_module_rejects_every_wrong_answer_and_accepts_every_alternative():
    """Every module: every sampled non-equivalent mutant and every wrong answer rejected (issue 11
    asks for 95%; the course holds itself to all of them), every alternative accepted, at least
    three wrong answers and one alternative per autograded exercise, no stale or wrongly listed
    equivalent mutant."""
    reports = checktests.check(max_mutants=MAKE_TEST_MUTANTS, jobs=2, log=print)
    failures = []
    for report in reports:
        if report.assignment in PENDING:
            continue
        kept = [e for e in report.exercises if e.exercise not in PENDING]
        report = dataclasses.replace(report, exercises=kept)
        thin = [e.exercise for e in report.exercises if len(e.wrong) < 3 or not e.alternatives]
        if thin:
            failures.append(
                f"{report.assignment}: fewer than 3 wrong answers or no alternative: {thin}"
            )
        if not report.ok(min_rejected=1.0):
            failures.append(checktests.format_report(report, min_rejected=1.0))
    assert not failures, "\n".join(failures)


def test_instructor_files_are_never_released():
    from recsys_grader.layout import CourseLayout
    from recsys_grader.release import generate

    layout = CourseLayout.load()
    folder = layout.source_notebook("00_orientation").parent
    assert (folder / "wrong_answers").is_dir() and (folder / "alternatives").is_dir()
    released = generate(layout, "00_orientation", record=False)
    assert set(released) == {"00_orientation.ipynb"}, sorted(released)
