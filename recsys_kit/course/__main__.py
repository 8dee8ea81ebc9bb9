"""``python -m recsys_kit.course``: same as the ``recsys-course`` command."""

import sys

from recsys_kit.course.cli import main

sys.exit(main())
