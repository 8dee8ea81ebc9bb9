"""Every example in the kit's docstrings runs and prints what it says (``doctest``).

Examples marked ``# doctest: +SKIP`` need a model download or a long run; the rest are the
first code a student reads, so they must not rot.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import recsys_kit

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(recsys_kit.__path__, prefix="recsys_kit.")
    if not m.name.endswith("__main__")
)  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (see above)"
