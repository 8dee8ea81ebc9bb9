"""Course machinery: the ``recsys-course`` command (release, validate, autograde, feedback,
report, export-student, course) on top of nbgrader. One module per verb; ``cli`` dispatches.

Example:
    >>> from recsys_kit.course.cli import main
    >>> main(["--help"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys

# nbgrader runs `alembic` (gradebook migrations) and Jupyter runs kernels through PATH: make the
# tools of this interpreter's environment win even when the venv is not activated.
_BIN = os.path.dirname(sys.executable)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")
