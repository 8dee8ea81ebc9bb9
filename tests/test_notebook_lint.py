"""Lint of every course notebook (instructor sources and the student release).

The prose of a notebook is a set of claims; these checks catch the ones that cannot be true:

* no control characters (a ``\\a`` typed into a Python string became a BEL, "$\\x07lpha$");
* no line break between two Chinese characters: JupyterLab renders a soft break as a space,
  which shows as a stray gap inside a Chinese sentence;
* every "Module N" / "第 N 模块" reference names a module that exists;
* no development-history narration (what an earlier version of the kit did is not course content);
* numbers quoted in prose and model answers are either computed where the reader sees them (in a
  code cell's output, so the prose does not restate them), stated as approximate ("about 0.4",
  "约 0.4") with their source named in the same cell, or a defined constant of the module
  (listed below with the reason). A bare "0.41" in a model answer is a number that silently goes
  stale when the data, the model or the code changes.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest

from recsys_kit.paths import REPO_ROOT

NOTEBOOKS = sorted(
    p
    for folder in ("solutions", "course")
    for p in (REPO_ROOT / folder).glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")
)
MODULES = {int(p.name[:2]) for p in (REPO_ROOT / "solutions").glob("[0-9][0-9]_*") if p.is_dir()}

CJK = "\u2018-\u201d\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
#: A soft break between two CJK characters (emphasis markers allowed on either side).
CJK_BREAK = re.compile(f"[{CJK}][*_]*\n[*_]*[{CJK}]")
MODULE_REF = re.compile(
    r"\bModules? (\d+)(?:\s*(?:[–-]|and|to)\s*(\d+))?|第 ?(\d+)(?: ?[–-] ?(\d+))? ?模块"
)
HISTORY = re.compile(
    r"\b(?:an? |the )?(?:early|earlier|previous|old|first) version of\b|\bused to (?:be|have)\b"
    r"|\bwe (?:fixed|rewrote|changed) the kit\b|\bin our (?:earlier )?runs\b"
    r"|早期版本|旧版本|之前的版本",
    re.IGNORECASE,
)
#: A measured-looking number: a decimal or a percentage.
NUMBER = re.compile(r"(?<![\w.])(\d+\.\d+%?|\d+%)")
#: Words that mark a number as approximate (English or Chinese), within the few words before it.
APPROX = re.compile(
    r"(?:about|around|roughly|approximately|nearly|almost|≈|~|约|大约|近|接近)\W*(?:\S+\W+){0,3}$",
    re.IGNORECASE,
)
#: A setting or a target, not a result: "weight 0.1", "alpha = 0.5", "at least 0.95".
PARAMETER = re.compile(
    r"(?:weights?|tolerance|temperature|alpha|beta|threshold|at least|under|below|above|"
    r"=|≤|≥|<|>|权重|温度|阈值|低于|高于|至少)"
    r"\W*(?:\S+\W+){0,2}$",
    re.IGNORECASE,
)
#: A cell that states approximate measured numbers must name where they come from.
SOURCE = re.compile(
    r"full run|the (?:table|tables|plot|output|cell|numbers?) (?:above|below)|printed|above|"
    r"section \d|timings\.json|this notebook|measured|上表|上面|本笔记本|实测|测得|第 ?\d+ ?节",
    re.IGNORECASE,
)
#: Defined constants that look like measurements, per module (conventions and parameters).
DEFINED = {
    "03": {"70%", "30%"},  # the train/test split of the queries
    "04": {"20%", "0.07"},  # the held-out share of pictured products; CLIP's initial temperature
    "05": {"2.5%", "97.5%", "95%", "5%", "10%", "80%", "0.05", "0.9"},  # intervals, alpha, MDE,
    # power, the simulator's mean position bias
    "06": {"5%", "1%"},  # an exploration budget; "well under 1%" of the catalogue, a bound
    # the published all-item hit-rate@10 on Amazon Beauty (S3-Rec's repository, Zhou et al.,
    # CIKM 2020), cited in the real-data section: a reference, not a measurement of ours
    "06-real-data": {"0.0152", "0.0605", "0.3"},
    "07": {"2.7", "0%"},  # Gemma 3's 270M = 2.7 x 10^8 parameters; "0% invented" by construction
    "08": {"95%", "80%", "5%", "10%", "30%", "50%", "100%"},  # interval, power, MDE, the exposure
    # cap, roll-out steps
}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _prose(text: str) -> str:
    """Markdown with code and maths blanked out (numbers there are code, not claims)."""
    for pattern, flags in ((r"```.*?```", re.S), (r"`[^`]*`", 0), (r"\$\$.*?\$\$", re.S),
                           (r"\$[^$]*\$", 0)):  # fmt: skip
        text = re.sub(pattern, lambda m: " " * len(m.group()), text, flags=flags)
    return text


def _where(path: Path, index: int) -> str:
    return f"{path.relative_to(REPO_ROOT)} cell {index}"


def _markdown_matches(path: Path, pattern: re.Pattern) -> list[str]:
    """Every match of a pattern in the notebook's markdown cells, with its place."""
    return [
        f"{_where(path, i)}: {m.group()!r}"
        for i, cell in enumerate(_cells(path))
        if cell["cell_type"] == "markdown"
        for m in pattern.finditer(_source(cell))
    ]


