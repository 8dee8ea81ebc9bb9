"""Tests of ``recsys-course merge``: grading on several machines gives what one machine gives.

A module fixture builds the set-up of ``docs/deploy.md`` ("Autograding on several machines") in
a temporary folder with four of Module 0's samples: a primary course (released, submissions
collected with nbgrader's ``timestamp.txt``), two shard copies of it graded with the real
``autograde --student ...``, their ``results.json`` and ``gradebook.db`` copied back into
``shards/<k>/``, a manual score given on the primary after the shards were copied, and a fourth
copy graded on one machine as the reference. Each test merges into a fresh copy of the primary.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import warnings
from pathlib import Path

import pytest
from nbgrader.api import Gradebook
from test_grading import LIMITS, A, copy_course, make_samples

from recsys_grader import results as res
from recsys_grader.autograde import autograde
from recsys_grader.cli import main
from recsys_grader.layout import CourseError, CourseLayout
from recsys_grader.merge import merge_shards
from recsys_grader.release import release
from recsys_grader.report import collect

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

#: sample -> the shard that grades it
SHARD_OF = {"perfect": "a", "invalid_json": "a", "partial": "b", "edits_readonly": "b"}
#: sample -> the status grading gives it
EXPECTED = {
    "perfect": res.NEEDS_MANUAL,
    "invalid_json": res.FAILED,
    "partial": res.GRADED,
    "edits_readonly": res.TAMPERED,
}
#: nbgrader collect's timestamp.txt, for two of the submissions
TIMESTAMPS = {"perfect": "2025-03-01 09:15:00.000000 UTC", "partial": "2025-03-02 18:40:00 +0100"}
MANUAL = ("perfect", make_samples.WRITTEN, 1.5)  # a TA's score for the written answer (max 2)
EARLIER = res.Result("no_submission", A, res.MISSING, None, 13.0, "no submission folder")


def collect_submissions(root: Path, students: list[str]) -> None:
    """Copy samples into ``submitted/`` as ``nbgrader collect`` lays them out."""
    for student in students:
        folder = root / "submitted" / student / A
        shutil.copytree(root / "samples" / student / A, folder)
        if student in TIMESTAMPS:
            (folder / "timestamp.txt").write_text(TIMESTAMPS[student] + "\n")


def give_manual_score(root: Path, student: str, cell: str, points: float) -> None:
    """What formgrader writes when a TA scores a cell (creating the submission if needed)."""
    layout = CourseLayout.load(root)
    with warnings.catch_warnings(), Gradebook(layout.db_url, layout.course_id) as gb:
        warnings.simplefilter("ignore")
        gb.update_or_create_student(student)
        gb.update_or_create_submission(A, student)
        grade = gb.find_grade(cell, A, A, student)
        grade.manual_score, grade.needs_manual_grade = points, False
        gb.db.commit()


def gradebook_state(root: Path) -> dict[str, dict]:
    """Everything the gradebook holds about each submission of Module 0."""
    layout = CourseLayout.load(root)
    state = {}
    with warnings.catch_warnings(), Gradebook(layout.db_url, layout.course_id) as gb:
        warnings.simplefilter("ignore")
        for sub in gb.find_assignment(A).submissions:
            (nb,) = sub.notebooks
            state[sub.student_id] = {
                "timestamp": sub.timestamp,
                "flagged": nb.flagged,
                "grades": {
                    g.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in nb.grades
                },
                "comments": {c.name: (c.auto_comment, c.manual_comment) for c in nb.comments},
            }
    return state


def results_state(root: Path) -> dict[tuple[str, str], dict]:
    """The results store without execution times (they differ between runs)."""
    stored = res.load(CourseLayout.load(root).results_file)
    return {k: {**dataclasses.asdict(r), "seconds": None} for k, r in stored.items()}


def report_rows(root: Path) -> dict[str, tuple]:
    """What ``report`` would write for each student: status, score, max, pending written cells."""
    rows = collect(CourseLayout.load(root))
    return {r.student: (r.status, r.score, r.max_score, r.manual_pending) for r in rows}


def fingerprint(root: Path) -> tuple[str, bytes | None]:
    """The primary's grading state, byte for byte."""
    results = root / "reports" / "results.json"
    digest = hashlib.sha256((root / "gradebook.db").read_bytes()).hexdigest()
    return digest, results.read_bytes() if results.is_file() else None


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    """{"primary": base of the ungraded primary, "single": course root graded on one machine,
    "a"/"b": shard folders holding results.json and gradebook.db}."""
    base = tmp_path_factory.mktemp("shards")
    primary = copy_course(base / "primary")
    release(root=str(primary))
    collect_submissions(primary, sorted(SHARD_OF))
    res.save(primary / "reports" / "results.json", {EARLIER.key: EARLIER})
    folders = {"primary": base / "primary"}
    for shard in ("a", "b"):
        students = sorted(s for s, k in SHARD_OF.items() if k == shard)
        # step 4: a full copy with the gradebook, only this shard's submissions, no grading state
        shutil.copytree(
            base / "primary",
            base / f"host_{shard}",
            ignore=shutil.ignore_patterns("submitted", "reports"),
        )
        root = base / f"host_{shard}" / "grading"
        for student in students:
            shutil.copytree(primary / "submitted" / student, root / "submitted" / student)
        # step 5: grade naming the shard's students
        outcomes = autograde(students=students, limits=LIMITS, root=str(root), log=lambda _: None)
        assert {r.student: r.status for r in outcomes} == {s: EXPECTED[s] for s in students}
        # step 6: bring results.json and gradebook.db back
        folders[shard] = base / "shards" / shard
        folders[shard].mkdir(parents=True)
        shutil.copy2(root / "reports" / "results.json", folders[shard] / "results.json")
        shutil.copy2(root / "gradebook.db", folders[shard] / "gradebook.db")
    # a TA scores the written answer on the primary after the shards were copied
    give_manual_score(primary, *MANUAL)
    # the reference: the same course graded on one machine
    shutil.copytree(base / "primary", base / "single")
    single = base / "single" / "grading"
    autograde(students=sorted(SHARD_OF), limits=LIMITS, root=str(single), log=lambda _: None)
    folders["single"] = single
    return folders


