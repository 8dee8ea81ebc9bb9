"""Benchmark: every released module, graded cold under the grader, against the 2-minute budget.

For each module, one at a time, with a fresh empty ``RECSYS_CACHE_DIR`` (nothing encoded or
generated beforehand): the release with the solutions filled in (what a perfect student hands
in) goes through the real grading path, the trusted judge and one bubblewrap sandbox
(``recsys_grader.judge.run_judge``, one worker). The judge builds its reference namespace while
the sandbox runs the notebook, so a 2-core machine is busy with both, as when grading a class.

Printed per module: wall time; CPU time (user + system) of the judge and of the sandbox (the
executor and the student's kernel), read from ``/proc`` while grading runs; the load average
before and after; and, against the budget of 120 s on two idle cores, an estimate that does not
depend on the machine's load: at least max(judge CPU, sandbox CPU, total CPU / 2) (the two run
side by side on two cores), at most the total CPU (one core busy at a time). Wall time on a
shared machine is inflated by the other processes (compare it with the estimate and the load
average). The peer measured in the same run is Module 0, the smallest notebook: ``x module 0``
compares modules independently of the load.

``--cells`` also runs each notebook once more outside the sandbox (plain nbclient, same
environment variables, cold cache) and prints its slowest cells, to know what to trim.

Usage:
    python bench/bench_notebooks.py [--only 02_similarity_ranking ...] [--cells] [--timeout 900]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path

BUDGET_S = 120.0


class TreeCPU:
    """CPU seconds (user + system) of every process below this one, by role.

    ``getrusage(RUSAGE_CHILDREN)`` misses the sandbox: its kernel dies with the sandbox's PID
    namespace and is reaped by the host, not by us. So a thread reads ``/proc/<pid>/stat`` of
    every descendant twice a second and keeps each process's last total (a process that lives
    less than half a second, or its last half second, is missed: a small undercount).
    """

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.seen: dict[tuple[int, str], tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        parent, stats = {}, {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            pid = int(entry)
            parent[pid] = int(fields[1])
            # utime, stime: fields 14 and 15 of stat; starttime 22 (here shifted by 2)
            stats[pid] = (fields[19], (int(fields[11]) + int(fields[12])) / self._tick, cmd)
        me = os.getpid()
        for pid, (start, seconds, cmd) in stats.items():
            ancestor, roles = parent.get(pid), [cmd]
            while ancestor not in (None, 0, 1, me):
                roles.append(stats.get(ancestor, ("", 0.0, ""))[2])
                ancestor = parent.get(ancestor)
            if ancestor == me:
                role = "sandbox" if any("bwrap" in r or "executor" in r for r in roles) else "judge"
                self.seen[(pid, start)] = (role, seconds)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeCPU:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def total(self, role: str | None = None) -> float:
        """CPU seconds of all descendants seen, or of one role ("judge", "sandbox")."""
        return sum(s for r, s in self.seen.values() if role is None or r == role)


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


@contextlib.contextmanager
def cold_cache():
    """A fresh, empty ``RECSYS_CACHE_DIR`` for the duration of the block."""
    cache = Path(tempfile.mkdtemp(prefix="recsys-cold-cache-"))
    os.environ["RECSYS_CACHE_DIR"] = str(cache)
    try:
        yield cache
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def grade_cold(assignment: str, timeout: int) -> dict:
    """Grade the solution-filled release of ``assignment`` with an empty cache.

    Returns:
        ``{"wall", "cpu", "cpu_judge", "cpu_sandbox", "load_before", "load_after", "score",
        "max", "error"}``.
    """
    from recsys_grader import cellscores, judge
    from recsys_grader import notebooks as nbs
    from recsys_grader.layout import CourseLayout
    from recsys_grader.sandbox import Limits, sandbox_support
    from recsys_grader.validate import solution_submission

    layout = CourseLayout.load()
    source = layout.source_notebook(assignment)
    source_nb = nbs.read_notebook(source)
    ref = nbs.reference(source_nb)
    submission = solution_submission(source_nb, ref)
    prepared, _ = cellscores.prepare(submission, ref)
    code = cellscores.student_code(submission, ref)
    limits = Limits(cell_timeout=timeout, notebook_timeout=timeout)
    insecure = not sandbox_support()[0]
    out: dict = {"load_before": _load(), "error": None, "score": None, "max": ref.max_points}
    start = time.perf_counter()
    jobs = [judge.JudgeJob(assignment, prepared, code)]
    with TreeCPU() as cpu:
        events = list(judge.run_judge(source, jobs, limits, 1, insecure))
    out["wall"] = time.perf_counter() - start
    out["cpu"], out["cpu_judge"], out["cpu_sandbox"] = (
        cpu.total(),
        cpu.total("judge"),
        cpu.total("sandbox"),
    )
    out["load_after"] = _load()
    event = events[0] if events else {"error": "no result"}
    out["error"] = event.get("error") or event.get("run_error")
    if event.get("verdicts"):
        # autograded points only (written answers await a person): a perfect run has all
        auto = [
            s for s in cellscores.from_verdicts(event["verdicts"]).values() if s.points is not None
        ]
        out["score"] = sum(s.points for s in auto)
        out["max"] = sum(s.max_points for s in auto)
    out["insecure"] = insecure
    return out


def slowest_cells(assignment: str, n: int = 5) -> list[tuple[float, int, str]]:
    """(seconds, cell index, first line) of the slowest cells, run by nbclient, cold cache."""
    import nbformat
    from nbclient import NotebookClient

    from recsys_grader import notebooks as nbs
    from recsys_grader.layout import CourseLayout
    from recsys_grader.validate import solution_submission

    layout = CourseLayout.load()
    source_nb = nbs.read_notebook(layout.source_notebook(assignment))
    nb = solution_submission(source_nb, nbs.reference(source_nb))
    nb = nbformat.from_dict(nb)
    os.environ["NBGRADER_EXECUTION"] = "autograde"  # what the grader's kernel sees
    client = NotebookClient(nb, timeout=900, record_timing=True, allow_errors=True)
    client.execute()
    times = []
    for index, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        begin, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if begin and end:
            from datetime import datetime

            seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(begin)).total_seconds()
            first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")[:70]
            times.append((seconds, index, first))
    return sorted(times, reverse=True)[:n]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="assignments (default: all)")
    parser.add_argument("--cells", action="store_true", help="also list each one's slowest cells")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell and notebook")
    args = parser.parse_args(argv)

    from recsys_grader.layout import CourseLayout

    modules = CourseLayout.load().select(args.only)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}; load average at start {_load()}"
    )
    print(f"budget: {BUDGET_S:.0f} s per module on 2 idle cores, cold cache\n")
    rows = []
    saved = os.environ.get("RECSYS_CACHE_DIR")
    for assignment in modules:
        try:
            with cold_cache():
                result = grade_cold(assignment, args.timeout)
            cells = []
            if args.cells:
                with cold_cache():
                    cells = slowest_cells(assignment)
        finally:
            if saved is None:
                os.environ.pop("RECSYS_CACHE_DIR", None)
            else:
                os.environ["RECSYS_CACHE_DIR"] = saved
        rows.append((assignment, result, cells))
        print(f"{assignment}: wall {result['wall']:.1f} s, CPU {result['cpu']:.1f} s "
              f"(judge {result['cpu_judge']:.1f}, sandbox {result['cpu_sandbox']:.1f}) "
              f"(load {result['load_before']} -> {result['load_after']})", flush=True)  # fmt: skip
    peer = next((r["cpu"] for a, r, _ in rows if a.startswith("00_")), None)
    print()
    print("| module | wall s | CPU judge s | CPU sandbox s | idle 2-core estimate s | within "
          "120 s | x module 0 (CPU) | autograded points | load before -> after |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for assignment, r, _ in rows:
        low = max(r["cpu_judge"], r["cpu_sandbox"], r["cpu"] / 2)
        high = r["cpu"]
        if high <= BUDGET_S:
            verdict = "yes"
        elif low > BUDGET_S:
            verdict = "no"
        else:
            verdict = "likely" if r["wall"] <= BUDGET_S else "check"
        ratio = f"{r['cpu'] / peer:.1f}x" if peer else "-"
        score = "-" if r["score"] is None else f"{r['score']:g}/{r['max']:g}"
        if r["error"]:
            score += f" ({str(r['error'])[:60]})"
        load = f"{r['load_before']} -> {r['load_after']}"
        print(f"| {assignment} | {r['wall']:.1f} | {r['cpu_judge']:.1f} | {r['cpu_sandbox']:.1f} "
              f"| {low:.0f} .. {high:.0f} | {verdict} | {ratio} | {score} | {load} |")  # fmt: skip
    if any(r.get("insecure") for _, r, _ in rows):
        print("\nno bubblewrap here: graded without the sandbox (timings exclude its start-up)")
    for assignment, _, cells in rows:
        if cells:
            print(f"\n{assignment}: slowest cells (nbclient, cold cache)")
            for seconds, index, first in cells:
                print(f"  {seconds:7.1f} s  cell {index:3d}  {first}")


if __name__ == "__main__":
    main()
