"""Execute a notebook in the sandbox and mark what happened to every code cell.

The parent side (:func:`execute`) writes the notebook to a work folder and starts
``python -m recsys_grader.executor IN OUT`` inside :mod:`recsys_grader.sandbox`. The
child runs the cells one by one with nbclient and records a status in each code cell's
``metadata.recsys_course.status``:

* ``ok``: ran without an error output;
* ``error``: raised (the error output is kept);
* ``timeout``: interrupted after the per-cell limit (an error output is added);
* ``died``: the kernel died while running it (memory limit, crash, ``os._exit``);
* ``not_run``: never ran because the kernel had died before (nbgrader#427 would count these
  as passed because they have no error output; here they get an explicit error output).

Outputs are capped per cell, so a notebook printing megabytes keeps at most ``output_cap`` bytes.

Example:
    >>> import nbformat, tempfile, pathlib
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    >>> run = execute(nb, Limits(cell_timeout=30), pathlib.Path(tempfile.mkdtemp()))
    >>> run.notebook.cells[0].metadata.recsys_course.status  # doctest: +SKIP
    'ok'
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from recsys_grader.sandbox import Limits, kill_group, popen_kwargs, wrap
from recsys_kit.paths import REPO_ROOT

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


def sandbox_env(workdir: Path) -> dict[str, str]:
    """Environment of the sandbox: grading flag, private Jupyter/IPython dirs, one BLAS thread.

    Args:
        workdir: the run's folder.

    Returns:
        The environment.
    """
    env = dict(os.environ)
    pythonpath = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(
        {
            "NBGRADER_EXECUTION": "autograde",
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(pythonpath)),
            "JUPYTER_RUNTIME_DIR": str(workdir / ".runtime"),
            "IPYTHONDIR": str(workdir / ".ipython"),  # no instructor startup files
            "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
    )
    env.pop("JPY_PARENT_PID", None)
    return env


def execute(nb: NotebookNode, limits: Limits, workdir: Path) -> Execution:
    """Run ``nb`` in the sandbox (blocking).

    Args:
        nb: the notebook to execute (already sanitised).
        limits: time, memory and output limits.
        workdir: an empty folder for this run (the kernel's cwd).

    Returns:
        The execution; ``notebook`` is None when the run failed as a whole.
    """
    start = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    src, dst, log = workdir / "input.ipynb", workdir / "output.ipynb", workdir / "executor.log"
    nbformat.write(nb, src)
    command = [
        sys.executable,
        "-m",
        "recsys_grader.executor",
        str(src),
        str(dst),
        f"--cell-timeout={limits.cell_timeout}",
        f"--output-cap={limits.output_cap}",
        f"--memory-mb={limits.memory_mb}",
    ]
    command, warnings = wrap(command, limits)
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=sandbox_env(workdir),
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            **popen_kwargs(limits),
        )
        try:
            code = proc.wait(timeout=limits.notebook_timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            kill_group(proc)  # also reaps stragglers when there is no PID namespace
            _kill_kernel(workdir)
            proc.wait()
    seconds = time.monotonic() - start
    if code is None:
        return Execution(
            None,
            f"the notebook exceeded {limits.notebook_timeout} s and was killed",
            warnings,
            seconds,
        )
    tail = log.read_bytes()[-1500:].decode("utf-8", "replace").strip()
    if code != 0 or not dst.is_file():
        return Execution(None, f"the executor exited with code {code}: {tail}", warnings, seconds)
    try:
        result = nbformat.read(dst, as_version=4)
    except Exception as exc:  # an unreadable result is a failed run, never a pass
        return Execution(None, f"unreadable executed notebook: {exc}", warnings, seconds)
    fatal = result.metadata.get(STATUS_KEY, {}).get("error")
    if fatal:
        return Execution(None, fatal, warnings, seconds)
    return Execution(result, None, warnings, seconds)


def _kill_kernel(workdir: Path) -> None:
    """Without a PID namespace the kernel (its own session) survives its parent: kill it."""
    pid_file = workdir / "kernel.pid"
    try:
        pid = int(pid_file.read_text())
        os.killpg(pid, 9)
    except (OSError, ValueError):
        pass


# --- child side: runs inside the sandbox ------------------------------------------------------


def _run(src: Path, dst: Path, cell_timeout: int, output_cap: int, memory_mb: int) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.read(src, as_version=4)

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

    client = Client(
        nb,
        timeout=cell_timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": "CellTimeoutError",
            "evalue": f"the cell ran longer than {cell_timeout} s and was interrupted; it scores 0",
            "traceback": [],
        },
        raise_on_iopub_timeout=False,
        iopub_timeout=5,
        record_timing=False,
        shutdown_kernel="immediate",
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
        resources={"metadata": {"path": str(src.parent)}},
        on_cell_executed=on_executed,
    )
    died: str | None = None

    def mark(cell: NotebookNode, status: str) -> None:
        cell.metadata[STATUS_KEY] = {"status": status}

    try:
        with client.setup_kernel():
            pid = getattr(client.km.provisioner, "pid", None)
            if pid:
                (src.parent / "kernel.pid").write_text(str(pid))
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                if died:
                    cell.outputs = [error_output("NotExecuted", died)]
                    mark(cell, NOT_RUN)
                    continue
                try:
                    client.execute_cell(cell, index)
                except DeadKernelError:
                    died = (
                        "the kernel died before this cell ran (an earlier cell crashed it or hit "
                        f"the {memory_mb} MiB memory limit); it scores 0"
                    )
                    cell.outputs.append(
                        error_output(
                            "DeadKernelError",
                            "the kernel died while running this cell (memory limit of "
                            f"{memory_mb} MiB, a crash or an exit); it scores 0",
                        )
                    )
                    mark(cell, DIED)
                    continue
                except CellTimeoutError as exc:
                    cell.outputs.append(error_output("CellTimeoutError", str(exc)[:500]))
                cap_outputs(cell, output_cap)
                enames = [o.get("ename") for o in cell.outputs if o.get("output_type") == "error"]
                if "CellTimeoutError" in enames:
                    mark(cell, TIMEOUT)
                elif enames:
                    mark(cell, ERROR)
                else:
                    mark(cell, OK)
    except DeadKernelError:
        pass  # the kernel died during shutdown: every cell already has its status
    except Exception as exc:  # the kernel could not start at all
        if not any(status_of(c) for c in nb.cells):
            nb.metadata[STATUS_KEY] = {
                "error": f"the kernel could not start ({type(exc).__name__}: {str(exc)[:300]})"
            }
        else:
            raise
    nbformat.write(nb, dst)


def main(argv: list[str] | None = None) -> int:
    """Child entry point (inside the sandbox)."""
    parser = argparse.ArgumentParser(prog="python -m recsys_grader.executor")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--cell-timeout", type=int, required=True)
    parser.add_argument("--output-cap", type=int, required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    args = parser.parse_args(argv)
    _run(args.input, args.output, args.cell_timeout, args.output_cap, args.memory_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
