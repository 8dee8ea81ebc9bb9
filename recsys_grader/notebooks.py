"""Notebook helpers shared by the verbs: reading, normalising, hidden tests, reference versions.

Example:
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    >>> dumps(normalise(nb)).startswith("{")
    True
"""

from __future__ import annotations

import copy
import hashlib
import html
import os
import re
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader import utils as nbu
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    LockCells,
)

from recsys_grader.layout import CourseError

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
#: Cell metadata keys kept in released notebooks (everything else is editor state).
KEPT_CELL_METADATA = ("deletable", "editable", "nbgrader", "tags")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
_ID_OK = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")


def read_notebook(path: Path) -> NotebookNode:
    """Read a notebook (any nbformat 4 minor version), as version 4.

    Args:
        path: the ``.ipynb`` file.

    Returns:
        The notebook.

    Raises:
        CourseError: when the file is missing or is not a valid notebook, naming the problem.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CourseError(f"notebook not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise CourseError(f"{path} is not UTF-8 text ({exc})") from None
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises JSON, validation and key errors alike
        first = str(exc).strip().split("\n")[0][:80]
        raise CourseError(
            f"{Path(path).name} is not a valid notebook ({type(exc).__name__}: {first}); "
            "open it in Jupyter and save it again, or restore it from git"
        ) from None
    if not isinstance(nb.get("cells"), list):
        raise CourseError(f"{path} has no list of cells; restore it from git")
    return nb


def _stable_id(cell: NotebookNode, index: int) -> str:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    if grade_id and _ID_OK.match(grade_id):
        return grade_id
    digest = hashlib.sha1(f"{index}\0{cell.get('source', '')}".encode()).hexdigest()
    return f"cell-{digest[:12]}"


def normalise(nb: NotebookNode) -> NotebookNode:
    """A copy without outputs, execution counts or editor metadata, with stable cell ids.

    Args:
        nb: a notebook.

    Returns:
        The normalised copy; ``dumps`` of it is identical for identical content.
    """
    nb = copy.deepcopy(nb)
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = NotebookNode(
        {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    )
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {})
        cell.metadata = NotebookNode({k: meta[k] for k in KEPT_CELL_METADATA if k in meta})
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
        if "attachments" in cell and not cell.attachments:
            del cell["attachments"]
        cell_id = cell.get("id")
        if not cell_id or not _ID_OK.match(cell_id) or cell_id in seen:
            cell_id = _stable_id(cell, index)
            while cell_id in seen:  # duplicated grade ids are reported elsewhere
                cell_id = f"{cell_id[:56]}-{index}"
        cell.id = cell_id
        seen.add(cell_id)
    return nb


def dumps(nb: NotebookNode) -> str:
    """Serialise as nbformat does (indent 1, sorted keys), with a final newline."""
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def write_text_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` atomically unless the file already holds exactly it.

    Returns:
        Whether the file was written.
    """
    path = Path(path)
    if path.is_file() and path.read_bytes() == text.encode("utf-8"):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True


def hidden_test_blocks(nb: NotebookNode) -> list[str]:
    """The text of every ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` block.

    Args:
        nb: a source (solutions) notebook.

    Returns:
        One string per block, markers excluded.
    """
    blocks = []
    for cell in nb.cells:
        inside, lines = False, []
        for line in cell.source.split("\n"):
            if BEGIN_HIDDEN in line:
                inside, lines = True, []
            elif END_HIDDEN in line and inside:
                inside = False
                blocks.append("\n".join(lines))
            elif inside:
                lines.append(line)
    return blocks


# Bare statements and block headers ("for _ in range(20):") recur in any code base: no secret.
_GENERIC = re.compile(
    r"^(except|else|elif|try|finally|return|pass|break|continue|raise)\b"
    r"|^(for|while|if|with|def|class|async)\b.*:$"
)
_DISTINCT = re.compile(r"[(\[\"'0-9]|==")


