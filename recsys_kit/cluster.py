"""Connecting to a Dask cluster: the one place that turns ``--cluster`` into a client.

Work that outgrows one machine (grading a class, encoding a catalogue of millions of products)
runs on `Dask distributed <https://distributed.dask.org>`_, an existing engine, not a home-made
one. Dask rather than Ray: it is a pure-Python pip install that runs on the CPU machines of the
course as well as on a university's Slurm cluster (``dask-jobqueue``) and on Kubernetes
(``dask-kubernetes``, ``dask-gateway``), its scheduler is a single small process, and a worker
is an ordinary Python process in the course's virtual environment, so the grader's sandboxes
start there exactly as on one machine.

``cluster`` is one of:

* ``"local:N"``: a :class:`distributed.LocalCluster` of N worker processes on this machine
  (one thread each), started for the duration of the ``with`` block and stopped after;
* a scheduler address (``"tcp://host:8786"``, ``"tls://..."``): an existing cluster; the
  security settings come from Dask's configuration (``distributed.comm.tls``), as usual;
* a :class:`distributed.Client` you already hold: used as is, never closed here.

Dask is an optional dependency (the ``cluster`` extra): ``recsys_kit`` imports without it.

Example:
    >>> with connect("local:2") as client:              # doctest: +SKIP
    ...     workers(client)
    2
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "LOCAL",
    "CONNECT_TIMEOUT_S",
    "WORKER_WAIT_S",
    "INSTALL_HINT",
    "require_dask",
    "parse",
    "connect",
    "workers",
]

#: ``local:N`` starts a LocalCluster of N worker processes.
LOCAL = re.compile(r"^local:(\d+)$")
#: Seconds to reach a scheduler, and to wait for its first worker.
CONNECT_TIMEOUT_S = 30
WORKER_WAIT_S = 120
INSTALL_HINT = 'install the cluster extra: pip install -e ".[cluster]" (dask distributed)'


def require_dask() -> Any:
    """Import ``distributed``, or say how to install it.

    Returns:
        The ``distributed`` module.

    Raises:
        ImportError: naming the extra to install.
    """
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"running on a cluster needs Dask: {INSTALL_HINT}") from exc
    return distributed


def parse(cluster: str) -> int | None:
    """The number of local workers of ``"local:N"``, or None for a scheduler address.

    Raises:
        ValueError: for ``local:0`` or an address that is not ``scheme://host:port``.
    """
    text = cluster.strip()
    match = LOCAL.match(text)
    if match:
        n = int(match.group(1))
        if n < 1:
            raise ValueError(f"--cluster local:N needs N >= 1 worker processes, got {cluster!r}")
        return n
    if text.startswith("local"):
        raise ValueError(f"--cluster {cluster!r}: write local:N (e.g. local:2) for N local workers")
    if "://" not in text and ":" not in text:
        raise ValueError(
            f"--cluster {cluster!r} is not a scheduler address: give tcp://host:8786 (the address "
            "the Dask scheduler prints), or local:N to start N worker processes here"
        )
    return None


@contextlib.contextmanager
def connect(cluster: Any, threads_per_worker: int = 1) -> Iterator[Any]:
    """A Dask client for ``cluster`` (module docstring), closed when the block ends.

    Args:
        cluster: ``"local:N"``, a scheduler address, or a ``distributed.Client``.
        threads_per_worker: threads of each local worker process (``local:N`` only).

    Yields:
        A connected ``distributed.Client`` with at least one worker.

    Raises:
        ImportError: Dask is not installed (names the extra).
        ValueError: a malformed ``cluster``.
        ConnectionError: the scheduler cannot be reached, or it has no worker.
    """
    distributed = require_dask()
    if isinstance(cluster, distributed.Client):
        yield cluster
        return
    n_local = parse(str(cluster))
    with contextlib.ExitStack() as stack:
        if n_local is not None:
            local = distributed.LocalCluster(
                n_workers=n_local,
                threads_per_worker=threads_per_worker,
                processes=True,
                dashboard_address=None,  # a shared machine: never claim port 8787
                scheduler_port=0,
                host="127.0.0.1",
                silence_logs=logging.ERROR,  # the caller's log stays readable
            )
            stack.enter_context(local)
            address = local.scheduler_address
        else:
            address = str(cluster).strip()
        try:
            client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(
                f"could not reach the Dask scheduler at {address} ({exc}): start it (dask "
                "scheduler, SLURMCluster, a Helm release: docs/deploy.md) and pass the address "
                "it prints, e.g. tcp://host:8786"
            ) from exc
        stack.enter_context(client)
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(
                f"the Dask scheduler at {address} has no worker after {WORKER_WAIT_S} s: start "
                "workers (dask worker ADDRESS, or cluster.scale(n)) and try again"
            ) from exc
        yield client


def workers(client: Any) -> list[str]:
    """Addresses of the client's workers now, sorted."""
    try:
        info = client.scheduler_info(n_workers=-1)  # newer releases list 5 unless asked
    except TypeError:
        info = client.scheduler_info()
    return sorted(info.get("workers", {}))
