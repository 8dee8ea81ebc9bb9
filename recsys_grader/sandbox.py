"""The sandbox that runs a student's notebook: bubblewrap, an unprivileged uid, plain-data pipes.

Every submission runs in its own `bubblewrap <https://github.com/containers/bubblewrap>`_
sandbox (Debian ``bubblewrap``, the sandbox of Flatpak):

* its own PID, network (loopback only), IPC, UTS and mount namespaces, ``--die-with-parent``,
  a new session; a fresh ``/proc`` that shows only the sandbox's processes;
* a minimal read-only file system: ``/usr``, a few files of ``/etc``, the Python interpreter,
  the virtual environment, ``recsys_kit``, the grader's sandbox-side code and the datasets and
  embedding cache (read-only: no submission can poison what the next one reads). Never the
  gradebook, ``solutions/``, other submissions, the course root or the repository itself;
* a private size-limited tmpfs for ``/tmp`` (the work folder and ``HOME``), fresh each time,
  so nothing is shared between submissions and nothing the student writes outlives the run;
* an unprivileged identity with no capabilities and ``no_new_privs``: as root, a uid of its own
  per sandbox (``setpriv``) inside a nested unprivileged bubblewrap that forbids user namespaces
  (in one the student would be "root" and could mount a tmpfs of any size); as an ordinary user,
  uid 65534 in a user namespace that cannot create further ones;
* limits on address space, processes, open files, file size, core dumps and CPU time
  (``prlimit``), and the wall-clock deadlines the grader enforces;
* a scrubbed environment.

The grader talks to the sandbox only through the stdin/stdout pipes it opened, in framed plain
data (:mod:`recsys_grader.wire`); it never reads files the sandbox wrote and never parses its
stderr as a status (stderr is shown only when the sandbox fails before any student code ran).

Where bubblewrap cannot run, :class:`Sandbox` refuses (``SandboxUnavailable``) unless the caller
passes ``insecure=True``, which runs the same program without isolation, with a warning.

Example:
    >>> from recsys_grader.sandbox import Limits, sandbox_support
    >>> Limits().cell_timeout
    60
    >>> ok, why = sandbox_support()  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from recsys_grader import wire
from recsys_grader.layout import CourseError
from recsys_kit import paths
from recsys_kit.paths import REPO_ROOT

#: Files of /etc a Python program with numpy, torch and matplotlib reads.
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "fonts",
    "localtime",
    "hosts",
    "nsswitch.conf",
    "mime.types",
)
SANDBOX_TMP = "/tmp"
#: Set by the grader for the judge process it starts once bubblewrap was probed successfully.
_CHECKED = "RECSYS_SANDBOX_PROBED"
SANDBOX_HOME = "/tmp/home"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed notebook run.

    Attributes:
        cell_timeout: seconds one cell (or one test cell's calls) may run before it scores 0.
        notebook_timeout: seconds the whole notebook may run before the sandbox is killed.
        memory_mb: address-space limit of every process in the sandbox, in MiB.
        output_cap: bytes of output kept per cell (the rest is dropped with a notice).
        network: allow network access (only for trusted runs, e.g. ``validate --network``).
        processes: most processes (threads count) the sandbox may run at once.
        disk_mb: size of the sandbox's private ``/tmp``, in MiB.
    """

    cell_timeout: int = 60
    notebook_timeout: int = 600
    memory_mb: int = 4096
    output_cap: int = 100_000
    network: bool = False
    processes: int = 512
    disk_mb: int = 512

    def __post_init__(self) -> None:
        for name in (
            "cell_timeout",
            "notebook_timeout",
            "memory_mb",
            "output_cap",
            "processes",
            "disk_mb",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


class SandboxUnavailable(CourseError):
    """bubblewrap cannot run here; grading refuses unless ``--insecure`` is given."""


class SandboxError(RuntimeError):
    """The sandbox failed before any student code ran (an infrastructure problem)."""


class SandboxGone(RuntimeError):
    """The sandbox stopped answering (killed, crashed, deadline passed, garbage on the pipe)."""


def _bwrap() -> str | None:
    return shutil.which("bwrap")


def _read_only_paths() -> list[Path]:
    """What the sandbox sees, read-only (existing paths only, deduplicated, nested ones dropped)."""
    data = paths.data_dir()
    cache = Path(os.environ.get("RECSYS_CACHE_DIR") or REPO_ROOT / ".cache").expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    wanted = [
        Path(sys.base_prefix),
        Path(sys.prefix),
        Path(__file__).resolve().parent,  # the grader's sandbox-side code (executor, agent)
        Path(paths.__file__).resolve().parent,  # recsys_kit
        data,
        cache,
    ]
    wanted = [p.resolve() for p in wanted if p.exists()]
    kept: list[Path] = []
    for p in sorted(set(wanted), key=lambda q: len(q.parts)):
        if not any(p == k or k in p.parents for k in kept):
            kept.append(p)
    return kept


def exposed(secret: dict[str, Path]) -> list[str]:
    """Which of the grader's private folders the sandbox would show (read-only mounts hold them).

    Args:
        secret: {what: folder} that no student may read (course root, solutions, ...).

    Returns:
        One line per exposed folder, naming it and the mount that holds it (empty: none).

    Example:
        >>> exposed({"the course root": Path("/nonexistent/grading")})
        []
    """
    mounts = _read_only_paths()
    found = []
    for what, folder in secret.items():
        folder = Path(folder).resolve()
        for mount in mounts:
            if folder == mount or mount in folder.parents:
                found.append(f"{what} {folder} lies inside {mount}, which the sandbox shows")
    return found


def sandbox_env(limits: Limits) -> dict[str, str]:
    """The whole environment inside the sandbox (nothing of the grader's leaks in)."""
    cache = Path(os.environ.get("RECSYS_CACHE_DIR") or REPO_ROOT / ".cache").expanduser().resolve()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": SANDBOX_HOME,
        "TMPDIR": SANDBOX_TMP,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "NBGRADER_EXECUTION": "autograde",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{SANDBOX_TMP}/matplotlib",
        "JUPYTER_RUNTIME_DIR": f"{SANDBOX_TMP}/jupyter-runtime",
        "JUPYTER_CONFIG_DIR": f"{SANDBOX_TMP}/jupyter-config",
        "IPYTHONDIR": f"{SANDBOX_TMP}/ipython",
        "HF_HOME": f"{SANDBOX_TMP}/huggingface",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "RECSYS_CACHE_DIR": str(cache),
        "RECSYS_DATA_DIR": str(paths.data_dir()),
        "RECSYS_DEVICE": "cpu",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        # The memory limit is on address space, so allocators that reserve it ahead of use
        # must not: pyarrow's default pool (mimalloc) reserves 1 GiB at its first allocation
        # (reading a parquet catalog), and glibc 64 MiB per malloc arena, adding arenas as
        # threads contend (more of them under load). A Module 0 kernel held 1.5 GB before
        # its first exercise instead of 0.45 GB; honest notebooks then hit MemoryError in the
        # grader's calls, or "can't start new thread", at random (issue 12's "unavailable"
        # victims: 13 of 40 Module 0 gradings under a 2 GiB limit on a loaded machine).
        "ARROW_DEFAULT_MEMORY_POOL": "system",
        "MALLOC_ARENA_MAX": "2",
    }
    if limits.network:
        for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            env.pop(key)
    return env


