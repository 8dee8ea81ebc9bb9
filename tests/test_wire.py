"""The plain-data codec between sandbox and grader: faithful round trips, no code on load."""

from __future__ import annotations

import base64
import io
import json
import os

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys_grader import wire


def roundtrip(value):
    return wire.decode(json.loads(json.dumps(wire.encode(value), allow_nan=True)))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        2**70,
        -1.5,
        "美妆推荐",
        [1, "a", None],
        (1, (2, 3)),
        {"a": 1, 2: "b", (1, 2): [3]},
        {1, 2, 3},
        frozenset({"x"}),
        b"\x00\xff",
        3 + 4j,
    ],
)
def test_python_values_round_trip_with_their_types(value):
    back = roundtrip(value)
    assert back == value and type(back) is type(value)


def test_special_floats_round_trip():
    back = roundtrip([float("nan"), float("inf"), -float("inf")])
    assert np.isnan(back[0]) and back[1] == float("inf") and back[2] == -float("inf")


def test_numpy_arrays_and_scalars_keep_dtype_and_shape():
    for arr in (
        np.arange(6, dtype=np.int32).reshape(2, 3),
        np.linspace(0, 1, 5, dtype=np.float32),
        np.array([True, False]),
        np.array(["a", "bb"]),
        np.zeros((0, 4)),
    ):
        back = roundtrip(arr)
        assert back.dtype == arr.dtype and back.shape == arr.shape
        np.testing.assert_array_equal(back, arr)
    scalar = roundtrip(np.float32(1.5))
    assert type(scalar) is np.float32 and scalar == 1.5
    assert type(roundtrip(np.int64(3))) is np.int64
    obj = roundtrip(np.array(["a", 1, None], dtype=object))
    assert obj.dtype == object and obj.tolist() == ["a", 1, None]


def test_pandas_frames_and_series_round_trip():
    df = pd.DataFrame(
        {"a": [1, 2], "b": ["x", "美"], "c": [0.5, np.nan]},
        index=pd.Index(["q1", "q2"], name="kind"),
    )
    back = roundtrip(df)
    pd.testing.assert_frame_equal(back, df)
    s = pd.Series([1.0, 2.0], index=["a", "b"], name="score")
    pd.testing.assert_series_equal(roundtrip(s), s)
    pd.testing.assert_series_equal(
        roundtrip(pd.Series([], dtype=float)), pd.Series([], dtype=float)
    )


def test_torch_tensors_keep_dtype_and_grad_flag():
    t = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    back = roundtrip(t)
    assert back.dtype == torch.float64 and back.requires_grad and back.grad_fn is None
    half = roundtrip(torch.ones(2, dtype=torch.bfloat16))
    assert half.dtype == torch.bfloat16
    assert roundtrip(torch.float32) is torch.float32


def test_sparse_matrices_round_trip():
    m = sp.random(5, 7, density=0.3, format="csr", random_state=0, dtype=np.float32)
    back = roundtrip(m)
    assert isinstance(back, sp.csr_matrix) and back.dtype == np.float32
    assert (back != m).nnz == 0


def test_lying_objects_travel_as_plain_data_or_not_at_all():
    class Liar(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    back = roundtrip(Liar("no"))
    assert type(back) is str and back != "yes"

    class Anything:
        def __eq__(self, other):
            return True

    with pytest.raises(wire.WireError):
        wire.encode(Anything())

    class Sub(np.ndarray):
        def __eq__(self, other):
            return np.ones(1, dtype=bool)

    arr = np.arange(3).view(Sub)
    assert type(roundtrip(arr)) is np.ndarray


def test_pickled_arrays_are_refused():
    buf = io.BytesIO()
    np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
    payload = {"$t": "ndarray", "v": base64.b64encode(buf.getvalue()).decode()}
    with pytest.raises(wire.WireError):
        wire.decode(payload)


@pytest.mark.parametrize(
    "payload",
    [
        {"$t": "nope"},
        {"no": "tag"},
        {"$t": "dict", "k": [1], "v": []},
        {"$t": "float", "v": "1e999x"},
        {"$t": "bigint", "v": "9" * 5000},
        {"$t": "set", "v": [[1]]},
        {"$t": "ndarray", "v": "not base64!"},
        {"$t": "tensor", "dtype": "os.system", "v": ""},
    ],
)
def test_malformed_payloads_raise_wire_errors(payload):
    with pytest.raises(wire.WireError):
        wire.decode(payload)


def test_depth_and_frame_size_are_bounded():
    deep: list = []
    for _ in range(wire.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(wire.WireError):
        wire.decode(deep)
    r, w = os.pipe()
    os.write(w, (10**12).to_bytes(8, "big"))
    with pytest.raises(wire.WireError, match="exceeds"):
        wire.recv(r, max_frame=1000)
    os.close(r)
    os.close(w)


def test_frames_over_a_pipe_and_timeouts():
    r, w = os.pipe()
    wire.send(w, {"op": "x", "v": wire.encode(np.arange(3))})
    got = wire.recv(r)
    np.testing.assert_array_equal(wire.decode(got["v"]), np.arange(3))
    with pytest.raises(TimeoutError):
        wire.recv(r, deadline=0.0)
    os.close(w)
    with pytest.raises(wire.Closed):
        wire.recv(r)
    os.close(r)
