"""Dask distributed: autograding and batch encoding on a local cluster of two worker processes.

* ``recsys-course autograde --cluster local:2`` gives Module 0 submissions the same statuses,
  scores and gradebook entries as grading on one machine (the judges and their sandboxes run in
  the worker processes; the client alone writes the gradebook);
* a worker killed while it grades loses no grade: its chunk is re-run submission by submission,
  and a submission whose own task dies again is a grader error (``failed_to_run``), never a
  student's failure;
* a worker that sees other course files refuses before anything is recorded;
* ``encode_distributed`` returns the vectors of one ``TextEncoder.encode`` call, in order, with
  the model loaded once per worker.

The fast tests (no cluster) check the pieces: chunking, argument errors, the fingerprint check,
and that the kit imports without Dask.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_grading import LIMITS, A, copy_course
from test_merge import gradebook_state, results_state

from recsys_grader import results as res
from recsys_grader.autograde import autograde
from recsys_grader.cli import main
from recsys_grader.cluster import (
    CourseMismatch,
    chunks,
    differences,
    fingerprint,
    grade_chunk,
)
from recsys_grader.layout import CourseError
from recsys_grader.release import release
from recsys_kit.cluster import connect, parse
from recsys_kit.encoders import TextEncoder, encode_distributed
from recsys_kit.paths import REPO_ROOT

#: Module 0 samples graded in these tests (invalid_json never reaches a worker)
STUDENTS = ["edits_readonly", "invalid_json", "partial", "perfect", "raises"]
SOURCE = REPO_ROOT / "solutions" / A / f"{A}.ipynb"


# --- fast: the pieces --------------------------------------------------------------------------


def test_chunks_are_balanced_and_keep_every_item():
    for n_items in range(0, 12):
        items = list(range(n_items))
        for n in (1, 2, 3, 5):
            parts = chunks(items, n)
            assert sorted(x for p in parts for x in p) == items
            assert len(parts) == min(n, n_items)
            if parts:
                assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize("bad", ["local:0", "local", "local:two", "myhost"])
def test_bad_cluster_addresses_name_the_fix(bad):
    with pytest.raises(ValueError, match="local:N|scheduler address|N >= 1"):
        parse(bad)
    assert parse("local:3") == 3 and parse("tcp://10.0.0.5:8786") is None


def test_unreachable_scheduler_is_a_clear_course_error(tmp_path, capsys, monkeypatch):
    import recsys_kit.cluster as kc

    monkeypatch.setattr(kc, "CONNECT_TIMEOUT_S", 2)
    root = graded_copy(tmp_path, ["partial"])
    # a port nothing listens on (bound then closed)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["--root", str(root), "autograde", "--cluster", f"tcp://127.0.0.1:{port}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "could not reach the Dask scheduler" in err and "tcp://" in err
    assert not (root / "reports" / "results.json").exists()  # nothing recorded


def test_a_worker_with_other_course_files_refuses_its_chunk():
    expected = fingerprint([str(SOURCE)])
    assert differences(expected, fingerprint([str(SOURCE)])) == []
    wrong = {**expected, f"solution notebook {SOURCE}": "0" * 64}
    with pytest.raises(CourseMismatch, match="solution notebook .* checksum") as info:
        grade_chunk(str(SOURCE), wrong, [], dataclasses.asdict(LIMITS), 1, False)
    assert "same path" in str(info.value) and "docs/deploy.md" in str(info.value)
    other = {**expected, "python and libraries": "python 3.0.0"}
    (line,) = differences(other, expected)
    assert line.startswith("python and libraries: python 3.") and "(client: python 3.0.0)" in line


def test_kit_imports_and_explains_without_dask():
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "import recsys_kit.encoders, recsys_kit.cluster\n"
        "from recsys_kit.encoders import encode_distributed\n"
        "try:\n"
        "    encode_distributed(['a'], None, 'local:1')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert 'pip install -e ".[cluster]"' in out.stdout


def test_encode_distributed_checks_arguments_before_connecting():
    with pytest.raises(TypeError, match="item 1 is float"):
        encode_distributed(["a", float("nan")], None, "nowhere:1")
    with pytest.raises(ValueError, match="partition_size"):
        encode_distributed(["a"], None, "local:1", 0)
    with pytest.raises(ValueError, match="kind"):
        encode_distributed(["a"], None, "local:1", kind="document")


# --- slow: a local cluster of two worker processes ---------------------------------------------


def graded_copy(base: Path, students: list[str]) -> Path:
    """A released Module 0 course with these samples submitted; returns its course root."""
    root = copy_course(base)
    release(root=str(root))
    for student in students:
        shutil.copytree(root / "samples" / student, root / "submitted" / student)
    (root / "roster.csv").write_text("student_id\n")  # nobody else is "missing"
    return root


def state(root: Path) -> tuple[dict, dict]:
    """What grading recorded: results.json (without times) and the gradebook's grades."""
    book = {
        s: {k: v for k, v in entry.items() if k != "timestamp"}
        for s, entry in gradebook_state(root).items()
    }
    return results_state(root), book


