"""Generate the sample submissions of Module 0 from its solution notebook.

Each sample is the released notebook (what a student receives) with answers filled in to show
one grading outcome. Run it after changing Module 0; ``--check`` exits 1 when a committed sample
is out of date (the tests run it).

    python grading/make_samples.py          # write grading/samples/<student>/00_orientation/
    python grading/make_samples.py --check  # compare only

Only ``perfect`` answers the concept checks and the written question; the others leave both
unanswered (0 points), so their scores show the code outcome alone.

Expected outcomes (``recsys-course course`` prints them):

=============== ==================================================================
perfect         every test passes and the concept checks are right (11/11 autograded); the
                written answer awaits a grader, so the status is needs_manual until a TA
                scores it in formgrader
partial         exercise 1 right, exercise 2 ignores text prices (graded, 4/13)
infinite_loop   ``while True: pass`` in exercise 1: its cells time out and score 0
raises          exercise 1's cell raises on execution: its tests score 0
invalid_json    the file is not JSON: failed_to_run
edits_readonly  weakens a read-only test cell: tampered (the test is restored)
deletes_test    deletes a hidden test cell: tampered (the test is put back and run)
memory_hog      allocates without bound: the memory limit stops it, its tests score 0
=============== ==================================================================
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without `pip install -e .`

from recsys_grader import notebooks as nbs  # noqa: E402

ASSIGNMENT = "00_orientation"
SOURCE = HERE.parent / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
SAMPLES = HERE / "samples"
EX1, EX2, WRITTEN = "00_count_by_department", "00_price_summary", "00_metric_answer"
CONCEPTS = "00_concepts"
EX1_VISIBLE, EX2_VISIBLE, EX2_HIDDEN = (
    "00_count_by_department_tests",
    "00_price_summary_tests",
    "00_price_summary_hidden",
)

NAIVE_PRICE_SUMMARY = '''def price_summary(catalog, department=None):
    """Summary of prices (forgets text prices, empty input and unknown departments)."""
    rows = catalog if department is None else catalog[catalog[C.COL_DEPARTMENT] == department]
    prices = rows[C.COL_PRICE].dropna()
    return {
        "count": len(prices),
        "min": prices.min(),
        "max": prices.max(),
        "mean": prices.mean(),
        "median": prices.median(),
    }'''

LOOPING_COUNT = '''def count_by_department(catalog: pd.DataFrame) -> dict[str, int]:
    """Counts products per department (waits for a condition that never comes)."""
    counts = {}
    while True:
        pass
    return counts'''

RAISING_COUNT = """import recsys_kit.helpers_that_do_not_exist  # raises ModuleNotFoundError


def count_by_department(catalog: pd.DataFrame) -> dict[str, int]:
    return {}"""

HOG_COUNT = """# Caches "everything" first: the list grows until the grader's memory limit stops it.
def cache_everything():
    everything = []
    while True:
        everything.append(bytearray(64 * 1024 * 1024))


