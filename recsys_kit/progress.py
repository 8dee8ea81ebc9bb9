"""Progress bars for long steps, shown only when a step is actually long.

Every training loop of the kit (ALS, BPR, the InfoNCE projector, the learned rankers) wraps its
iterations in :func:`progress`: a tqdm bar (the notebook widget under Jupyter) that appears only
after the loop has run for :data:`DELAY_S` seconds, so quick calls and tests stay quiet.

Example:
    >>> sum(1 for _ in progress(range(3), "epochs"))
    3
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

#: Seconds a loop runs before its bar is shown.
DELAY_S = 2.0


def progress(items: Iterable[T], desc: str, disable: bool | None = False) -> Iterator[T]:
    """Iterate over ``items`` with a delayed tqdm bar.

    Args:
        items: what to iterate over (its ``len`` gives the bar's total when it has one).
        desc: label of the bar, e.g. ``"BPR epochs"``.
        disable: True hides the bar; None hides it when stderr is not a terminal (tqdm's rule).

    Returns:
        An iterator over ``items``.
    """
    return iter(tqdm(items, desc=desc, delay=DELAY_S, disable=disable, leave=False))