@pytest.fixture(scope="module")
def one_machine(tmp_path_factory) -> Path:
    """The reference: the samples graded on one machine."""
    root = graded_copy(tmp_path_factory.mktemp("single"), STUDENTS)
    autograde(limits=LIMITS, workers=2, root=str(root), log=lambda _: None)
    return root


@pytest.fixture(scope="module")
def client():
    """Two worker processes; a task whose worker dies fails at once (no silent retry), so the
    grader's own recovery is what the tests see."""
    import dask

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        connect("local:2") as c,
    ):
        yield c


@pytest.mark.slow
@pytest.mark.notebooks
def test_cluster_grading_equals_one_machine(one_machine, tmp_path, capsys):
    root = graded_copy(tmp_path, STUDENTS)
    code = main(
        ["--root", str(root), "autograde", "--cluster", "local:2", "--workers", "1"]
        + [f"--student={s}" for s in STUDENTS]
        + ["--cell-timeout", str(LIMITS.cell_timeout), "--memory-mb", str(LIMITS.memory_mb)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "cluster: 2 worker(s)" in out and f"{A}: 4 submission(s) in 2 chunk(s)" in out
    assert state(root) == state(one_machine)
    statuses = {k[0]: v["status"] for k, v in results_state(root).items()}
    assert statuses == {
        "edits_readonly": res.TAMPERED,
        "invalid_json": res.FAILED,
        "partial": res.GRADED,
        "perfect": res.NEEDS_MANUAL,
        "raises": res.GRADED,
    }
    for student in STUDENTS[2:]:  # the executed notebooks came back from the workers
        assert (root / "autograded" / student / A / f"{A}.ipynb").is_file()


class WorkerKiller:
    """Kills a worker process (with its judge and sandboxes, as when a node dies) as soon as a
    judge on it is grading the wanted jobs."""

    def __init__(self, wanted: list[set[str]]) -> None:
        self.wanted, self.killed = list(wanted), []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> WorkerKiller:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        import psutil

        me = psutil.Process()
        while self.wanted and not self._stop.wait(0.1):
            for proc in me.children(recursive=True):
                try:
                    cmd = proc.cmdline()
                    if "recsys_grader.judge" not in cmd or proc.ppid() == me.pid:
                        continue
                    spec = json.loads(Path(cmd[-1]).read_text())
                    keys = {j["key"].split("/")[0] for j in spec["jobs"]}
                except (psutil.Error, OSError, ValueError, KeyError, IndexError):
                    continue
                if keys == self.wanted[0]:
                    worker = psutil.Process(proc.ppid())
                    for p in [*worker.children(recursive=True), worker]:
                        with contextlib.suppress(psutil.Error):
                            p.kill()
                    self.killed.append(keys)
                    self.wanted.pop(0)
                    break


@pytest.mark.slow
@pytest.mark.notebooks
def test_a_dead_worker_loses_no_grade(one_machine, client, tmp_path):
    students = ["partial", "perfect", "raises"]  # chunks: {partial, raises} and {perfect}
    root = graded_copy(tmp_path, students)
    lines: list[str] = []
    # first the two-submission chunk dies (it is split and re-run), then raises' own re-run
    with WorkerKiller([{"partial", "raises"}, {"raises"}]) as killer:
        results = autograde(
            students=students,
            limits=LIMITS,
            workers=1,
            root=str(root),
            log=lines.append,
            cluster=client,
        )
    assert killer.killed == [{"partial", "raises"}, {"raises"}], lines
    assert any(
        "a chunk failed on the cluster" in line and "re-running alone" in line for line in lines
    )
    got = {r.student: r for r in results}
    reference = results_state(one_machine)
    for student in ("partial", "perfect"):  # re-run: exactly what one machine recorded
        assert results_state(root)[(student, A)] == reference[(student, A)]
    lost = got["raises"]  # its task died twice: the grader's failure, not the student's
    assert lost.status == res.FAILED and lost.score is None
    assert lost.detail.startswith("grader error:") and "KilledWorker" in lost.detail
    assert "re-grade it" in lost.detail


@pytest.mark.slow
def test_a_worker_seeing_other_files_stops_the_run_before_anything_is_recorded(tmp_path):
    import distributed

    data = tmp_path / "datasets"
    shutil.copytree(REPO_ROOT / "datasets", data)
    (data / "minishop" / "extra.txt").write_text("a file the client does not have\n")
    root = graded_copy(tmp_path / "course", ["partial", "invalid_json"])
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            dashboard_address=None,
            host="127.0.0.1",
            env={"RECSYS_DATA_DIR": str(data)},
        ) as cluster,
        distributed.Client(cluster) as other,
        pytest.raises(CourseError, match=r"does not see the course .*datasets: checksum"),
    ):
        autograde(root=str(root), limits=LIMITS, cluster=other, log=lambda _: None)
    assert not (root / "reports").exists() and not (root / "autograded").exists()