cache_everything()"""


def _solution(cell_source: str) -> str:
    """The solution region of a source cell, with the markers removed."""
    lines = [
        line
        for line in cell_source.split("\n")
        if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
    ]
    return "\n".join(lines).strip("\n")


def fill_answers(released, answers: dict[str, str], edit=None) -> str:
    """A submission: the released notebook with some answer cells replaced, as JSON text.

    Args:
        released: the student version of the notebook (not modified).
        answers: new source per grade_id.
        edit: optional function that changes the notebook further (e.g. deletes a cell).
    """
    nb = copy.deepcopy(released)
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    if edit:
        edit(nb)
    return nbs.dumps(nbs.normalise(nb))


def build() -> dict[str, str]:
    """Build every sample.

    Returns:
        {student: file text}.

    Raises:
        KeyError: naming a grade_id this script expects but the notebook no longer has.
    """
    source = nbs.read_notebook(SOURCE)
    released = nbs.reference(source).released
    src = {c.metadata["nbgrader"]["grade_id"]: c for c in source.cells if "nbgrader" in c.metadata}
    for grade_id in (EX1, EX2, WRITTEN, CONCEPTS, EX1_VISIBLE, EX2_VISIBLE, EX2_HIDDEN):
        if grade_id not in src:
            raise KeyError(f"{SOURCE} has no cell {grade_id!r}: update grading/make_samples.py")

    def variant(answers: dict[str, str], edit=None) -> str:
        return fill_answers(released, answers, edit)

    # Only `perfect` answers the written question and the concept checks; the others leave them
    # blank (nbgrader scores an unchanged written answer 0 automatically, and the released
    # concept_checks() raises NotImplementedError, so its hidden tests fail), so their status and
    # score show the code outcome alone.
    right = {g: _solution(src[g].source) for g in (EX1, EX2)}

    def weaken_visible_test(nb) -> None:
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == EX2_VISIBLE:
                cell.source = "# the test was too strict\nassert True"

    def delete_hidden_test(nb) -> None:
        nb.cells = [
            c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != EX2_HIDDEN
        ]

    partial = {EX1: right[EX1], EX2: NAIVE_PRICE_SUMMARY}
    perfect = variant(
        {
            **right,
            CONCEPTS: _solution(src[CONCEPTS].source),
            WRITTEN: _solution(src[WRITTEN].source),
        }
    )
    return {
        "perfect": perfect,
        "partial": variant(partial),
        "infinite_loop": variant({**right, EX1: LOOPING_COUNT}),
        "raises": variant({**right, EX1: RAISING_COUNT}),
        "invalid_json": perfect[: len(perfect) // 3],  # a truncated upload
        "edits_readonly": variant({**right, EX2: NAIVE_PRICE_SUMMARY}, weaken_visible_test),
        "deletes_test": variant(partial, delete_hidden_test),
        "memory_hog": variant({**right, EX1: HOG_COUNT}),
    }


#: (status, autograded points) each sample must end with; written to samples/expected.csv, which
#: ``recsys-course course`` and the tests compare against. ``missing`` is the roster student
#: without a submission.
EXPECTED = {
    "perfect": ("needs_manual", 11),
    "partial": ("graded", 4),
    "infinite_loop": ("graded", 4),
    "raises": ("graded", 4),
    "invalid_json": ("failed_to_run", None),
    "edits_readonly": ("tampered", 4),
    "deletes_test": ("tampered", 4),
    "memory_hog": ("graded", 4),
    "no_submission": ("missing", None),
}


#: The sample students' names (``samples/roster.csv``, the demo course's roster).
NAMES = {
    "perfect": ("Pat", "Perfect"),
    "partial": ("Parker", "Partial"),
    "infinite_loop": ("Lou", "Loop"),
    "raises": ("Rae", "Raise"),
    "invalid_json": ("Jay", "Son"),
    "edits_readonly": ("Ed", "Edits"),
    "deletes_test": ("Del", "Deletes"),
    "memory_hog": ("Meg", "Hog"),
    "no_submission": ("Nora", "Absent"),
}


def roster_csv() -> str:
    """``samples/roster.csv``: the demo class (``recsys-course course`` grades it apart from
    the real course, whose roster is ``grading/roster.csv``)."""
    lines = ["student_id,first_name,last_name,email"]
    lines += [f"{s},{first},{last}," for s, (first, last) in NAMES.items()]
    return "\n".join(lines) + "\n"


def expected_csv() -> str:
    """``samples/expected.csv``: student, assignment, status, score (empty: no score)."""
    lines = ["student,assignment,status,score"]
    for student, (status, score) in sorted(EXPECTED.items()):
        lines.append(f"{student},{ASSIGNMENT},{status},{'' if score is None else score}")
    return "\n".join(lines) + "\n"


def sample_path(student: str) -> Path:
    """``grading/samples/<student>/00_orientation/00_orientation.ipynb``."""
    return SAMPLES / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def main(argv: list[str] | None = None) -> int:
    """Write the samples (or with ``--check`` list the stale ones and exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = []
    files = {sample_path(student): text for student, text in build().items()}
    files[SAMPLES / "expected.csv"] = expected_csv()
    files[SAMPLES / "roster.csv"] = roster_csv()
    for path, text in files.items():
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(HERE.parent)))
        elif nbs.write_text_if_changed(path, text):
            print(f"written: {path.relative_to(HERE.parent)}")
    for path in stale:
        print(f"out of date: {path}")
    if stale:
        print("run `python grading/make_samples.py`")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
