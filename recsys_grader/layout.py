"""Where the course's folders are, read from the nbgrader configuration of the course root.

The course root is ``grading/`` (``grading/nbgrader_config.py``). Solutions live in
``solutions/NN_name/NN_name.ipynb`` and are released to ``course/NN_name/NN_name.ipynb``.
Every path comes from the config file, which resolves them from its own location, so a copy of
the course root (as the tests make) works the same.

Example:
    >>> from recsys_grader.layout import CourseLayout
    >>> CourseLayout.load().root.name
    'grading'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from recsys_kit.paths import REPO_ROOT

#: Default course root of the repository.
DEFAULT_ROOT = REPO_ROOT / "grading"
CONFIG_NAME = "nbgrader_config.py"
#: What grading writes in a course root (a copy of the course, e.g. a test's, leaves these out).
RUNTIME_STATE = (
    "gradebook.db",
    "submitted",
    "autograded",
    "feedback",
    "reports",
    "exchange",
    ".nbgrader.log",
    ".judge-cache",
)


class CourseError(RuntimeError):
    """A problem the user can fix (missing release, bad argument); printed without traceback."""


@dataclass(frozen=True)
class CourseLayout:
    """The folders and settings of one nbgrader course root.

    Attributes:
        root: the course root (``grading/``).
        source: the instructor notebooks (``solutions/``).
        release: the student versions (``course/``).
        course_id: nbgrader course id of the gradebook.
        assignments: assignment names in order (``00_orientation``, ...).
        config: the full traitlets config loaded from the root's ``nbgrader_config.py``.
    """

    root: Path
    source: Path
    release: Path
    course_id: str
    assignments: tuple[str, ...]
    config: Config

    @classmethod
    def load(cls, root: str | os.PathLike[str] | None = None) -> CourseLayout:
        """Read ``<root>/nbgrader_config.py``.

        Args:
            root: the course root; default ``grading/`` of the repository.

        Returns:
            The layout.

        Raises:
            CourseError: when the folder or its config file is missing.
        """
        root_path = Path(root).resolve() if root is not None else DEFAULT_ROOT
        config_file = root_path / CONFIG_NAME
        if not config_file.is_file():
            raise CourseError(
                f"no {CONFIG_NAME} in {root_path}: pass the nbgrader course root "
                f"(the folder holding {CONFIG_NAME}, by default {DEFAULT_ROOT}) with --root."
            )
        config = PyFileConfigLoader(CONFIG_NAME, path=str(root_path)).load_config()
        cd = config.CourseDirectory
        course_root = Path(cd.get("root", str(root_path))).resolve()
        source = (course_root / cd.get("source_directory", "source")).resolve()
        release = (course_root / cd.get("release_directory", "release")).resolve()
        assignments = tuple(config.RecsysCourse.get("assignments", ()))
        return cls(
            root=course_root,
            source=source,
            release=release,
            course_id=str(cd.get("course_id", "default_course")),
            assignments=assignments,
            config=config,
        )

    @property
    def db_url(self) -> str:
        """SQLAlchemy URL of the gradebook (``sqlite:///<root>/gradebook.db``)."""
        return str(self.config.CourseDirectory.get("db_url", f"sqlite:///{self.root}/gradebook.db"))

    @property
    def submitted(self) -> Path:
        """``<root>/submitted``: one folder per student, then per assignment."""
        return self.root / "submitted"

    @property
    def autograded(self) -> Path:
        """``<root>/autograded``: executed, scored notebooks."""
        return self.root / "autograded"

    @property
    def feedback(self) -> Path:
        """``<root>/feedback``: per-student HTML feedback."""
        return self.root / "feedback"

    @property
    def reports(self) -> Path:
        """``<root>/reports``: grades.csv, report.html and the grading results."""
        return self.root / "reports"

    @property
    def judge_cache(self) -> Path:
        """``<root>/.judge-cache``: the judge's reference namespaces, kept between gradings."""
        return self.root / ".judge-cache"

    @property
    def results_file(self) -> Path:
        """JSON record of the last grading outcome of every submission (read by ``report``)."""
        return self.reports / "results.json"

    @property
    def roster(self) -> Path:
        """``<root>/roster.csv``: the students expected to submit."""
        return self.root / "roster.csv"

    def source_notebook(self, assignment: str) -> Path:
        """``solutions/<a>/<a>.ipynb``."""
        return self.source / assignment / f"{assignment}.ipynb"

    def release_notebook(self, assignment: str) -> Path:
        """``course/<a>/<a>.ipynb``."""
        return self.release / assignment / f"{assignment}.ipynb"

    def select(self, assignments: list[str] | None) -> list[str]:
        """Check assignment names against the course.

        Args:
            assignments: names asked for, or None/empty for all of them.

        Returns:
            The names, in course order.

        Raises:
            CourseError: naming an unknown assignment and listing the known ones.
        """
        if not self.assignments:
            raise CourseError(
                f"no assignments configured: add solutions/NN_name/NN_name.ipynb under "
                f"{self.source} (or set c.RecsysCourse.assignments in {self.root / CONFIG_NAME})."
            )
        if not assignments:
            return list(self.assignments)
        unknown = [a for a in assignments if a not in self.assignments]
        if unknown:
            raise CourseError(
                f"unknown assignment(s) {', '.join(unknown)}; known: {', '.join(self.assignments)}"
            )
        return [a for a in self.assignments if a in assignments]

    def nbgrader_config(self, **overrides: object) -> Config:
        """A copy of the course config with absolute paths, for nbgrader's converters.

        Args:
            overrides: ``CourseDirectory`` traits to replace (e.g. ``release_directory``).

        Returns:
            A traitlets Config.
        """
        config = Config(self.config)
        config.merge(Config({"CourseDirectory": {"root": str(self.root), **overrides}}))
        return config
