"""Progress bars for long steps: shown only when a step is actually long, and only when wanted.

Every long loop of the kit (ALS, BPR, the InfoNCE projector, the learned rankers, encoding)
wraps its iterations in :func:`progress` (or :func:`progress_bar` for manual steps):

* nothing appears before the loop has run for :data:`DELAY_S` seconds, so quick calls and
  tests stay quiet;
* one **kit-wide switch** turns every bar off: :func:`set_enabled` (``False``), or the
  environment variable ``RECSYS_PROGRESS=0``, or tqdm's own ``TQDM_DISABLE=1``; it wins over a
  caller's ``show_progress=True``;
* in a terminal or a notebook the bar is a tqdm bar (a widget under Jupyter); when stderr is
  **not interactive** (a log file, CI, a pipe) it is a plain line every :data:`LOG_INTERVAL_S`
  seconds and one at the end, never a carriage return that would mangle the log.

Example:
    >>> sum(1 for _ in progress(range(3), "epochs"))
    3
    >>> set_enabled(False); enabled()
    False
    >>> set_enabled(None)  # back to the environment's choice
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

__all__ = [
    "T",
    "DELAY_S",
    "LOG_INTERVAL_S",
    "ENV_SWITCH",
    "set_enabled",
    "enabled",
    "interactive",
    "LineBar",
    "progress_bar",
    "progress",
]

T = TypeVar("T")

#: Seconds a loop runs before its bar (or first log line) is shown.
DELAY_S = 2.0
#: Seconds between two plain log lines when the output is not interactive.
LOG_INTERVAL_S = 30.0
#: Environment variable of the kit-wide switch ("0", "false", "off" or "no" hide every bar).
ENV_SWITCH = "RECSYS_PROGRESS"
_OFF_WORDS = ("0", "false", "off", "no")

_switch: bool | None = None  # set_enabled(); None = ask the environment


def set_enabled(value: bool | None) -> None:
    """Turn every progress bar of the kit on or off (``None``: follow the environment).

    Args:
        value: ``False`` hides all bars, ``True`` allows them (a caller can still hide its
            own), ``None`` returns to ``RECSYS_PROGRESS`` / ``TQDM_DISABLE``.
    """
    global _switch
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"set_enabled takes True, False or None, got {value!r}")
    _switch = value


def enabled() -> bool:
    """Whether progress bars may be shown at all (the kit-wide switch, then the environment)."""
    if _switch is not None:
        return _switch
    if os.environ.get(ENV_SWITCH, "").strip().lower() in _OFF_WORDS:
        return False
    tqdm_off = os.environ.get("TQDM_DISABLE", "").strip().lower()
    return tqdm_off in ("",) + _OFF_WORDS


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    ip = shell.get_ipython() if hasattr(shell, "get_ipython") else None
    return ip is not None and hasattr(ip, "kernel")


def interactive(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default stderr) shows a live bar: a terminal or a notebook kernel."""
    stream = sys.stderr if stream is None else stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced stream
        tty = False
    return tty or _in_notebook()


class LineBar:
    """A progress "bar" for logs: plain lines, no carriage returns (tqdm's update interface).

    A line is written at most every :data:`LOG_INTERVAL_S` seconds, the first after
    :data:`DELAY_S`, and a final one on :meth:`close` when any was written.
    """

    def __init__(
        self, total: int | None, desc: str, stream: TextIO | None = None, delay: float | None = None
    ) -> None:
        self.total, self.desc, self.n = total, desc, 0
        self.stream = sys.stderr if stream is None else stream
        self.start = time.monotonic()
        self.next_line = self.start + (DELAY_S if delay is None else delay)
        self.postfix = ""
        self.wrote = False
        self.closed = False

    def _line(self, final: bool = False) -> None:
        elapsed = time.monotonic() - self.start
        count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        extra = f" ({self.postfix})" if self.postfix else ""
        state = "done" if final else "running"
        self.stream.write(f"{self.desc}: {count} {state}, {elapsed:.0f} s{extra}\n")
        self.stream.flush()
        self.wrote = True

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now >= self.next_line:
            self._line()
            self.next_line = now + LOG_INTERVAL_S

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def close(self) -> None:
        if not self.closed and self.wrote:
            self._line(final=True)
        self.closed = True


class _NoBar:
    """The hidden bar: same interface, does nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(
    total: int | None, desc: str, disable: bool | None = None, *, unit: str = "it"
) -> Any:
    """A bar for manual steps (``update()``, ``set_postfix_str()``, ``close()``).

    Args:
        total: number of steps (``None``: unknown).
        desc: label, e.g. ``"building search explorer"``.
        disable: ``True`` hides it; ``False``/``None`` shows it when the kit-wide switch allows.
        unit: tqdm's unit label.

    Returns:
        A tqdm bar (interactive output), a :class:`LineBar` (logs) or a silent stand-in.
    """
    if disable or not enabled():
        return _NoBar()
    if not interactive():
        return LineBar(total, desc)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, delay=DELAY_S, leave=False, unit=unit, disable=False)


def progress(
    items: Iterable[T], desc: str, disable: bool | None = None, *, unit: str = "it"
) -> Iterator[T]:
    """Iterate over ``items`` with a delayed progress bar (module doc for when it shows).

    Args:
        items: what to iterate over (its ``len`` gives the bar's total when it has one).
        desc: label of the bar, e.g. ``"BPR epochs"``.
        disable: ``True`` hides the bar; ``False``/``None`` shows it when the kit-wide switch
            and the environment allow.
        unit: tqdm's unit label.

    Returns:
        An iterator over ``items``.
    """
    try:
        total: int | None = len(items)  # type: ignore[arg-type]
    except TypeError:
        total = None
    bar = progress_bar(total, desc, disable, unit=unit)
    try:
        for item in items:
            yield item
            bar.update()
    finally:
        bar.close()
