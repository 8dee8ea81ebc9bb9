"""Loader for Amazon review "5-core" *sequence* files (SASRec / RecBole preprocessed style).

Format: plain text, **one user per line**: the user id, then that user's item ids in time
order, separated by spaces (tabs also work)::

    A1B2C3 B00001 B00002 B00003 B00004 B00005

Blank lines are skipped. "5-core" means every user and item has at least 5 interactions;
the loader does not enforce it (pass ``min_items`` to).

The files keep only the *order* of events, not their dates, so the loader writes a synthetic
``timestamp``: the position of the item in the user's sequence (0, 1, 2, ...). Compare
timestamps only within a user. Every row is a ``"review"`` event of weight 1 in
:data:`~recsys_kit.constants.EVENT_WEIGHTS`: **0/1 implicit feedback**, the input the papers
and the ``implicit`` library assume (so ALS's ``alpha`` means what it means there); pass
``event="purchase"`` to weigh them as MiniShop purchases instead.
:func:`~recsys_kit.datasets.leave_last_out` marks each user's final item as test (and, with
``n_valid=1``, the one before as validation), the standard protocol for these datasets. Every
item of the file is a column of :func:`~recsys_kit.cf.build_matrix`'s matrix by default, also
the items seen only in the held-out rows, so models rank **all** items (as the published
all-item results do).

Example:
    >>> df = load_amazon_sequences(amazon_fixture_path())
    >>> df.columns.tolist()
    ['user_id', 'product_id', 'event', 'timestamp', 'rating', 'position', 'split']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys_kit import paths
from recsys_kit.constants import (
    COL_EVENT,
    COL_POSITION,
    COL_PRODUCT_ID,
    COL_RATING,
    COL_TIMESTAMP,
    COL_USER_ID,
    EVENT_WEIGHTS,
)
from recsys_kit.datasets.splits import leave_last_out

__all__ = ["FORMAT_HINT", "amazon_fixture_path", "load_amazon_sequences"]

FORMAT_HINT = (
    "expected one user per line: the user id then their item ids in time order, "
    "space-separated, e.g. 'A1B2C3 B00001 B00002 B00003'"
)


def amazon_fixture_path() -> Path:
    """The tiny committed sample in ``datasets/fixtures/amazon_5core/sequences.txt``."""
    return paths.data_dir() / "fixtures" / "amazon_5core" / "sequences.txt"


def load_amazon_sequences(
    path: str | Path,
    *,
    min_items: int = 1,
    n_test: int | None = 1,
    n_valid: int = 0,
    event: str = "review",
) -> pd.DataFrame:
    """Read a sequence file into an interaction log.

    Args:
        path: the text file.
        min_items: minimum items per user (5 for a true 5-core file); fewer raises.
        n_test: items per user held out by :func:`~recsys_kit.datasets.leave_last_out` (the
            ``split`` column); ``None`` adds no ``split`` column.
        n_valid: items per user before the test ones marked ``"validation"`` (1 gives the
            train / validation / test leave-one-out split).
        event: the event name of every row: ``"review"`` (weight 1, 0/1 feedback, default)
            or any other key of :data:`~recsys_kit.constants.EVENT_WEIGHTS` (e.g.
            ``"purchase"``) to ask for event weights.

    Returns:
        DataFrame with ``user_id``, ``product_id`` (str), ``event`` (``"review"``),
        ``timestamp`` (int64 position in the user's sequence), ``rating`` (NaN), ``position``
        (0 = unknown rank shown) and ``split``; rows in file order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a malformed line (with its number and the expected format), a user on two
            lines, a user with fewer than ``min_items`` items, or no data at all.
    """
    if event not in EVENT_WEIGHTS:
        raise ValueError(
            f"event {event!r} has no weight; use one of {sorted(EVENT_WEIGHTS)} "
            "('review' = 0/1 feedback)"
        )
    path = Path(path)
    users, items, lengths = _parse_sequences(_read_text(path), path, min_items)
    counts = np.asarray(lengths)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    df = pd.DataFrame(
        {
            COL_USER_ID: np.repeat(np.asarray(users, dtype=object), counts),
            COL_PRODUCT_ID: np.asarray(items, dtype=object),
            COL_EVENT: event,
            COL_TIMESTAMP: (np.arange(len(items)) - starts).astype(np.int64),
            COL_RATING: np.nan,
            COL_POSITION: np.zeros(len(items), dtype=np.int64),
        }
    )
    df[COL_USER_ID] = df[COL_USER_ID].astype(str)
    df[COL_PRODUCT_ID] = df[COL_PRODUCT_ID].astype(str)
    return df if n_test is None else leave_last_out(df, n_test, n_valid)


def _read_text(path: Path) -> str:
    """The file's text, or an error naming what is wrong with the path and the format."""
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; pass the sequence file inside it")
    if not path.is_file():
        raise FileNotFoundError(
            f"no sequence file at {path}. Download a preprocessed Amazon 5-core file (e.g. "
            f"SASRec's data/Beauty.txt converted to one line per user); {FORMAT_HINT}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte {err.start}); {FORMAT_HINT}") from None
    return text


def _parse_sequences(
    text: str, path: Path, min_items: int
) -> tuple[list[str], list[str], list[int]]:
    """Users, their items (concatenated, in file order) and each user's item count.

    Raises:
        ValueError: naming the file line of a malformed, repeated or too short sequence.
    """
    users: list[str] = []
    items: list[str] = []
    lengths: list[int] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"{path.name}, line {number}"
        if ":token" in line:
            raise ValueError(
                f"{where} looks like a RecBole atomic-file header ({line.strip()[:60]!r}); "
                f"this loader reads the plain sequence format: {FORMAT_HINT}"
            )
        if len(tokens) < 2:
            hint = " (it looks comma-separated; use spaces)" if "," in line else ""
            raise ValueError(f"{where}: user {tokens[0][:40]!r} has no items{hint}; {FORMAT_HINT}")
        user = tokens[0]
        if user in first_line:
            raise ValueError(
                f"{where}: user {user!r} already appeared on line {first_line[user]}; "
                "put all of a user's items on one line"
            )
        if len(tokens) - 1 < min_items:
            raise ValueError(
                f"{where}: user {user!r} has {len(tokens) - 1} item(s), fewer than "
                f"min_items={min_items}"
            )
        first_line[user] = number
        users.append(user)
        items.extend(tokens[1:])
        lengths.append(len(tokens) - 1)
    if not users:
        raise ValueError(f"{path} has no data lines; {FORMAT_HINT}")
    return users, items, lengths