def fresh_primary(setup: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the unmerged primary; returns its course root."""
    shutil.copytree(setup["primary"], tmp_path / "primary")
    return tmp_path / "primary" / "grading"


def test_merged_primary_equals_grading_on_one_machine(setup, tmp_path, capsys):
    primary = fresh_primary(setup, tmp_path)
    shards = [str(setup["a"]), str(setup["b"])]
    assert main(["--root", str(primary), "merge", *shards]) == 0
    out = capsys.readouterr().out
    assert f"merged {setup['a']}: 2 result(s), 2 gradebook submission(s)" in out
    assert f"merged {setup['b']}: 2 result(s), 2 gradebook submission(s)" in out

    single = setup["single"]
    merged_book, single_book = gradebook_state(primary), gradebook_state(single)
    assert set(merged_book) == set(SHARD_OF)
    assert merged_book == single_book
    assert merged_book["invalid_json"]["flagged"] and merged_book["edits_readonly"]["flagged"]
    assert not merged_book["partial"]["flagged"]
    assert all(auto is None for auto, _, _ in merged_book["invalid_json"]["grades"].values())
    assert merged_book["perfect"]["timestamp"] is not None  # copied from the shard
    # the manual score given on the primary survives; the shard never had it
    student, cell, points = MANUAL
    assert merged_book[student]["grades"][cell][1] == points
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{setup['a'] / 'gradebook.db'}") as gb:
        warnings.simplefilter("ignore")
        assert gb.find_grade(cell, A, A, student).manual_score is None

    merged_results, single_results = results_state(primary), results_state(single)
    assert merged_results == single_results
    statuses = {s: r["status"] for (s, _), r in merged_results.items()}
    assert statuses == {**EXPECTED, EARLIER.student: res.MISSING}  # the primary's record is kept
    rows = report_rows(primary)
    assert rows == report_rows(single)
    # the manual points count; like autograde, the merge leaves the re-graded cell for review
    assert rows["perfect"] == (res.NEEDS_MANUAL, 11 + points, 13, 1)
    assert rows["invalid_json"][:2] == (res.FAILED, None)

    # merging the same shards again changes nothing
    assert main(["--root", str(primary), "merge", *shards]) == 0
    assert gradebook_state(primary) == single_book
    assert results_state(primary) == single_results


def _spoil(case: str, good: Path, other: Path, bad: Path) -> None:
    """Make ``bad`` a shard folder with one problem, from the good shard ``good``."""
    if case == "no_folder":
        return
    shutil.copytree(good, bad)
    if case == "no_results":
        (bad / "results.json").unlink()
    elif case == "corrupt_results":
        (bad / "results.json").write_text('{"results": [{"student": "x"')
    elif case == "no_gradebook":
        (bad / "gradebook.db").unlink()
    elif case == "corrupt_gradebook":
        (bad / "gradebook.db").write_bytes(b"this is not a database\n" * 200)
    elif case == "unknown_assignment":
        stored = json.loads((bad / "results.json").read_text())
        stored["results"][0]["assignment"] = "01_not_released"
        (bad / "results.json").write_text(json.dumps(stored))
    elif case == "other_course":
        # what grading with CourseDirectory.course_id = "other_course" leaves in the gradebook
        with (
            warnings.catch_warnings(),
            Gradebook(f"sqlite:///{bad / 'gradebook.db'}", "other_course"),
        ):
            warnings.simplefilter("ignore")
    elif case == "mismatched_files":
        shutil.copy2(other / "gradebook.db", bad / "gradebook.db")
    else:
        raise AssertionError(case)


BAD_SHARDS = {
    "no_folder": r"shard folder .*bad does not exist: copy the shard's .*step 6",
    "no_results": r"bad/results\.json is missing: copy grading/reports/results\.json",
    "corrupt_results": r"bad/results\.json is not a valid results store .*copy grading/reports",
    "no_gradebook": r"bad/gradebook\.db is missing: copy grading/gradebook\.db",
    "corrupt_gradebook": r"bad/gradebook\.db is not a readable nbgrader gradebook \(file is not",
    "unknown_assignment": r"bad/results\.json has results for 01_not_released, which the primary "
    r"gradebook .* does not have: release it on the primary \(`recsys-course release",
    "other_course": r"bad/gradebook\.db was graded for course 'other_course', not "
    r"'recsys_course' .*unchanged copy",
    "mismatched_files": r"bad/results\.json says .* but .*bad/gradebook\.db has no submission "
    r"for it: the two files must come from the same shard",
}


@pytest.mark.parametrize("case", sorted(BAD_SHARDS))
def test_bad_shard_is_refused_and_the_primary_is_unchanged(setup, tmp_path, case):
    primary = fresh_primary(setup, tmp_path)
    bad = tmp_path / "bad"
    _spoil(case, setup["b"], setup["a"], bad)
    before = fingerprint(primary)
    with pytest.raises(CourseError, match=BAD_SHARDS[case]):
        # the good shard comes first: it must not be half-merged either
        merge_shards(CourseLayout.load(primary), [setup["a"], bad], log=lambda _: None)
    assert fingerprint(primary) == before
    assert set(gradebook_state(primary)) == {MANUAL[0]}  # only the TA's entry


def test_cli_reports_a_bad_shard_with_exit_code_2(setup, tmp_path, capsys):
    primary = fresh_primary(setup, tmp_path)
    before = fingerprint(primary)
    assert main(["--root", str(primary), "merge", str(setup["a"]), str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("recsys-course merge: error: shard folder ") and "step 6" in err
    assert fingerprint(primary) == before
    with pytest.raises(SystemExit):  # argparse: at least one SHARD_DIR
        main(["--root", str(primary), "merge"])


def test_a_pair_in_two_shards_warns_and_the_last_shard_wins(setup, tmp_path):
    primary = fresh_primary(setup, tmp_path)
    again = tmp_path / "a_again"
    shutil.copytree(setup["a"], again)
    lines: list[str] = []
    merged = merge_shards(CourseLayout.load(primary), [setup["a"], again], log=lines.append)
    assert [m.folder for m in merged] == [setup["a"], again]
    assert lines == [
        f"warning: {s}/{A} is in {setup['a']} and {again}; {again} wins"
        for s in ("invalid_json", "perfect")
    ]
    book = gradebook_state(primary)
    assert {s: book[s] for s in ("invalid_json", "perfect")} == {
        s: gradebook_state(setup["single"])[s] for s in ("invalid_json", "perfect")
    }
