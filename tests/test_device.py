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
