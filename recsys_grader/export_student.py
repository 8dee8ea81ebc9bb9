"""``recsys-course export-student DIR``: the student-facing repository.

Copies ``course/``, ``recsys_kit/`` and ``datasets/``, writes the student's ``pyproject.toml`` and
``environment.yml`` (the repository's, without the instructor extra, the grader package and the
``recsys-course`` command), and a README and a Makefile from the templates in
``grading/templates/``. Solutions, grading state and grading code (``solutions/``, ``grading/``,
tests, ``recsys_grader``, nbgrader) are never exported. Every file of the export is
then scanned for the text of every hidden-test block in ``solutions/`` (whole blocks and
distinctive lines), and notebooks for solution markers; if anything is found the export is
deleted and the command exits 1.

Example:
    >>> from recsys_grader.export_student import export_student
    >>> outcome = export_student("/tmp/student-repo")  # doctest: +SKIP
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from recsys_grader import notebooks as nbs
from recsys_grader.layout import CourseError, CourseLayout

MARKER = ".recsys-student-export"
_IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache", "*.egg-info", ".DS_Store"
)
_FORBIDDEN_MARKERS = ("BEGIN HIDDEN TESTS", "### BEGIN SOLUTION", "BEGIN MARK SCHEME")
_GITIGNORE = ".venv/\n__pycache__/\n*.egg-info/\n.ipynb_checkpoints/\n.cache/\n.runs/\n"


@dataclass
class ExportOutcome:
    """What was exported and what the leak scan found."""

    dest: Path
    files: int = 0
    warnings: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)


def hidden_secrets(layout: CourseLayout) -> tuple[list[str], list[str]]:
    """Hidden-test text of every solution notebook, minus what the releases show anyway.

    Returns:
        (whole blocks, distinctive lines), for :func:`scan`.
    """
    public = "\n".join(
        cell.source
        for path in sorted(layout.release.glob("*/*.ipynb"))
        for cell in nbs.read_notebook(path).cells
    )
    blocks: list[str] = []
    for path in sorted(layout.source.glob("*/*.ipynb")):
        blocks += [b for b in nbs.hidden_test_blocks(nbs.read_notebook(path)) if b.strip()]
    return blocks, nbs.secret_lines(blocks, public=public)


def scan(folder: Path, blocks: list[str], lines: list[str]) -> list[str]:
    """Files of ``folder`` holding a solution marker, a hidden block or a hidden line.

    Returns:
        One description per problem (empty: clean).
    """
    squashed_blocks = [re.sub(r"\s+", "", b) for b in blocks]
    problems = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary data (images, arrays) cannot hold test code
        rel = path.relative_to(folder)
        if path.suffix == ".ipynb" or rel.parts[0] == "course":
            # in notebooks a marker means an unreleased cell; in the kit's code it is just text
            problems += [f"{rel}: solution marker {m!r}" for m in _FORBIDDEN_MARKERS if m in text]
        squashed = re.sub(r"\s+", "", text)
        if any(b and b in squashed for b in squashed_blocks):
            problems.append(f"{rel}: a whole hidden-test block")
        problems += [f"{rel}: hidden-test line {line!r}" for line in nbs.leaked_lines(text, lines)]
    for name in ("solutions", "grading", "tests", *GRADER_NAMES):
        if (folder / name).exists():
            problems.append(f"{name}/ must not be exported")
    return problems


#: Grading code and its tools: none of it may appear in what students install.
GRADER_NAMES = ("recsys_grader", "nbgrader")


def student_pyproject(text: str) -> str:
    """The repository's ``pyproject.toml`` for students: no instructor extra, no grader package,
    no ``recsys-course`` command.

    Args:
        text: the repository's ``pyproject.toml``.

    Returns:
        The student's file.

    Raises:
        CourseError: when the file's layout changed so that the grader cannot be removed.
    """
    out = re.sub(r"(?ms)^# Instructors:.*?^instructor = \[.*?^\]\n", "", text)
    out = re.sub(r"(?ms)^instructor = \[.*?^\]\n", "", out)
    out = re.sub(r"(?ms)^\[project\.scripts\]\n.*?(?=^\[|\Z)", "", out)
    out = out.replace('"recsys_grader*"', "").replace('["recsys_kit*", ]', '["recsys_kit*"]')
    package_data = r"(?ms)^\[tool\.setuptools\.package-data\]\n(?:recsys_grader = .*?\n)+\n?"
    out = re.sub(package_data, "", out)
    meta = tomllib.loads(out)
    project = meta.get("project", {})
    deps = project.get("dependencies", []) + [
        d for extra in project.get("optional-dependencies", {}).values() for d in extra
    ]
    packages = meta.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
    leftover = [d for d in deps if d.split("=")[0].split(">")[0].strip() in GRADER_NAMES]
    if (
        leftover
        or "scripts" in project
        or packages.get("include") != ["recsys_kit*"]
        or ("recsys_grader" in out)
    ):
        raise CourseError(
            "cannot strip the grader from pyproject.toml for students (left: "
            f"{leftover or project.get('scripts') or packages.get('include')}); keep the "
            "instructor extra, [project.scripts] and the package list in their usual form"
        )
    return out


def student_environment(text: str) -> str:
    """The repository's ``environment.yml`` without the instructor section (nbgrader)."""
    out = re.sub(r"(?m)^\s*# instructor.*\n(?:^\s*- (?!.*# dev).*nbgrader.*\n)+", "", text)
    if "nbgrader" in out:
        raise CourseError(
            "cannot strip nbgrader from environment.yml for students: keep it under the "
            "'# instructor' comment"
        )
    return out


