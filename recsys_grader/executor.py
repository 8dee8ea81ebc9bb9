"""Execute a student's notebook inside the sandbox, then answer the grader's calls.

Two halves of one conversation over the sandbox's pipes (:mod:`recsys_grader.wire` frames):

* grader side, :func:`run_notebook`: sends the prepared notebook (it holds no hidden test) and
  waits for the executed one, under the notebook deadline;
* sandbox side, :func:`serve` (``python -m recsys_grader.executor``): greets the grader before
  any student code runs, executes the cells one by one with nbclient, records a status in each
  code cell's ``metadata.recsys_course.status``, sends the notebook back, then keeps the kernel
  alive and answers the grader's requests (call a function of the notebook on given arguments,
  or hand over a variable) through :mod:`recsys_grader.agent`, each under its own deadline.

Statuses: ``ok`` (no error output), ``error``, ``timeout`` (interrupted after the per-cell limit),
``died`` (the kernel died while running it), ``not_run`` (the kernel had died before). They are
shown to the student and the instructor; no grade depends on them: every point is decided by the
trusted judge (:mod:`recsys_grader.judge`) from plain data. Outputs are capped per cell.

Example:
    >>> import nbformat
    >>> from recsys_grader.sandbox import Limits, Sandbox
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 6 * 7")])
    >>> with Sandbox(limits=Limits(cell_timeout=30)) as box:  # doctest: +SKIP
    ...     run = run_notebook(box, nb, box.limits)
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from recsys_grader.sandbox import Limits, Sandbox, SandboxGone

STATUS_KEY = "recsys_course"
OK, ERROR, TIMEOUT, DIED, NOT_RUN = "ok", "error", "timeout", "died", "not_run"
_TRUNCATED = "\n[... output truncated by the grader: more than {cap} bytes in this cell ...]\n"


@dataclass
class Execution:
    """Result of one sandboxed run.

    Attributes:
        notebook: the executed notebook, or None when the run produced none.
        error: why the run failed as a whole (deadline, sandbox crash, kernel never started).
        warnings: missing isolation, printed by the caller.
        seconds: wall-clock duration.
    """

    notebook: NotebookNode | None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _output_size(out: NotebookNode) -> int:
    if out.get("output_type") == "stream":
        return len(out.get("text", ""))
    return len(json.dumps(out.get("data", {}), default=str)) + len(str(out.get("traceback", "")))


def cap_outputs(cell: NotebookNode, cap: int) -> bool:
    """Keep at most ``cap`` bytes of a cell's non-error outputs; errors are shortened, never
    dropped (they decide the grade). Idempotent: one truncation notice at most.

    Returns:
        Whether anything was cut.
    """
    notice = _TRUNCATED.format(cap=cap)
    outputs = cell.get("outputs", [])
    used, kept, cut = 0, [], False
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("text") == notice:
            cut = True
            continue
        if out.get("output_type") == "error":
            tb = out.get("traceback", [])
            if sum(len(line) for line in tb) > cap:
                out["traceback"] = [line[: cap // 4] for line in tb[:3]] + ["[... truncated ...]"]
                cut = True
            out["evalue"] = str(out.get("evalue", ""))[: cap // 4]
            kept.append(out)
            continue
        size = _output_size(out)
        if used + size <= cap:
            kept.append(out)
            used += size
            continue
        cut = True
        room = cap - used
        if out.get("output_type") == "stream" and room > 0:
            out["text"] = out["text"][:room]
            kept.append(out)
            used = cap
    if cut:
        kept.append(nbformat.v4.new_output("stream", name="stderr", text=notice))
        outputs[:] = kept  # in place: nbclient keeps appending to this list
    return cut


def error_output(ename: str, evalue: str) -> NotebookNode:
    """An nbformat error output (what nbgrader reads to give 0 points)."""
    return nbformat.v4.new_output(
        "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


def status_of(cell: NotebookNode) -> str | None:
    """The status recorded by the executor, or None for cells it did not handle."""
    return cell.get("metadata", {}).get(STATUS_KEY, {}).get("status")


def run_notebook(
    sandbox: Sandbox,
    nb: NotebookNode,
    limits: Limits,
    on_checkpoint: Callable[[str], None] | None = None,
) -> Execution:
    """Execute ``nb`` in a started sandbox (blocking); the kernel stays up for calls.

    The sandbox stops after each test cell (a *checkpoint*) until ``on_checkpoint(grade_id)``
    returns, so the judge tests each exercise on the notebook's state at that point, as a
    notebook read top to bottom would; a crash later in the notebook costs nothing earlier.

    Args:
        sandbox: a started :class:`~recsys_grader.sandbox.Sandbox`.
        nb: the notebook to execute (already prepared: no hidden test in it).
        limits: time, memory and output limits (``notebook_timeout`` counts the sandbox's
            own time, not the judge's).
        on_checkpoint: called with each test cell's grade id.

    Returns:
        The execution; ``notebook`` is None when the run failed as a whole (the notebook
        deadline passed, or the sandbox died or answered garbage).
    """
    start = time.monotonic()
    message = {
        "op": "run",
        "notebook": json.loads(nbformat.writes(nb)),
        "cell_timeout": limits.cell_timeout,
        "output_cap": limits.output_cap,
        "memory_mb": limits.memory_mb,
    }
    budget = float(limits.notebook_timeout)
    try:
        sandbox.send(message)
        while True:
            waited = time.monotonic()
            answer = sandbox.receive(timeout=max(budget, 0.001))
            budget -= time.monotonic() - waited
            if answer.get("op") == "checkpoint":
                if on_checkpoint is not None:
                    on_checkpoint(str(answer.get("grade_id")))
                sandbox.send({"op": "continue"})
                continue
            break
    except SandboxGone as exc:
        seconds = time.monotonic() - start
        if "no answer within" in str(exc):
            why = f"the notebook ran longer than {limits.notebook_timeout} s and was stopped"
        else:
            why = "the notebook's run ended abnormally (the sandbox stopped)"
        return Execution(None, why, list(sandbox.warnings), seconds)
    seconds = time.monotonic() - start
    try:
        if answer.get("op") != "executed":
            raise ValueError(answer.get("op"))
        executed = nbformat.reads(json.dumps(answer["notebook"]), as_version=4)
    except Exception:  # noqa: BLE001 (whatever the sandbox sent: a failed run, never a pass)
        return Execution(None, "the sandbox returned an unreadable notebook", [], seconds)
    if answer.get("kernel_failed"):
        return Execution(None, "the kernel could not start", list(sandbox.warnings), seconds)
    return Execution(executed, None, list(sandbox.warnings), seconds)


# --- child side: runs inside the sandbox ------------------------------------------------------


def _notebook_client(nb: NotebookNode, cell_timeout: int, output_cap: int, workdir: Path):
    from nbclient import NotebookClient

    used: dict[int, int] = {}

    class Client(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):  # noqa: ANN001, ANN201
            # cap while streaming, so a flood of prints never accumulates in memory
            out = super().output(outs, msg, display_id, cell_index)
            if out is not None and not display_id:
                used[cell_index] = used.get(cell_index, 0) + _output_size(out)
                if used[cell_index] > output_cap:
                    cap_outputs(self.nb.cells[cell_index], output_cap)
            return out

    def on_executed(cell: NotebookNode, cell_index: int, execute_reply: dict) -> None:
        content = execute_reply.get("content", {})
        if content.get("status") == "error" and content.get("ename") == "CellTimeoutError":
            cell.outputs.append(error_output("CellTimeoutError", content.get("evalue", "")))

    return Client(
        nb,
        timeout=cell_timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": "CellTimeoutError",
            "evalue": f"the cell ran longer than {cell_timeout} s and was interrupted",
            "traceback": [],
        },
        raise_on_iopub_timeout=False,
        iopub_timeout=5,
        record_timing=False,
        shutdown_kernel="immediate",
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
        resources={"metadata": {"path": str(workdir)}},
        on_cell_executed=on_executed,
    )


def _mark(cell: NotebookNode, status: str) -> None:
    cell.metadata[STATUS_KEY] = {"status": status}


def _is_test_cell(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution") and "grade_id" in meta


def _execute_all(
    client, nb: NotebookNode, output_cap: int, memory_mb: int, state: dict, after_test
) -> None:
    """Run every code cell once, recording a status in each; ``state["died"]`` says why the
    kernel died; ``after_test(index, cell)`` runs after each test cell (the checkpoint)."""

    for index, cell in enumerate(list(nb.cells)):
        if cell.cell_type != "code":
            continue
        _execute_one(client, index, cell, output_cap, memory_mb, state)
        if _is_test_cell(cell):
            after_test(index, cell)


def _execute_one(client, index, cell, output_cap, memory_mb, state) -> None:  # noqa: ANN001
    """Run one code cell, capping its output and recording its status."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    died = state.get("died")
    if died:
        cell.outputs = [error_output("NotExecuted", died)]
        _mark(cell, NOT_RUN)
        return
    try:
        client.execute_cell(cell, index)
    except DeadKernelError:
        state["died"] = (
            "the kernel died before this cell ran (an earlier cell crashed it or hit "
            f"the {memory_mb} MiB memory limit)"
        )
        cell.outputs.append(
            error_output(
                "DeadKernelError",
                f"the kernel died while running this cell (memory limit of {memory_mb} "
                "MiB, a crash or an exit)",
            )
        )
        _mark(cell, DIED)
        return
    except CellTimeoutError as exc:
        cell.outputs.append(error_output("CellTimeoutError", str(exc)[:500]))
    cap_outputs(cell, output_cap)
    enames = [o.get("ename") for o in cell.outputs if o.get("output_type") == "error"]
    _mark(cell, TIMEOUT if "CellTimeoutError" in enames else ERROR if enames else OK)


#: Imports the agent needs, done before the notebook runs.
_WARM_UP = (
    "__import__('recsys_grader.agent'); __import__('recsys_grader.testing'); "
    "__import__('recsys_grader.codecheck'); __import__('pyarrow.ipc')"
)
#: The code the executor runs in the kernel to answer one request of the grader.
_AGENT_CALL = '__import__("recsys_grader.agent", fromlist=["serve"]).serve({req!r}, {resp!r})'


def _answer(client, nb: NotebookNode, request: dict, calls: Path, died: str | None) -> dict:
    """Run one grader request in the kernel through the agent; the reply is plain data."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if died:
        return {"status": "died"}
    req, resp = calls / "request.json", calls / "response.json"
    for stale in (req, resp):
        stale.unlink(missing_ok=True)
    req.write_text(json.dumps(request, allow_nan=True), encoding="utf-8")
    cell = nbformat.v4.new_code_cell(_AGENT_CALL.format(req=str(req), resp=str(resp)))
    nb.cells.append(cell)
    client.timeout = max(1, int(request.get("timeout", 60)))
    try:
        client.execute_cell(cell, len(nb.cells) - 1, store_history=False)
    except DeadKernelError:
        return {"status": "died"}
    except CellTimeoutError:
        return {"status": "timeout"}
    finally:
        nb.cells.pop()
    enames = [o.get("ename") for o in cell.outputs if o.get("output_type") == "error"]
    if "CellTimeoutError" in enames:
        return {"status": "timeout"}
    try:
        answer = json.loads(resp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        errors = [
            f"{o.get('ename')}: {o.get('evalue')}"[:300]
            for o in cell.outputs
            if o.get("output_type") == "error"
        ]
        return {"status": "no_answer", "errors": errors}
    return {"status": "ok", "answer": answer}


def _no_dumping() -> None:
    """Make this process non-dumpable: the kernel (same uid) can then neither ptrace it nor
    open its descriptors through /proc, so the channel to the grader is the executor's alone."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4


def serve() -> int:
    """Child entry point (inside the sandbox): greet, run the notebook, answer calls."""
    chan_in, chan_out = os.dup(0), os.dup(1)  # new descriptors are not inherited by the kernel
    calls = Path(tempfile.mkdtemp(prefix="calls-"))
    log = os.open(str(calls.parent / "executor.log"), os.O_WRONLY | os.O_CREAT, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    _no_dumping()
    from recsys_grader import wire

    wire.send(chan_out, {"op": "hello"})
    run = wire.recv(chan_in)
    if run.get("op") != "run":
        return 2
    for folder in ("HOME", "MPLCONFIGDIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        if os.environ.get(folder):
            Path(os.environ[folder]).mkdir(parents=True, exist_ok=True)
    workdir = Path(os.environ.get("HOME", tempfile.gettempdir())) / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.reads(json.dumps(run["notebook"]), as_version=4)
    cell_timeout, output_cap = int(run["cell_timeout"]), int(run["output_cap"])
    client = _notebook_client(nb, cell_timeout, output_cap, workdir)
    from nbclient.exceptions import DeadKernelError

    state: dict = {"died": None}

    def answer_requests() -> None:
        """Answer the grader's calls until it says to go on (or is done)."""
        while True:
            request = wire.recv(chan_in)
            if request.get("op") not in ("call", "get"):
                return
            reply = _answer(client, nb, request, calls, state.get("died"))
            if reply["status"] == "died":
                state["died"] = state.get("died") or "the kernel died"
            wire.send(chan_out, reply)

    def checkpoint(index: int, cell: NotebookNode) -> None:
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        wire.send(chan_out, {"op": "checkpoint", "grade_id": grade_id, "index": index})
        answer_requests()

    try:
        with client.setup_kernel():
            # the agent's imports happen now, before any student code and outside any budget
            # (an import cut short by a timeout would leave half-initialised modules behind)
            warm = nbformat.v4.new_code_cell(_WARM_UP)
            nb.cells.append(warm)
            client.timeout = max(300, cell_timeout)
            with contextlib.suppress(Exception):
                client.execute_cell(warm, len(nb.cells) - 1, store_history=False)
            nb.cells.pop()
            client.timeout = cell_timeout
            _execute_all(client, nb, output_cap, int(run["memory_mb"]), state, checkpoint)
            wire.send(chan_out, {"op": "executed", "notebook": json.loads(nbformat.writes(nb))})
            answer_requests()
    except DeadKernelError:
        pass  # the kernel died during shutdown: every answer was already sent
    except (wire.Closed, BrokenPipeError):
        pass  # the grader is done
    except Exception as exc:  # noqa: BLE001 (the kernel could not start at all)
        if not any(status_of(c) for c in nb.cells):
            with contextlib.suppress(OSError):
                wire.send(
                    chan_out,
                    {
                        "op": "executed",
                        "notebook": run["notebook"],
                        "kernel_failed": f"{type(exc).__name__}: {exc}"[:300],
                    },
                )
    return 0


if __name__ == "__main__":
    sys.exit(serve())
