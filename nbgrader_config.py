"""Repository-root nbgrader configuration: loads the course root's config in ``grading/``.

This lets ``nbgrader ...`` and ``jupyter lab`` (formgrader) run from the repository root.
"""

import os

c = get_config()  # noqa: F821 (provided by traitlets when it executes this file)
load_subconfig(  # noqa: F821 (provided by traitlets)
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "grading", "nbgrader_config.py")
)
