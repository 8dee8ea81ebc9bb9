"""The delegation checks that hidden tests use to catch answers calling the kit's reference."""

import importlib

import pytest
import torch

import recsys_kit.encoders
from recsys_grader.testing import DelegationError, assert_does_not_delegate
from recsys_kit.encoders import pooling

H = torch.ones(1, 2, 3)
M = torch.tensor([[1, 0]])
REFS = [pooling.mean_pool]


def honest(h, m):
    mask = m.unsqueeze(-1).float()
    return (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def via_module(h, m):
    return pooling.mean_pool(h, m)


def via_package(h, m):
    return recsys_kit.encoders.mean_pool(h, m)


mean_pool_ref = pooling.mean_pool


def via_alias(h, m):
    return mean_pool_ref(h, m)


def via_import(h, m):
    mod = importlib.import_module("recsys_kit.encoders.pooling")
    return mod.mean_pool(h, m)


def via_nested(h, m):
    def inner():
        return mean_pool_ref(h, m)

    return inner()


def test_honest_answer_passes_and_returns_result():
    out = assert_does_not_delegate(honest, REFS, H, M)
    torch.testing.assert_close(out, torch.ones(1, 3))


@pytest.mark.parametrize("cheat", [via_module, via_package, via_alias, via_nested])
def test_static_check_catches_delegation(cheat):
    with pytest.raises(DelegationError):
        assert_does_not_delegate(cheat, REFS, H, M)


def test_dynamic_check_catches_runtime_lookup():
    with pytest.raises(DelegationError, match="implement it yourself"):
        assert_does_not_delegate(via_import, REFS, H, M)
    # the reference is restored afterwards
    torch.testing.assert_close(pooling.mean_pool(H, M), torch.ones(1, 3))
    assert recsys_kit.encoders.mean_pool is pooling.mean_pool


def test_the_reference_itself_is_rejected():
    with pytest.raises(DelegationError, match="kit's own function"):
        assert_does_not_delegate(pooling.mean_pool, REFS, H, M)
    with pytest.raises(DelegationError, match="def"):
        assert_does_not_delegate(lambda_like := len, REFS)  # noqa: F841


def test_constants_and_unrelated_kit_modules_are_allowed():
    from recsys_kit import constants as C

    def uses_constants(h, m):
        assert C.COL_USER_ID == "user_id"
        return honest(h, m)

    out = assert_does_not_delegate(uses_constants, REFS, H, M)
    torch.testing.assert_close(out, torch.ones(1, 3))
