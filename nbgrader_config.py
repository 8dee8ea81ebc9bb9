"""Repository-root nbgrader configuration: loads the course root's config in ``grading/``.

This lets ``nbgrader ...`` and ``jupyter lab`` (formgrader) run from the repository root.
``RECSYS_COURSE_ROOT`` selects another course root, e.g. the demo course that ``make course``
grades: ``RECSYS_COURSE_ROOT=demo jupyter lab``.
"""

import os

c = get_config()  # noqa: F821 (provided by traitlets when it executes this file)
_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.join(_HERE, os.environ.get("RECSYS_COURSE_ROOT") or "grading")
load_subconfig(os.path.join(_ROOT, "nbgrader_config.py"))  # noqa: F821 (provided by traitlets)
