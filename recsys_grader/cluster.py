"""``recsys-course autograde --cluster ADDRESS``: the judges run on the workers of a Dask cluster.

The unit of work is what one machine runs: :func:`recsys_grader.judge.run_judge` on a chunk
of one assignment's prepared submissions. Each chunk is a Dask task; on its worker, the judge
process builds the reference namespace once for the chunk and starts one bubblewrap sandbox per
notebook, exactly as on one machine (so every grading task is still sandboxed, on its worker).
The task returns the judge's result events (plain JSON-able dicts) to the client, which records
them into the gradebook in its own process, one at a time, as :mod:`recsys_grader.autograde`
does on one machine (the gradebook has a single writer, as ``recsys-course merge`` guarantees
for shards). Nothing on a worker writes to the course root.

Workers must see the same course: the solution notebooks at the same path (shared storage, or a
synced copy at that path), the same ``recsys_kit``/``recsys_grader`` code, the same datasets
and the same Python libraries. Before anything is sent, every worker reports its fingerprint of
those and whether bubblewrap works there; a mismatch stops the run with an error naming the
worker and what differs (nothing is recorded). Each task checks again on its worker (a worker
may join later): a worker that differs refuses its chunk, which is reported as a grader error.

Chunks: one assignment's submissions are dealt round-robin into one chunk per worker (fewer
when there are fewer submissions, more when a chunk would hold over :data:`CHUNK_MAX`, so that
results reach the gradebook while a large class is graded and workers that finish early take
the next chunk). A worker that dies loses no grade: Dask re-runs its task
elsewhere; a chunk that still fails is split and each submission re-run alone; a submission
whose own task fails again gets ``failed_to_run`` with a "grader error" detail (never the
student's failure: re-run autograde for it).

Example:
    >>> from recsys_grader.cluster import chunks
    >>> chunks(list("abcde"), 2)
    [['a', 'c', 'e'], ['b', 'd']]
"""

from __future__ import annotations

import contextlib
import hashlib
import platform
import socket
from collections.abc import Callable, Iterator
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat

from recsys_grader import judge
from recsys_grader.layout import CourseError
from recsys_grader.sandbox import Limits, sandbox_support
from recsys_kit import paths
from recsys_kit.cluster import connect, workers

#: Most submissions in one chunk (one reference build, one task, results recorded together).
CHUNK_MAX = 24
#: Libraries whose versions change what a notebook computes (and so what passes).
LIBRARIES = ("numpy", "pandas", "scipy", "torch", "transformers", "nbgrader", "nbclient")


NOTEBOOK = "solution notebook "


def _notebook_key(source: str) -> str:
    return f"{NOTEBOOK}{source}"


class CourseMismatch(RuntimeError):  # noqa: N818 (reads as what it is)
    """A worker does not see the course files the client grades with."""


def _digest(files: list[tuple[str, Path]]) -> str:
    h = hashlib.sha256()
    for name, path in sorted(files):
        h.update(name.encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _tree(root: Path, pattern: str) -> list[tuple[str, Path]]:
    return [
        (p.relative_to(root).as_posix(), p)
        for p in root.rglob(pattern)
        if p.is_file() and "__pycache__" not in p.parts
    ]


def fingerprint(sources: list[str]) -> dict[str, str]:
    """What must be the same on the client and every worker, as checksums.

    Args:
        sources: absolute paths of the solution notebooks being graded.

    Returns:
        {what: checksum or version string}; an unreadable file reads ``missing``.
    """
    import recsys_grader
    import recsys_kit

    found: dict[str, str] = {}
    for source in sources:
        path = Path(source)
        found[_notebook_key(source)] = (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        )
    code = []
    for package in (recsys_kit, recsys_grader):
        root = Path(package.__file__).resolve().parent
        code += [(f"{root.name}/{name}", p) for name, p in _tree(root, "*.py")]
    found["recsys_kit and recsys_grader code"] = _digest(code)
    try:
        found["datasets"] = _digest(_tree(paths.data_dir(), "*"))
    except FileNotFoundError:
        found["datasets"] = "missing"
    versions = [f"python {platform.python_version()}"]
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} absent")
    found["python and libraries"] = ", ".join(versions)
    return found