def _modules(layout: CourseLayout) -> str:
    items = []
    for path in sorted(layout.release.glob("*/*.ipynb")):
        nb = nbs.read_notebook(path)
        title = next(
            (
                line.lstrip("# ").strip()
                for cell in nb.cells
                if cell.cell_type == "markdown"
                for line in cell.source.split("\n")
                if line.startswith("# ")
            ),
            path.stem,
        )
        items.append(f"* `course/{path.parent.name}/{path.name}`: {title}")
    return "\n".join(items) or "* (no modules released yet: run `recsys-course release`)"


def torch_pin(repo: Path) -> str:
    """The PyTorch requirement the course is tested with: ``TORCH_SPEC`` of the Makefile.

    Raises:
        CourseError: when the Makefile does not pin it (a student would get any torch).
    """
    makefile = repo / "Makefile"
    text = makefile.read_text(encoding="utf-8") if makefile.is_file() else ""
    match = re.search(r"(?m)^TORCH_SPEC \?= *(torch==\S+)\s*$", text)
    if match is None:
        raise CourseError(f"{makefile} must pin PyTorch: a line `TORCH_SPEC ?= torch==X.Y.Z`")
    return match.group(1)


def _commit(repo: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _prepare_dest(dest: Path, force: bool, repo: Path) -> None:
    for inside in ("course", "recsys_kit", "datasets", "solutions", "grading"):
        if dest == repo / inside or (repo / inside) in dest.parents:
            raise CourseError(f"{dest} is inside {repo / inside}: export somewhere else")
    if dest == repo or dest in repo.parents:
        raise CourseError(f"{dest} contains the course repository: choose a new folder")
    if dest.exists() and any(dest.iterdir()):
        if not force:
            raise CourseError(
                f"{dest} is not empty: choose a new folder, or pass --force to "
                "replace a previous export"
            )
        if not (dest / MARKER).is_file():
            raise CourseError(
                f"{dest} is not a previous student export (no {MARKER}); refusing "
                "to delete it, even with --force"
            )
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)


def export_student(dest: str | Path, force: bool = False, root: str | None = None) -> ExportOutcome:
    """Write the student repository to ``dest``.

    Args:
        dest: a new or empty folder (or a previous export with ``force``).
        force: replace a previous export.
        root: course root (its parent is the repository that is exported).

    Returns:
        The outcome; when ``leaks`` is not empty the export was deleted.
    """
    layout = CourseLayout.load(root)
    repo = layout.root.parent
    dest = Path(dest).resolve()
    _prepare_dest(dest, force, repo)
    outcome = ExportOutcome(dest)
    (dest / MARKER).write_text("student export of recsys-course; safe to replace with --force\n")
    for folder in ("course", "recsys_kit", "datasets"):
        source = layout.release if folder == "course" else repo / folder
        if source.is_dir():
            shutil.copytree(source, dest / folder, ignore=_IGNORE)
        else:
            outcome.warnings.append(f"{source} does not exist: not exported")
    for name, strip in (
        ("environment.yml", student_environment),
        ("pyproject.toml", student_pyproject),
    ):
        if (repo / name).is_file():
            (dest / name).write_text(strip((repo / name).read_text(encoding="utf-8")))
        else:
            outcome.warnings.append(f"{repo / name} does not exist: not exported")
    templates = layout.root / "templates"
    torch_spec = torch_pin(repo)
    fields = {"modules": _modules(layout), "source_commit": _commit(repo), "torch_spec": torch_spec}
    readme = Template((templates / "student_README.md").read_text(encoding="utf-8"))
    (dest / "README.md").write_text(readme.substitute(fields), encoding="utf-8")
    makefile = (templates / "student_Makefile").read_text(encoding="utf-8")
    # the students' PyTorch is the one the course is tested with (the repository's Makefile)
    makefile = re.sub(r"(?m)^TORCH_SPEC \?=.*$", f"TORCH_SPEC ?= {torch_spec}", makefile)
    (dest / "Makefile").write_text(makefile, encoding="utf-8")
    (dest / ".gitignore").write_text(_GITIGNORE)
    blocks, lines = hidden_secrets(layout)
    outcome.leaks = scan(dest, blocks, lines)
    outcome.files = sum(1 for p in dest.rglob("*") if p.is_file())
    if outcome.leaks:
        shutil.rmtree(dest)
    return outcome


def run(args) -> int:
    """CLI entry: exit 1 (and no export left behind) when hidden text or solutions leak."""
    outcome = export_student(args.dest, args.force, args.root)
    for warning in outcome.warnings:
        print(f"warning: {warning}")
    if outcome.leaks:
        for leak in outcome.leaks[:50]:
            print(f"LEAK: {leak}")
        print(f"export deleted: {len(outcome.leaks)} problem(s) found")
        return 1
    print(f"{outcome.dest}: {outcome.files} files, no solutions or hidden tests")
    return 0
