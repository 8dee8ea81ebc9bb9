"""Train/test splitters: MiniShop's time split, leave-last-out for sequences, query splits.

* :func:`train_test_split` -- MiniShop's fixed time-based split (its ``split`` column).
* :func:`leave_last_out` and :func:`split_frames` -- each user's last interactions held out,
  the protocol of sequential recommendation (Amazon 5-core).
* :func:`train_test_queries` -- queries (not interactions) split for learning-to-rank.

Example:
    >>> train, test = train_test_queries([f"q{i}" for i in range(10)], frac=0.3)
    >>> len(train), len(test)
    (7, 3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit.constants import COL_SPLIT, COL_TIMESTAMP, COL_USER_ID
from recsys_kit.datasets.frames import check_columns

__all__ = [
    "query_split",
    "SPLIT_TEST",
    "SPLIT_TRAIN",
    "SPLIT_VALID",
    "leave_last_out",
    "split_frames",
    "train_test_queries",
    "train_test_split",
]

#: Values of the ``split`` column written by :func:`leave_last_out`.
SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST = "train", "validation", "test"


def train_test_split(interactions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fixed time-based split stored in the ``split`` column.

    Returns:
        ``(train, test)`` with fresh indexes.

    Example:
        >>> from recsys_kit.datasets import load_interactions
        >>> train, test = train_test_split(load_interactions())
        >>> train["timestamp"].max() < test["timestamp"].min()
        True
    """
    if C.COL_SPLIT not in interactions.columns:
        raise KeyError("interactions has no 'split' column; load it with load_interactions()")
    is_test = interactions[C.COL_SPLIT] == "test"
    return (
        interactions[~is_test].reset_index(drop=True),
        interactions[is_test].reset_index(drop=True),
    )


