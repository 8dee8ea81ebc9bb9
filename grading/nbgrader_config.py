"""nbgrader configuration of the course (the course root is this folder).

Loaded by ``nbgrader ...`` and ``jupyter lab`` (formgrader) from the repository root through the
root ``nbgrader_config.py``, and by ``recsys-course`` (``recsys_grader.layout``). Paths are
resolved from this file, never from the current directory.
"""

import contextlib
import os
import re

c = get_config()  # noqa: F821 (provided by traitlets when it executes this file)

_HERE = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = _HERE
c.CourseDirectory.course_id = "recsys_course"
# Relative to the root; nbgrader joins them with os.path.join (checked with nbgrader 0.9.6).
c.CourseDirectory.source_directory = "../solutions"
c.CourseDirectory.release_directory = "../course"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_HERE, "gradebook.db")
# nbgrader's exchange (release, collect and feedback between instructor and students). On a hub
# it is the shared /srv/nbgrader/exchange (docs/deploy.md); elsewhere the course keeps its own
# folder, so that the formgrader and the Assignments tab work on a fresh clone without an
# "exchange directory does not exist" banner.
_SHARED_EXCHANGE = "/srv/nbgrader/exchange"
if os.path.isdir(_SHARED_EXCHANGE):
    c.Exchange.root = _SHARED_EXCHANGE
else:
    c.Exchange.root = os.path.join(_HERE, "exchange")
    with contextlib.suppress(OSError):  # a read-only checkout: nbgrader explains what is missing
        os.makedirs(c.Exchange.root, exist_ok=True)
# Instructor-only files next to a source notebook are never released: grading rubrics, and what
# `recsys-course check-tests` grades (wrong answers, correct alternatives, equivalent mutants).
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    "RUBRIC.md",
    "wrong_answers",
    "alternatives",
    "equivalent_mutants.txt",
]

# The course's assignments: every solutions/NN_name/NN_name.ipynb, in order. Pin a list here
# (e.g. ["00_orientation"]) to keep a draft module out of release, validation and grading.
_SOLUTIONS = os.path.join(_HERE, "..", "solutions")
c.RecsysCourse.assignments = sorted(
    name
    for name in (os.listdir(_SOLUTIONS) if os.path.isdir(_SOLUTIONS) else [])
    if re.fullmatch(r"\d\d_[a-z0-9_]+", name)
    and os.path.isfile(os.path.join(_SOLUTIONS, name, name + ".ipynb"))
)

# nbgrader's own execution (the Execute preprocessor) never runs here: the formgrader's Autograde
# action and ``nbgrader autograde`` grade through ``recsys-course autograde`` (below). These
# limits only matter if that hook is removed. Execute.timeout is the trait nbgrader 0.9.6 reads
# (ExecutePreprocessor.timeout is ignored, nbgrader#1463).
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
c.LimitOutput.max_lines = 1000
c.OverwriteCells.add_missing_cells = True

# Feedback must never show hidden tests (nbgrader 0.9.6 keeps them in the feedback HTML), nor a
# score of 0 for a written answer nobody has graded yet.
try:
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    from recsys_grader.feedback import HideHiddenTests
    from recsys_grader.pending import FeedbackExporter, MarkPending
    from recsys_grader.safe_html import SafeNotebook

    c.GenerateFeedback.preprocessors = [
        GetGrades,
        MarkPending,  # written answers nobody graded yet: "awaiting grading", not "Score: 0.0"
        HideHiddenTests,
        CSSHTMLHeaderPreprocessor,
    ]
    c.GenerateFeedback.exporter_class = FeedbackExporter
    # Every page nbconvert renders here (the formgrader's, feedback) shows student-controlled
    # outputs, markdown and raw cells: cleaned, so no script of the student runs in it.
    c.HTMLExporter.preprocessors = [SafeNotebook]
except ImportError:  # recsys_kit not importable: run `pip install -e .` from the repository root
    pass

# The formgrader's Autograde action (and `nbgrader autograde`) grade in the course's sandbox with
# its trusted judge: the sanitising pass runs `recsys-course autograde` for the submission, and
# nbgrader's own execution pass (a plain kernel holding the hidden tests) is gone. Named by string
# so that, should recsys_grader not import, the action fails instead of running unsandboxed.
c.Autograde.sanitize_preprocessors = ["recsys_grader.formgrader.TrustedAutograde"]
c.Autograde.autograde_preprocessors = []