@pytest.mark.slow
def test_encode_distributed_equals_one_process(client, tmp_path):
    from recsys_kit.datasets import load_catalog
    from recsys_kit.encoders.batch import models_loaded

    texts = load_catalog()["title_en"].tolist()[:160] + ["", "哑光红色口红", "USB cable"] * 2
    expected = TextEncoder(device="cpu", cache=False).encode(texts)
    got = encode_distributed(texts, None, client, 40, device="cpu")
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)
    loads = client.run(models_loaded)
    assert max(loads.values()) == 1, loads  # each worker loaded the model once for 5 parts
    out = tmp_path / "vectors.npy"
    written = encode_distributed(texts[::-1], "minilm", client, 64, device="cpu", out=out)
    np.testing.assert_allclose(np.load(out), expected[::-1], atol=1e-5)
    assert isinstance(written, np.memmap)
    assert max(client.run(models_loaded).values()) == 1  # "minilm" is the same model
    empty = tmp_path / "empty.npy"
    assert encode_distributed([], None, client, device="cpu", out=empty).shape == (0, 384)
    assert np.load(empty).shape == (0, 384)


@pytest.mark.slow
def test_batch_cli_writes_the_matrix(tmp_path, client):
    texts = ["red lipstick", "usb cable", "leather boots"]
    source = tmp_path / "titles.txt"
    source.write_text("\n".join(texts) + "\n")
    out = tmp_path / "v.npy"
    address = client.scheduler.address
    env = {**os.environ, "RECSYS_DEVICE": "cpu"}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "recsys_kit.encoders.batch", "--input", str(source)]
        + ["--output", str(out), "--cluster", address, "--partition-size", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{out}: 3 x 384 float32" in done.stdout, (done.stdout, time.monotonic() - start)
    expected = TextEncoder(device="cpu", cache=False).encode(texts)
    np.testing.assert_allclose(np.load(out), expected, atol=1e-5)
    bad = subprocess.run(
        [sys.executable, "-m", "recsys_kit.encoders.batch", "--input", str(tmp_path / "x.json")]
        + ["--output", str(out), "--cluster", address],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode == 2 and "give a .parquet, .csv or .txt file" in bad.stderr
