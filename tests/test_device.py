"""Device and dtype policy."""

import pytest
import torch

from recsys_kit.device import describe, get_device, get_dtype


def test_explicit_cpu():
    assert get_device("cpu") == torch.device("cpu")
    assert get_dtype(torch.device("cpu")) == torch.float32
    assert "cpu" in describe(torch.device("cpu"))


def test_environment_variable_overrides(monkeypatch):
    monkeypatch.setenv("RECSYS_DEVICE", "cpu")
    assert get_device().type == "cpu"


def test_auto_prefers_accelerator():
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert get_device().type == "cuda"
    else:
        assert get_device().type in ("cpu", "mps")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_missing_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="device='cpu'"):
        get_device("cuda")


def test_dtype_policy():
    assert get_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    assert get_dtype(torch.device("cuda"), "fp32") == torch.float32
    with pytest.raises(ValueError, match="precision"):
        get_dtype(torch.device("cpu"), "int3")


# ---------------------------------------------------------------- CPU threads, shared machines
def test_busy_cores_and_thread_count_are_in_range(monkeypatch):
    from recsys_kit import device

    n = len(device._our_cpus())
    assert 0.0 <= device.busy_cores() <= n
    assert 1 <= device.compute_threads() <= torch.get_num_threads()
    assert device.compute_threads(limit=1) == 1
    # all cores busy elsewhere: still one thread; none busy: as many as allowed
    monkeypatch.setattr(device, "busy_cores", lambda: float(n))
    assert device.compute_threads(limit=64) == 1
    monkeypatch.setattr(device, "busy_cores", lambda: 0.0)
    assert device.compute_threads(limit=64) == n


def test_busy_cores_sees_a_competing_process():
    """A busy loop in a child process is other processes' CPU time, ours is not."""
    import os
    import subprocess
    import sys
    import time

    from recsys_kit import device

    if device._busy_seconds(device._our_cpus()) is None:
        pytest.skip("no /proc/stat here")
    idle = os.getloadavg()[0] < 0.3
    device.busy_cores()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:  # our own work: must not count
        pass
    mine = device.busy_cores()
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.6)
        device.busy_cores()  # the window now starts with the child running
        time.sleep(0.6)
        theirs = device.busy_cores()
    finally:
        child.kill()
        child.wait()
    # the child holds a core (or, on a loaded machine, others hold them all anyway)
    assert theirs >= 0.5, (mine, theirs)
    if idle:  # our own loop is not "other processes"
        assert mine < 0.5, mine


def test_run_tasks_keeps_order_uses_single_threaded_workers_and_raises():
    from recsys_kit.device import run_tasks, single_threaded

    saved = torch.get_num_threads()
    out = run_tasks([lambda i=i: (i, torch.get_num_threads()) for i in range(7)], threads=3)
    assert [i for i, _ in out] == list(range(7)) and {t for _, t in out} == {1}
    assert torch.get_num_threads() == saved  # the caller's setting is untouched
    assert run_tasks([], threads=2) == []
    # from a worker (nested): inline, no deadlock on a saturated pool
    assert run_tasks([lambda: run_tasks([lambda: 1, lambda: 2], 2)] * 4, threads=4) == [[1, 2]] * 4
    with pytest.raises(ZeroDivisionError):
        run_tasks([lambda: 1, lambda: 1 / 0], threads=2)
    with single_threaded():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == saved


def test_bf16_speedup_is_measured_once():
    from recsys_kit.device import bf16_matmul_speedup

    first = bf16_matmul_speedup("cpu")
    assert first > 0 and bf16_matmul_speedup("cpu") == first  # cached


def test_cpu_kind_environments():
    from recsys_kit.device import CPU_KINDS, cpu_kind_env

    for kind in CPU_KINDS:
        env = cpu_kind_env(kind)
        assert set(env) <= set(CPU_KINDS[kind]) and all(" " not in v for v in env.values())
    assert cpu_kind_env("avx2")["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    with pytest.raises(ValueError, match="unknown CPU kind 'arm'"):
        cpu_kind_env("arm")