def leave_last_out(interactions: pd.DataFrame, n_test: int = 1, n_valid: int = 0) -> pd.DataFrame:
    """Mark each user's last interactions as test (and the ones before as validation).

    The sequential-recommendation split ("leave one out"): with ``n_valid=1`` each user's last
    interaction is ``"test"``, the one before it ``"validation"`` (tune on it) and the rest
    ``"train"``. Order is by ``timestamp`` (ties keep the row order). Users with
    ``n_test + n_valid`` interactions or fewer stay entirely in train, so every evaluated user
    has history to recommend from.

    Args:
        interactions: log with ``user_id`` and ``timestamp`` columns.
        n_test: how many final interactions per user go to test (>= 1).
        n_valid: how many interactions before those go to validation (>= 0).

    Returns:
        A copy with a ``split`` column of ``"train"``/``"validation"``/``"test"``, rows in the
        input order.

    Example:
        >>> df = pd.DataFrame({"user_id": ["u"] * 4, "timestamp": [0, 1, 2, 3]})
        >>> leave_last_out(df, n_valid=1)["split"].tolist()
        ['train', 'train', 'validation', 'test']
    """
    check_columns(interactions, [COL_USER_ID, COL_TIMESTAMP], "interactions")
    for name, value, low in (("n_test", n_test, 1), ("n_valid", n_valid, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    out = interactions.copy()
    order = np.lexsort((np.arange(len(out)), out[COL_TIMESTAMP].to_numpy()))
    ranked = out.iloc[order]
    from_end = ranked.groupby(COL_USER_ID, sort=False).cumcount(ascending=False).to_numpy()
    sizes = ranked.groupby(COL_USER_ID, sort=False)[COL_USER_ID].transform("size").to_numpy()
    held = sizes > n_test + n_valid
    label = np.full(len(out), SPLIT_TRAIN, dtype=object)
    label[held & (from_end < n_test + n_valid)] = SPLIT_VALID
    label[held & (from_end < n_test)] = SPLIT_TEST
    split = np.empty(len(out), dtype=object)
    split[order] = label  # back to the input's row order
    out[COL_SPLIT] = split
    return out


def split_frames(
    interactions: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The ``(train, validation, test)`` parts of a log with a ``split`` column.

    Example:
        >>> df = leave_last_out(pd.DataFrame({"user_id": ["u"] * 4, "timestamp": range(4)}),
        ...                     n_valid=1)
        >>> [len(part) for part in split_frames(df)]
        [2, 1, 1]
    """
    check_columns(interactions, [COL_SPLIT], "interactions")
    col = interactions[COL_SPLIT]
    unknown = sorted(set(map(str, col.unique())) - {SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST})
    if unknown:
        raise ValueError(
            f"split values {unknown} are not {SPLIT_TRAIN!r}/{SPLIT_VALID!r}/{SPLIT_TEST!r}; "
            "make the split with leave_last_out(..., n_valid=1)"
        )
    return tuple(interactions[col == name] for name in (SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST))


def train_test_queries(
    queries: pd.DataFrame | Sequence[str],
    frac: float = 0.3,
    seed: int = C.SEED,
    stratify: str | None = C.COL_QUERY_KIND,
) -> tuple[list[str], list[str]]:
    """Split query ids into train and held-out test queries.

    Args:
        queries: the queries frame (``query_id`` column) or a list of ids.
        frac: fraction held out as test, in (0, 1).
        seed: shuffle seed.
        stratify: column to split within (each query kind keeps its share); None or a
            missing column = plain random split.

    Returns:
        ``(train_ids, test_ids)``, each in the input order.

    Example:
        >>> train, test = train_test_queries([f"q{i}" for i in range(10)], frac=0.3)
        >>> len(train), len(test)
        (7, 3)
    """
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac (the test share) must be in (0, 1), got {frac}")
    if isinstance(queries, pd.DataFrame):
        if C.COL_QUERY_ID not in queries.columns:
            raise KeyError("queries frame has no 'query_id' column")
        ids = queries[C.COL_QUERY_ID].astype(str).to_numpy()
        strata = (
            queries[stratify].astype(str).to_numpy()
            if stratify and stratify in queries.columns
            else np.zeros(len(ids), dtype=str)
        )
    else:
        ids = np.asarray(list(queries)).astype(str)
        strata = np.zeros(len(ids), dtype=str)
    if len(set(ids)) != len(ids):
        raise ValueError("query ids are not unique")
    if len(ids) < 2:
        raise ValueError("need at least two queries to split")
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(ids), dtype=bool)
    for s in sorted(set(strata)):
        rows = np.flatnonzero(strata == s)
        # at least one test and one train query per stratum when it has two or more
        n_test = int(np.clip(round(frac * len(rows)), 1, len(rows) - 1)) if len(rows) > 1 else 0
        is_test[rng.permutation(rows)[:n_test]] = True
    return ids[~is_test].tolist(), ids[is_test].tolist()


def query_split(
    query_ids: Sequence[str],
    groups: Sequence[str] | None = None,
    test_share: float = 0.3,
    seed: int = C.SEED,
) -> tuple[list[str], list[str]]:
    """Split queries (never pairs) into train and test; a group never straddles the split.

    The distinct groups, sorted, are permuted with ``np.random.default_rng(seed)``; the first
    ``ceil(test_share * n_groups)`` of them go to test.

    Args:
        query_ids: the queries.
        groups: one group per query (default: each query its own group).
        test_share: share of groups in the test set, in (0, 1).
        seed: permutation seed.

    Returns:
        ``(train_ids, test_ids)``, each in input order.

    Example:
        >>> query_split(["a", "b", "c", "d"], ["x", "x", "y", "z"], 0.5, seed=0)[1]
        ['a', 'b', 'd']
    """
    ids = [str(q) for q in query_ids]
    grp = ids if groups is None else [str(g) for g in groups]
    if len(grp) != len(ids):
        raise ValueError(f"got {len(grp)} groups for {len(ids)} queries: pass one per query")
    if len(set(ids)) != len(ids):
        raise ValueError("query_ids has duplicates: split queries, not (query, product) pairs")
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must be in (0, 1), got {test_share}")
    uniq = sorted(set(grp))
    order = np.random.default_rng(seed).permutation(len(uniq))
    test_groups = {uniq[i] for i in order[: math.ceil(test_share * len(uniq))]}
    train = [q for q, g in zip(ids, grp) if g not in test_groups]
    test = [q for q, g in zip(ids, grp) if g in test_groups]
    return train, test
