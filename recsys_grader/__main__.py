"""``python -m recsys_grader``: same as the ``recsys-course`` command."""

import sys

from recsys_grader.cli import main

sys.exit(main())