def _where() -> str:
    try:
        from distributed import get_worker

        return f"{get_worker().address} ({socket.gethostname()})"
    except (ImportError, ValueError):
        return socket.gethostname()


def differences(expected: dict[str, str], found: dict[str, str]) -> list[str]:
    """What a worker sees differently from the client, one line each."""
    lines = []
    for what, value in expected.items():
        there = found.get(what, "missing")
        if there != value:
            if there == "missing":
                lines.append(f"{what}: missing there")
            elif what == "python and libraries":
                lines.append(f"{what}: {there} (client: {value})")
            else:
                lines.append(f"{what}: checksum {there[:12]} (client: {value[:12]})")
    return lines


def mismatch_message(where: str, lines: list[str]) -> str:
    """The error a worker that sees other course files gives, naming the fix."""
    return (
        f"worker {where} does not see the course the client grades with: {'; '.join(lines)}. "
        "Every worker needs the course repository at the same path (shared storage, or a copy "
        "synced to that path) and the same environment: docs/deploy.md, 'Autograding on a Dask "
        "cluster'"
    )


def worker_report(sources: list[str]) -> dict[str, Any]:
    """Run on each worker before grading: its fingerprint and whether bubblewrap works."""
    available, why = sandbox_support()
    return {
        "host": socket.gethostname(),
        "fingerprint": fingerprint(sources),
        "sandbox": available,
        "why": why,
    }


def grade_chunk(
    source: str,
    expected: dict[str, str],
    jobs: list[dict],
    limits: dict,
    workers: int,
    insecure: bool,
) -> list[dict]:
    """One task: grade a chunk of one assignment's submissions on this worker.

    Args:
        source: absolute path of the solution notebook (the same path on every worker).
        expected: the client's :func:`fingerprint` of that notebook and the course.
        jobs: ``{"key", "notebook" (nbformat JSON text), "code_cells"}`` per submission.
        limits: the sandbox limits as a dict.
        workers: sandboxes at once on this worker.
        insecure: grade without a sandbox where bubblewrap is missing.

    Returns:
        The judge's result events, one per job (``recsys_grader.judge.run_judge``).

    Raises:
        CourseMismatch: this worker sees other course files than the client.
    """
    lines = differences(expected, fingerprint([source]))
    if lines:
        raise CourseMismatch(mismatch_message(_where(), lines))
    batch = [
        judge.JudgeJob(
            job["key"],
            nbformat.reads(job["notebook"], as_version=4),
            [tuple(cell) for cell in job["code_cells"]],
        )
        for job in jobs
    ]
    return list(judge.run_judge(Path(source), batch, Limits(**limits), workers, insecure))


def chunks(items: list, n: int) -> list[list]:
    """Deal ``items`` round-robin into ``min(n, len(items))`` chunks (sizes differ by <= 1)."""
    k = max(1, min(n, len(items)))
    return [items[i::k] for i in range(k)] if items else []


def _preflight(client: Any, sources: list[str], insecure: bool) -> dict[str, str]:
    """The client's fingerprint, after checking that every worker has the same one."""
    expected = fingerprint(sources)
    missing = [k for k, v in expected.items() if v == "missing"]
    if missing:
        raise CourseError(f"cannot read {', '.join(missing)} here")
    reports = client.run(worker_report, sources)
    problems = []
    for address, report in sorted(reports.items()):
        where = f"{address} ({report['host']})"
        lines = differences(expected, report["fingerprint"])
        if lines:
            problems.append(mismatch_message(where, lines))
        elif not report["sandbox"] and not insecure:
            problems.append(
                f"worker {where} cannot sandbox student code: {report['why']}. Install "
                "bubblewrap on every node (docs/deploy.md), or pass --insecure (trusted "
                "notebooks only)"
            )
    if problems:
        raise CourseError("; ".join(problems))
    return expected