def secret_lines(blocks: list[str], public: str = "", min_chars: int = 16) -> list[str]:
    """The distinctive lines of hidden test blocks, for leak checks.

    Generic lines would match innocent code (``except ValueError as exc:``), and a line that a
    released notebook shows anyway (e.g. setup shared with the visible tests) is no secret. Kept:
    stripped lines of at least ``min_chars`` characters that are not comments or bare control
    statements or block headers (``for ... :``), hold a call, a subscript, a literal or a
    comparison, and do not occur in ``public``.

    Args:
        blocks: hidden test blocks (see :func:`hidden_test_blocks`).
        public: text students see (the released notebooks' sources).
        min_chars: shortest line kept.

    Returns:
        Sorted unique lines.
    """
    public_squashed = re.sub(r"\s+", "", public)
    lines = set()
    for block in blocks:
        for line in block.split("\n"):
            line = line.strip()
            if len(line) < min_chars or line.startswith("#") or _GENERIC.match(line):
                continue
            if not _DISTINCT.search(line):
                continue
            if public and re.sub(r"\s+", "", line) in public_squashed:
                continue
            lines.add(line)
    return sorted(lines)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(markup: str) -> str:
    """The visible text of an HTML page (syntax-highlighting spans joined back together)."""
    parser = _TextExtractor()
    parser.feed(markup)
    return html.unescape("".join(parser.parts))


def leaked_lines(text: str, secrets: list[str]) -> list[str]:
    """Which secret lines appear in ``text`` (whitespace-insensitive)."""
    squashed = re.sub(r"\s+", "", text)
    return [s for s in secrets if re.sub(r"\s+", "", s) in squashed]


@dataclass(frozen=True)
class ReferenceCell:
    """One nbgrader cell of the reference notebook (what the gradebook stores)."""

    grade_id: str
    cell_type: str
    source: str  # graded version: solutions cleared, hidden tests kept
    locked: bool
    grade: bool
    solution: bool
    points: float
    release_checksum: str  # checksum of the released cell (hidden tests removed)


@dataclass(frozen=True)
class Reference:
    """The graded and released versions of one source notebook."""

    graded: NotebookNode
    released: NotebookNode
    cells: tuple[ReferenceCell, ...]

    @property
    def by_id(self) -> dict[str, ReferenceCell]:
        """Cells by grade id."""
        return {c.grade_id: c for c in self.cells}

    @property
    def max_points(self) -> float:
        """Total points of the notebook."""
        return sum(c.points for c in self.cells if c.grade)


def reference(source_nb: NotebookNode) -> Reference:
    """Build what ``nbgrader generate_assignment`` stores and releases, in memory.

    Args:
        source_nb: the instructor notebook (solutions and hidden tests).

    Returns:
        The graded version (what autograding executes), the released version and the cells.

    Raises:
        CourseError: when nbgrader rejects the notebook's metadata.
    """
    graded = copy.deepcopy(source_nb)
    resources: dict = {}
    try:
        for pp in (LockCells(), ClearSolutions(), ClearOutput(), CheckCellMetadata()):
            graded, resources = pp.preprocess(graded, resources)
        graded, resources = ComputeChecksums().preprocess(graded, resources)
        released = copy.deepcopy(graded)
        for pp in (ClearHiddenTests(), ClearMarkScheme(), ComputeChecksums(), CheckCellMetadata()):
            released, resources = pp.preprocess(released, resources)
    except Exception as exc:  # nbgrader raises RuntimeError/ValueError on bad metadata
        raise CourseError(f"nbgrader rejects the notebook: {exc}") from None
    rel_by_id = {
        c.metadata.nbgrader["grade_id"]: c for c in released.cells if "nbgrader" in c.metadata
    }
    cells = []
    for cell in graded.cells:
        meta = cell.metadata.get("nbgrader")
        if not meta or "grade_id" not in meta:
            continue
        grade_id = meta["grade_id"]
        cells.append(
            ReferenceCell(
                grade_id=grade_id,
                cell_type=cell.cell_type,
                source=cell.source,
                locked=nbu.is_locked(cell),
                grade=nbu.is_grade(cell),
                solution=nbu.is_solution(cell),
                points=float(meta.get("points", 0) or 0) if nbu.is_grade(cell) else 0.0,
                release_checksum=nbu.compute_checksum(rel_by_id[grade_id]),
            )
        )
    ids = [c.grade_id for c in cells]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise CourseError(f"duplicated grade_id(s) {duplicated}: give every nbgrader cell its own")
    return Reference(graded=graded, released=released, cells=tuple(cells))