def test_there_are_notebooks_to_lint():
    assert len(NOTEBOOKS) >= 18 and set(range(9)) <= MODULES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.parent.name + "/" + p.stem)
def test_no_control_characters(path):
    bad = []
    for i, cell in enumerate(_cells(path)):
        for ch in set(_source(cell)) - {"\n", "\t"}:
            if unicodedata.category(ch) == "Cc":
                bad.append(f"{_where(path, i)}: U+{ord(ch):04X}")
    assert not bad, "control characters (a '\\a' or '\\b' typed into a string?): " + "; ".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.parent.name + "/" + p.stem)
def test_no_line_break_inside_chinese_sentences(path):
    bad = _markdown_matches(path, CJK_BREAK)
    assert not bad, "join these lines (JupyterLab shows the break as a space): " + "; ".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.parent.name + "/" + p.stem)
def test_module_references_exist(path):
    bad = []
    for i, cell in enumerate(_cells(path)):
        for m in MODULE_REF.finditer(_source(cell)):
            numbers = {int(g) for g in m.groups() if g}
            if numbers - MODULES:
                bad.append(f"{_where(path, i)}: {m.group()!r}")
    assert not bad, f"modules that do not exist (there are {sorted(MODULES)}): " + "; ".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.parent.name + "/" + p.stem)
def test_no_development_history(path):
    bad = _markdown_matches(path, HISTORY)
    assert not bad, "the course teaches the kit as it is, not its history: " + "; ".join(bad)


def _claims_cell(cell: dict) -> bool:
    """Prose that reports results: model answers and reading text, not specifications."""
    if cell["cell_type"] != "markdown":
        return False
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("grade") and meta.get("solution"):
        return True  # a model answer
    gid = meta.get("grade_id", "")
    if gid.endswith(("_text", "_question", "_goals", "_title")):
        return False  # exercise specifications, questions and goals define, they do not report
    head = _source(cell).lstrip()
    return not head.startswith(("## Concept checks", "## Try it yourself", "## Further reading"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.parent.name + "/" + p.stem)
def test_quoted_numbers_are_approximate_with_a_source_or_defined(path):
    defined = DEFINED.get(path.stem[:2], set()) | DEFINED.get(path.stem[:2] + "-real-data", set())
    bare, unsourced = [], []
    for i, cell in enumerate(_cells(path)):
        if not _claims_cell(cell):
            continue
        text = _prose(_source(cell))
        approximate = False
        for m in NUMBER.finditer(text):
            before = text[max(0, m.start() - 40) : m.start()]
            if m.group(1) in defined or PARAMETER.search(before):
                continue
            if APPROX.search(text[max(0, m.start() - 60) : m.start()]):
                approximate = True
                continue
            bare.append(
                f"{_where(path, i)}: {m.group(1)!r} in {text[max(0, m.start() - 40) : m.end()]!r}"
            )
        if approximate and not SOURCE.search(text):
            unsourced.append(_where(path, i))
    assert not bare, (
        "numbers quoted as exact: print them from the notebook instead, or write 'about X' and "
        "name the source (e.g. '(numbers of a full run, table above)'): " + "; ".join(bare)
    )
    assert not unsourced, "approximate numbers without their source: " + "; ".join(unsourced)


@pytest.mark.parametrize(
    "path",
    [p for p in NOTEBOOKS if p.parent.parent.name == "solutions"],
    ids=lambda p: p.stem,
)
def test_hidden_tests_name_their_cases(path):
    """The grader reports the name of the failing case: every hidden test says which one it is."""
    bad = []
    for i, cell in enumerate(_cells(path)):
        text = _source(cell)
        if "### BEGIN HIDDEN TESTS" not in text:
            continue
        hidden = text.split("### BEGIN HIDDEN TESTS", 1)[1]
        first = re.search(r"^\s*(assert\b|raise AssertionError)", hidden, flags=re.M)
        case = re.search(r"^\s*# case: \S", hidden, flags=re.M)
        if first and (case is None or case.start() > first.start()):
            bad.append(_where(path, i))
    assert not bad, "put a '# case: <name>' line above each case's assertions: " + "; ".join(bad)
