"""The formgrader's Autograde action, through the course's trusted grader and sandbox.

nbgrader 0.9.6's formgrader ("Manage Submissions" > autograde) and ``nbgrader autograde`` run
nbgrader's ``Autograde`` converter, which executes the student's notebook with hidden tests in
an ordinary kernel: no sandbox, no judge. Its two lists of preprocessors are configurable, so
``grading/nbgrader_config.py`` replaces them: the sanitising pass is :class:`TrustedAutograde`,
which grades the submission with ``recsys-course autograde`` (the same judge, sandbox, limits,
tamper checks, gradebook records and ``results.json``), and the execution pass is empty, so
nbgrader never runs student code itself. A submission that cannot be graded (no sandbox here,
an out-of-date release, a notebook that cannot be read) fails the action with the reason,
which the formgrader shows.

Example (what the formgrader's button calls):
    >>> from nbgrader.apps import NbGraderAPI
    >>> NbGraderAPI(coursedir, config=config).autograde("00_orientation", "alice")  # doctest: +SKIP
    {'success': True, 'log': '... alice/00_orientation: needs_manual 11/13 ...'}
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.converters.base import NbGraderException
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer

from recsys_grader.sandbox import Limits

_DEFAULT = Limits()


class TrustedAutograde(NbGraderPreprocessor):
    """Grade one submission with ``recsys_grader.autograde`` instead of nbgrader's kernel."""

    cell_timeout = Integer(_DEFAULT.cell_timeout, help="seconds per cell").tag(config=True)
    notebook_timeout = Integer(_DEFAULT.notebook_timeout, help="seconds per notebook").tag(
        config=True
    )
    memory_mb = Integer(_DEFAULT.memory_mb, help="address-space limit in MiB").tag(config=True)

    def _root(self, resources: dict) -> Path:
        root = self.config.CourseDirectory.get("root")
        if root:
            return Path(root)
        # submitted/<student>/<assignment>/ below the course root
        return Path(resources["metadata"]["path"]).resolve().parents[2]

    def preprocess(self, nb: NotebookNode, resources: dict):
        """Grade the submission; return the judged notebook that the grader recorded.

        Raises:
            NbGraderException: when the submission could not be graded (the formgrader shows
                the reason and keeps no autograded notebook).
        """
        from recsys_grader import results as res
        from recsys_grader.autograde import autograde
        from recsys_grader.layout import CourseError, CourseLayout

        info = resources["nbgrader"]
        student, assignment = info["student"], info["assignment"]
        if info["notebook"] != assignment:
            raise NbGraderException(
                f"{info['notebook']}.ipynb is not graded: the course's only notebook of "
                f"{assignment} is {assignment}.ipynb"
            )
        root = self._root(resources)
        limits = Limits(self.cell_timeout, self.notebook_timeout, self.memory_mb)
        lines: list[str] = []

        def log(line: str) -> None:
            lines.append(line)
            self.log.info("recsys-course autograde: %s", line)

        try:
            results = autograde([assignment], [student], limits, 1, str(root), log)
        except CourseError as exc:
            raise NbGraderException(f"recsys-course autograde: {exc}") from None
        result = next((r for r in results if r.key == (student, assignment)), None)
        if result is None or result.status in (res.FAILED, res.MISSING):
            why = result.detail if result is not None else "; ".join(lines[-3:])
            raise NbGraderException(f"{student}/{assignment}: not graded ({why})")
        graded = CourseLayout.load(root).autograded / student / assignment
        return nbformat.read(graded / f"{assignment}.ipynb", as_version=4), resources