def _limits_prefix(limits: Limits) -> list[str]:
    mib = 1024 * 1024
    return [
        "prlimit",
        f"--as={limits.memory_mb * mib}",
        f"--nproc={limits.processes}",
        "--nofile=1024",
        f"--fsize={limits.disk_mb * mib}",
        "--core=0",
        f"--cpu={2 * limits.notebook_timeout + 60}",
        "--",
    ]


def _no_user_namespaces(uid: int) -> list[str]:
    """A second, unprivileged bubblewrap inside the first (as root): a user namespace of the
    sandbox's own uid that cannot create further ones. Without it the student could create a
    user namespace, be root there, and mount a tmpfs of any size (a disk bomb in the host's
    memory) or reach the parts of the kernel that only such a "root" can."""
    return [
        _bwrap() or "bwrap",
        "--unshare-user",
        "--uid",
        str(uid),
        "--gid",
        str(uid),
        "--disable-userns",
        "--cap-drop",
        "ALL",
        "--dev-bind",
        "/",
        "/",
        "--",
    ]


def bwrap_command(
    command: list[str], limits: Limits, uid: int, passwd: Path, nested: bool | None = None
) -> list[str]:
    """The bubblewrap command line that runs ``command`` in a sandbox.

    Args:
        command: the program (inside the sandbox) and its arguments.
        limits: resource limits.
        uid: the unprivileged uid (as root: a uid of its own; otherwise unused).
        passwd: a one-line passwd file naming that uid (mounted as ``/etc/passwd``).
        nested: as root, block user namespaces with a nested unprivileged bubblewrap (default:
            where this machine allows it, see :func:`sandbox_support`).

    Returns:
        The argument list for ``subprocess``.
    """
    as_root = os.geteuid() == 0
    args = [_bwrap() or "bwrap"]
    args += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / link
        if target.is_symlink():
            args += ["--symlink", os.readlink(target), f"/{link}"]
        elif target.is_dir():
            args += ["--ro-bind", str(target), f"/{link}"]
    for name in ETC_FILES:
        if (Path("/etc") / name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    args += ["--ro-bind", str(passwd), "/etc/passwd"]
    # the private /tmp before the read-only mounts, so that a course kept under /tmp (its
    # venv, data, cache) is mounted on top of it rather than hidden by it
    args += ["--perms", "1777", "--size", str(limits.disk_mb * 1024 * 1024), "--tmpfs", "/tmp"]
    made = {Path("/"), Path("/usr"), Path("/etc"), Path("/tmp")}
    for path in _read_only_paths():
        for parent in reversed(path.parents):  # readable parents (bwrap would make them 0700)
            if parent not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        args += ["--ro-bind", str(path), str(path)]
        made.add(path)
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not limits.network:
        args.append("--unshare-net")
    args += ["--hostname", "recsys-sandbox", "--die-with-parent", "--new-session"]
    args += ["--clearenv", "--chdir", SANDBOX_TMP]
    for key, value in sandbox_env(limits).items():
        args += ["--setenv", key, value]
    if as_root:
        # bwrap (as root) builds the namespaces; setpriv then becomes an unprivileged uid of
        # its own, with no capabilities at all and no way to gain any (no_new_privs)
        drop = [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
        if nested is None:
            nested = _nesting_works()
        inner = _no_user_namespaces(uid) if nested else []
        return [*args, "--", *drop, *inner, *_limits_prefix(limits), *command]
    args += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns"]
    args += ["--cap-drop", "ALL"]
    return [*args, "--", *_limits_prefix(limits), *command]


def _probe(code: str, nested: bool) -> subprocess.CompletedProcess | str:
    """Run ``python -c code`` in a sandbox; the finished process, or why it did not start."""
    with tempfile.TemporaryDirectory(prefix="recsys-probe-") as tmp:
        passwd = Path(tmp) / "passwd"
        passwd.write_text("student:x:65534:65534::/tmp/home:/bin/false\n")
        os.chmod(tmp, 0o755)
        command = bwrap_command([sys.executable, "-c", code], Limits(), 65534, passwd, nested)
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"bubblewrap failed to start ({exc})"


#: Run in a probe sandbox: exits 0 when no user namespace can be created there.
_USERNS_PROBE = (
    "import ctypes, sys\n"
    "sys.exit(1 if ctypes.CDLL(None).unshare(0x10000000) == 0 else 0)  # CLONE_NEWUSER\n"
)


@functools.lru_cache(maxsize=1)
def _nesting_works() -> bool:
    """As root: whether the nested bubblewrap that blocks user namespaces runs here (it needs
    the kernel to allow unprivileged user namespaces; where it does not, students cannot create
    any either, which :func:`sandbox_support` checks)."""
    if os.geteuid() != 0:
        return False
    probe = _probe("pass", nested=True)
    return not isinstance(probe, str) and probe.returncode == 0


@functools.lru_cache(maxsize=1)
def sandbox_support() -> tuple[bool, str]:
    """Whether bubblewrap works here (checked once, by running Python in a sandbox) and holds:
    no user namespace can be created inside it.

    Returns:
        (available, why not).
    """
    if not sys.platform.startswith("linux"):
        return False, f"bubblewrap needs Linux (this is {sys.platform})"
    if os.environ.get(_CHECKED) == "1":  # the grader that started this process probed already
        return True, ""
    missing = [t for t in ("bwrap", "prlimit", "setpriv") if shutil.which(t) is None]
    if missing:
        return False, f"missing {', '.join(missing)} (apt-get install bubblewrap util-linux)"
    probe = _probe(_USERNS_PROBE, nested=None)
    if isinstance(probe, str):
        return False, probe
    if probe.returncode == 1:
        return False, (
            "a sandboxed process can create user namespaces and bubblewrap cannot prevent it "
            "here (run the grader as root, or allow unprivileged user namespaces)"
        )
    if probe.returncode != 0:
        return False, f"bubblewrap failed: {probe.stderr.strip()[:300]}"
    return True, ""


def _sweep_uid(uid: int) -> None:
    """SIGKILL every process of a sandbox's own uid (a fork that escaped the group)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            status = (entry / "status").read_text()
            real = int(status.split("\nUid:")[1].split()[0])
            if real == uid:
                os.kill(int(entry.name), signal.SIGKILL)


class Sandbox:
    """One running sandbox, spoken to through its pipes (use as a context manager).

    Args:
        command: the program to run inside (default: the grader's executor).
        limits: resource limits.
        insecure: run without isolation where bubblewrap is unavailable (a warning is kept in
            :attr:`warnings`); without it, :class:`SandboxUnavailable` is raised.
    """

    def __init__(
        self, command: list[str] | None = None, limits: Limits | None = None, insecure=False
    ) -> None:
        self.limits = limits or Limits()
        # -P: the work folder (writable by the student) never goes on the executor's sys.path
        self.command = command or [sys.executable, "-P", "-m", "recsys_grader.executor"]
        self.insecure = insecure
        self.warnings: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.uid = 200_000 + secrets.randbelow(800_000) if os.geteuid() == 0 else None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=60)
        self._started = threading.Event()
        self.dead: str | None = None

    # --- life cycle ------------------------------------------------------------------------
    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, timeout: float = 120.0) -> None:
        """Start the sandbox and wait for its greeting (sent before any student code runs).

        Raises:
            SandboxUnavailable: no bubblewrap and not ``insecure``.
            SandboxError: it did not start (the message holds its own stderr).
        """
        self._tmp = tempfile.TemporaryDirectory(prefix="recsys-sandbox-")
        os.chmod(self._tmp.name, 0o700)
        available, why = sandbox_support()
        if available:
            passwd = Path(self._tmp.name) / "passwd"
            uid = self.uid if self.uid is not None else 65534
            passwd.write_text(f"student:x:{uid}:{uid}::{SANDBOX_HOME}:/bin/false\n")
            os.chmod(passwd, 0o644)
            argv, env, cwd = bwrap_command(self.command, self.limits, uid, passwd), {}, "/"
        elif self.insecure:
            self.warnings.append(
                f"NO SANDBOX ({why}): student code runs with the grader's rights (--insecure)"
            )
            argv = _limits_prefix(self.limits) + self.command
            env = {**sandbox_env(self.limits), "HOME": self._tmp.name, "TMPDIR": self._tmp.name}
            env = {k: v.replace(SANDBOX_TMP, self._tmp.name) for k, v in env.items()}
            cwd = self._tmp.name
            if shutil.which("prlimit") is None:
                argv = list(self.command)
        else:
            raise SandboxUnavailable(
                f"cannot sandbox student code here: {why}. Install bubblewrap "
                "(apt-get install bubblewrap), or pass --insecure to grade without isolation "
                "(trusted notebooks only)"
            )
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        try:
            hello = wire.recv(self.proc.stdout.fileno(), time.monotonic() + timeout, 1 << 16)
        except (wire.Closed, TimeoutError, wire.WireError, OSError) as exc:
            self.close()
            tail = "".join(self._stderr).strip()[-1500:]
            raise SandboxError(f"the sandbox did not start ({exc}): {tail}") from None
        if hello.get("op") != "hello":
            self.close()
            raise SandboxError(f"the sandbox did not greet the grader: {str(hello)[:200]}")
        self._started.set()  # from here on, stderr is the student's: never shown or parsed

    def _drain_stderr(self) -> None:
        stream = self.proc.stderr if self.proc else None
        if stream is None:
            return
        for raw in iter(lambda: stream.read(4096), b""):
            if not self._started.is_set():
                self._stderr.append(raw.decode("utf-8", "replace"))

    def close(self) -> None:
        """Stop the sandbox and everything in it; remove its private files."""
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(OSError, ValueError):
                if proc.stdin:
                    proc.stdin.close()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            for stream in (proc.stdout, proc.stderr):
                with contextlib.suppress(OSError, ValueError):
                    if stream:
                        stream.close()
        if self.uid is not None:
            _sweep_uid(self.uid)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self.dead = self.dead or "closed"

    # --- messages --------------------------------------------------------------------------
    def request(self, message: dict, timeout: float, max_frame: int = wire.MAX_FRAME) -> dict:
        """Send one message and wait for the sandbox's answer.

        Args:
            message: the request.
            timeout: seconds to wait for the answer.
            max_frame: largest answer accepted.

        Raises:
            SandboxGone: the sandbox is dead, answered garbage, or not in time (it is then
                killed: a sandbox that missed a deadline is never trusted to catch up).
        """
        self.send(message)
        return self.receive(timeout, max_frame)

    def send(self, message: dict) -> None:
        """Send one message (raises :class:`SandboxGone` when the sandbox is gone)."""
        if self.dead or self.proc is None:
            raise SandboxGone(self.dead or "the sandbox is not running")
        try:
            wire.send(self.proc.stdin.fileno(), message)
        except (BrokenPipeError, OSError):
            self._fail("the sandbox stopped (its kernel or executor exited or was killed)")

    def receive(self, timeout: float, max_frame: int = wire.MAX_FRAME) -> dict:
        """Wait for the sandbox's next message (see :meth:`request` for the errors)."""
        if self.dead or self.proc is None:
            raise SandboxGone(self.dead or "the sandbox is not running")
        try:
            return wire.recv(self.proc.stdout.fileno(), time.monotonic() + timeout, max_frame)
        except TimeoutError:
            self._fail(f"no answer within {timeout:.0f} s")
        except (wire.Closed, OSError):
            self._fail("the sandbox stopped (its kernel or executor exited or was killed)")
        except wire.WireError as exc:
            self._fail(f"the sandbox sent a malformed message ({exc})")
        raise AssertionError("unreachable")

    def _fail(self, reason: str) -> None:
        self.dead = reason
        self.close_quietly()
        raise SandboxGone(reason)

    def close_quietly(self) -> None:
        """Kill the sandbox, keeping :attr:`dead` as the reason."""
        reason = self.dead
        self.close()
        self.dead = reason
