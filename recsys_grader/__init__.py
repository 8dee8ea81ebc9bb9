"""recsys_grader: the instructor-only grader of the course (the ``recsys-course`` command).

Release, validate, import-roster, collect, autograde (in a sandbox), feedback, return-feedback,
report, export-grades, merge, export-student and the demo (``course``), on top of nbgrader. One
module per verb or concept; ``cli`` dispatches. Students never install or import this package:
they use ``recsys_kit`` alone, and ``recsys-course export-student`` ships no grading code.

Install it with the instructor extra: ``pip install -e ".[instructor]"`` (adds nbgrader).

Example:
    >>> from recsys_grader.cli import main
    >>> main(["--help"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys

# jsonschema (under nbformat) imports rfc3987_syntax, when installed, for its "iri" format check,
# which no notebook schema uses; that import compiles a Lark grammar: about 1 s at the start of
# every grader process (the CLI, each judge, each sandbox's executor), on the critical path of
# grading one submission. A None entry makes the import fail at once and jsonschema skip it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

# nbgrader runs `alembic` (gradebook migrations) and Jupyter runs kernels through PATH: make the
# tools of this interpreter's environment win even when the venv is not activated.
_BIN = os.path.dirname(sys.executable)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")