def _error_events(jobs: list[dict], message: str) -> list[dict]:
    return [{"key": job["key"], "error": f"grader error: {message}"[:1000]} for job in jobs]


def grade_on_cluster(
    cluster: Any,
    batches: dict[Path, list[judge.JudgeJob]],
    limits: Limits,
    workers_per_judge: int,
    insecure: bool,
    log: Callable[[str], None] = print,
) -> Iterator[dict]:
    """Connect and check the workers now; return the result events as chunks finish.

    Args:
        cluster: ``"local:N"``, a scheduler address or a ``distributed.Client``.
        batches: {solution notebook: the assignment's prepared jobs}.
        limits: sandbox limits.
        workers_per_judge: sandboxes at once in each judge (``--workers``).
        insecure: grade without a sandbox where bubblewrap is missing.
        log: where progress lines go.

    Returns:
        An iterator of the judge's events (``{"key", "error", ...}``), one per job, in
        completion order; the cluster is released when it is exhausted or closed.

    Raises:
        CourseError: Dask is missing, the cluster is unreachable, or a worker sees other
            course files or cannot sandbox (raised here, before anything is graded).
    """
    batches = {Path(s).resolve(): jobs for s, jobs in batches.items() if jobs}
    if not batches:
        return iter(())
    stack = contextlib.ExitStack()
    try:
        try:
            client = stack.enter_context(connect(cluster))
        except (ImportError, ValueError, ConnectionError) as exc:
            raise CourseError(str(exc)) from None
        expected = _preflight(client, [str(s) for s in batches], insecure)
    except BaseException:
        stack.close()
        raise
    log(f"cluster: {len(workers(client))} worker(s) at {client.scheduler.address}")
    return _grade(stack, client, expected, batches, limits, workers_per_judge, insecure, log)


def _grade(
    stack: contextlib.ExitStack,
    client: Any,
    expected: dict[str, str],
    batches: dict[Path, list[judge.JudgeJob]],
    limits: Limits,
    workers_per_judge: int,
    insecure: bool,
    log: Callable[[str], None],
) -> Iterator[dict]:
    from distributed import as_completed

    futures: dict[Any, tuple[str, list[dict], bool]] = {}

    def submit(source: str, jobs: list[dict], alone: bool) -> Any:
        wanted = {k: v for k, v in expected.items() if not k.startswith(NOTEBOOK)}
        wanted[_notebook_key(source)] = expected[_notebook_key(source)]
        future = client.submit(
            grade_chunk,
            source,
            wanted,
            jobs,
            asdict(limits),
            workers_per_judge,
            insecure,
            pure=False,
        )
        futures[future] = (source, jobs, alone)
        return future

    with stack:
        n_workers = len(workers(client))
        for source, batch in batches.items():
            plain = [
                {"key": j.key, "notebook": nbformat.writes(j.notebook), "code_cells": j.code_cells}
                for j in batch
            ]
            parts = chunks(plain, max(n_workers, -(-len(plain) // CHUNK_MAX)))
            log(f"{source.stem}: {len(plain)} submission(s) in {len(parts)} chunk(s)")
            for part in parts:
                submit(str(source), part, len(part) == 1)
        pending = as_completed(list(futures))
        for future in pending:
            source, jobs, alone = futures.pop(future)
            try:
                events = future.result()
            except CourseMismatch as exc:
                yield from _error_events(jobs, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 (a lost worker, a broken connection)
                why = f"{type(exc).__name__}: {exc}"[:300]
                if alone:
                    yield from _error_events(
                        jobs, f"its grading task failed on the cluster ({why}); re-grade it"
                    )
                    continue
                log(f"{Path(source).stem}: a chunk failed on the cluster ({why}); re-running alone")
                for job in jobs:
                    pending.add(submit(source, [job], True))
                continue
            finally:
                future.release()
            seen = {e.get("key") for e in events}
            yield from events
            yield from _error_events(
                [j for j in jobs if j["key"] not in seen], "the worker returned no result for it"
            )
