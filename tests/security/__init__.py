"""Red-team tests: hostile submissions graded through the real pipeline (issues 11 and 12)."""
