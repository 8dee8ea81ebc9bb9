"""Isolation for untrusted notebook execution: no network, a memory limit, a deadline.

On Linux as root the command runs inside ``unshare --net --pid --mount --fork --kill-child`` (a
network namespace with only loopback, brought up for the kernel's ZeroMQ sockets; a PID namespace
so killing the sandbox kills every process the student started; a private mount namespace in which
the instructor folders, :data:`HIDDEN_DIRS` — solutions with their hidden tests, the gradebook and
every other student's submission — are covered by an empty read-only tmpfs) under
``prlimit --as``. Elsewhere
it degrades with a printed warning: a memory limit through ``setrlimit`` where available, and
network access left open.

Example:
    >>> from recsys_grader.sandbox import Limits, wrap
    >>> cmd, warnings = wrap(["python", "-c", "print(1)"], Limits())
    >>> cmd[-3:]
    ['python', '-c', 'print(1)']
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from recsys_kit.paths import REPO_ROOT

#: Folders a submission must not read or write while it runs (solutions, hidden tests, grades,
#: other students' work). The kit, the datasets and the embedding cache stay visible.
HIDDEN_DIRS = (REPO_ROOT / "solutions", REPO_ROOT / "grading")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one notebook run.

    Attributes:
        cell_timeout: seconds one cell may run before it is interrupted (and scores 0).
        notebook_timeout: seconds the whole run may take before everything is killed.
        memory_mb: address-space limit of every process in the sandbox, in MiB.
        output_cap: bytes of output kept per cell (the rest is dropped with a notice).
        network: allow network access (only for trusted runs, e.g. ``validate --network``).
    """

    cell_timeout: int = 60
    notebook_timeout: int = 600
    memory_mb: int = 4096
    output_cap: int = 100_000
    network: bool = False

    def __post_init__(self) -> None:
        for name in ("cell_timeout", "notebook_timeout", "memory_mb", "output_cap"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@functools.lru_cache(maxsize=1)
def network_isolation() -> tuple[bool, str]:
    """Whether ``unshare`` can make a network + PID namespace here (checked once).

    Returns:
        (available, reason when not available).
    """
    if not sys.platform.startswith("linux"):
        return False, f"network namespaces need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return False, "unshare --net needs root (run the grader as root or in a container)"
    missing = [tool for tool in ("unshare", "ip") if shutil.which(tool) is None]
    if missing:
        return False, f"missing {' and '.join(missing)} (apt-get install util-linux iproute2)"
    probe = subprocess.run(
        [*_UNSHARE, "ip", "link", "set", "lo", "up"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return False, f"unshare failed: {probe.stderr.strip()[:200]}"
    return True, ""


_UNSHARE = ["unshare", "--net", "--pid", "--mount", "--fork", "--kill-child"]


def _hide_script(dirs: tuple[Path, ...]) -> str:
    """Shell commands covering each existing folder with an empty read-only tmpfs.

    unshare gives the mount namespace private propagation, so the host never sees these mounts.
    """
    return "".join(
        f"mount -t tmpfs -o ro,size=4k,mode=0555 recsys-hidden {shlex.quote(str(d))} && "
        for d in dirs
        if d.is_dir()
    )


def _setrlimit_as(limit_bytes: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


def wrap(
    command: list[str], limits: Limits, hide: tuple[Path, ...] = HIDDEN_DIRS
) -> tuple[list[str], list[str]]:
    """Wrap ``command`` in the isolation available here.

    Args:
        command: the program and its arguments.
        limits: the limits to apply.
        hide: folders made invisible inside the sandbox (with network isolation only).

    Returns:
        (command to run, warnings about missing isolation).
    """
    warnings: list[str] = []
    limit_bytes = limits.memory_mb * 1024 * 1024
    inner = list(command)
    if shutil.which("prlimit"):
        inner = ["prlimit", f"--as={limit_bytes}", "--", *inner]
    elif sys.platform.startswith("linux") or sys.platform == "darwin":
        pass  # applied through preexec (see popen_kwargs)
    else:
        warnings.append(f"no memory limit on {sys.platform}: a runaway submission can exhaust RAM")
    if limits.network:
        return inner, warnings
    available, reason = network_isolation()
    if not available:
        warnings.append(f"student code can reach the network: {reason}")
        return inner, warnings
    script = "ip link set lo up && " + _hide_script(tuple(hide)) + "exec " + shlex.join(inner)
    return [*_UNSHARE, "sh", "-c", script], warnings


def popen_kwargs(limits: Limits) -> dict:
    """Extra ``subprocess.Popen`` arguments: a new session (to kill the whole group), and the
    memory limit through ``setrlimit`` when ``prlimit`` is missing."""
    kwargs: dict = {"start_new_session": True}
    if not shutil.which("prlimit") and (
        sys.platform.startswith("linux") or sys.platform == "darwin"
    ):
        kwargs["preexec_fn"] = _setrlimit_as(limits.memory_mb * 1024 * 1024)
    return kwargs


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (the sandbox and, through the PID namespace,
    everything started inside it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
