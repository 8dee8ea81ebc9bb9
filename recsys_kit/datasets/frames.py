"""Checks and ids of data frames, shared by the loaders, the splitters and the CF models.

Example:
    >>> sorted_unique(pd.Series(["b", "a", "b"])).tolist()
    ['a', 'b']
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["check_columns", "sorted_unique"]


def sorted_unique(values: pd.Series) -> pd.Index:
    """Distinct ids in sorted order (string order when the types do not compare)."""
    uniq = pd.unique(values)
    try:
        uniq = np.sort(uniq)
    except TypeError:  # mixed id types: sort by their text
        uniq = np.array(sorted(uniq, key=str), dtype=object)
    return pd.Index(uniq)


def check_columns(df: pd.DataFrame, needed: Iterable[str], what: str) -> None:
    """Raise a clear error when ``df`` is not a frame or lacks any of the ``needed`` columns.

    Args:
        df: the frame to check.
        needed: column names it must have.
        what: how the error names it (the caller's argument name).

    Example:
        >>> check_columns(pd.DataFrame({"user_id": []}), ["user_id"], "interactions")
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what} lacks column(s) {missing}; it has {list(df.columns)}. "
            "Use the names from recsys_kit.constants (e.g. user_id, product_id, event)."
        )
