"""Plain data across the sandbox boundary: a codec that can never run code on load.

The grader and the sandboxed student kernel exchange values (the arguments a test passes to a
student's function, what the function returned) as JSON in which every non-JSON value is a
tagged object: numpy arrays travel as ``.npy`` bytes read with ``allow_pickle=False``, pandas
frames as Arrow IPC streams (extension types refused), scipy sparse matrices as their arrays,
torch tensors as arrays plus a dtype. Decoding builds only built-in containers, numpy, pandas,
scipy and torch objects: a student's object with a lying ``__eq__`` arrives as plain data or not
at all. Sizes and nesting are bounded, so a hostile message cannot exhaust the grader.

Messages are framed on a pipe as an 8-byte big-endian length followed by UTF-8 JSON.

Example:
    >>> import numpy as np
    >>> back = decode(encode({"k": (1, np.arange(3, dtype=np.int32))}))
    >>> back["k"][1].dtype, type(back["k"][0])
    (dtype('int32'), <class 'int'>)
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import select
import struct
import time
from typing import Any

import numpy as np

#: Largest frame accepted from the sandbox (bytes of JSON).
MAX_FRAME = 256 * 1024 * 1024
#: Deepest nesting decoded.
MAX_DEPTH = 64
#: Most elements of one decoded array (float64: 1 GiB).
MAX_ELEMENTS = 128 * 1024 * 1024

_TAG = "$t"


class WireError(ValueError):
    """A value cannot be encoded, or a message is malformed or too large."""


class Unserializable:
    """Stands for a value the sandbox could not turn into plain data (a student's own class).

    Tests see it as an ordinary object that equals nothing but itself; its ``type_name`` says
    what the student returned.
    """

    def __init__(self, type_name: str) -> None:
        self.type_name = str(type_name)[:200]

    def __repr__(self) -> str:
        return f"<unserializable {self.type_name}>"


# --- encoding ------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _npy(array: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, np.require(array, requirements="C"), allow_pickle=False)
    return _b64(buf.getvalue())


def _float(x: float) -> Any:
    return x if math.isfinite(x) else {_TAG: "float", "v": repr(x)}


def _encode(value: Any, depth: int, refer: Any = None) -> Any:
    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str) and type(value) in (bool, str):
        return value
    t = type(value)
    if t is int:
        return value if abs(value) < 2**53 else {_TAG: "bigint", "v": str(value)}
    if t is float:
        return _float(value)
    if t is list:
        return [_encode(v, depth + 1, refer) for v in value]
    if t is tuple:
        return {_TAG: "tuple", "v": [_encode(v, depth + 1, refer) for v in value]}
    if t is dict:
        return {
            _TAG: "dict",
            "k": [_encode(k, depth + 1, refer) for k in value],
            "v": [_encode(v, depth + 1, refer) for v in value.values()],
        }
    if t in (set, frozenset):
        return {_TAG: t.__name__, "v": [_encode(v, depth + 1, refer) for v in value]}
    if t is complex:
        return {_TAG: "complex", "v": [_float(value.real), _float(value.imag)]}
    if t is bytes:
        return {_TAG: "bytes", "v": _b64(value)}
    if isinstance(value, np.ndarray):
        return _encode_array(np.asarray(value), depth, refer)
    if isinstance(value, np.generic):
        if value.dtype.kind in "OV":
            raise WireError(f"numpy scalar of dtype {value.dtype}")
        return {_TAG: "npscalar", "v": _npy(np.asarray(value))}
    module = t.__module__.split(".")[0]
    if module == "pandas":
        return _encode_pandas(value, depth)
    if module == "torch":
        return _encode_torch(value, depth)
    if module == "scipy":
        return _encode_sparse(value, depth)
    reference = refer(value) if refer is not None else None
    if reference is not None:
        return reference
    # subclasses of built-ins (a str subclass with a lying __eq__) travel as their base value
    for base in (bool, int, float, str, bytes, tuple, list, dict):
        if isinstance(value, base):
            return _encode(base(value), depth, refer)
    raise WireError(f"values of type {t.__module__}.{t.__qualname__} cannot be sent")


def _encode_array(array: np.ndarray, depth: int, refer: Any = None) -> Any:
    if array.dtype.kind == "O":
        return {
            _TAG: "objarray",
            "shape": list(array.shape),
            "v": [_encode(v, depth + 1, refer) for v in array.ravel().tolist()],
        }
    if array.dtype.kind == "V" or array.dtype.hasobject:
        raise WireError(f"arrays of dtype {array.dtype} cannot be sent")
    return {_TAG: "ndarray", "v": _npy(array)}


def _encode_pandas(value: Any, depth: int) -> Any:
    import pandas as pd
    import pyarrow as pa

    if isinstance(value, pd.Series):
        frame = value.to_frame(name="__series__")
        return {_TAG: "series", "name": _encode(value.name, depth + 1), "v": _arrow(frame, pa)}
    if isinstance(value, pd.DataFrame):
        return {_TAG: "dataframe", "v": _arrow(value, pa)}
    if isinstance(value, pd.Index):
        return {_TAG: "index", "v": _arrow(pd.DataFrame(index=value), pa)}
    if value is pd.NA:
        return {_TAG: "na"}
    if isinstance(value, pd.Timestamp):
        return {_TAG: "timestamp", "v": value.isoformat()}
    raise WireError(f"pandas values of type {type(value).__name__} cannot be sent")


def _arrow(frame: Any, pa: Any) -> str:
    try:
        table = pa.Table.from_pandas(frame, preserve_index=True)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        # columns of mixed Python objects: send their text, which tests can still compare
        raise WireError(f"this DataFrame cannot be sent as plain data ({exc})") from None
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return _b64(sink.getvalue())


def _encode_torch(value: Any, depth: int) -> Any:
    import torch

    if not isinstance(value, torch.Tensor):
        if isinstance(value, torch.dtype | torch.device):
            return {_TAG: "torchattr", "kind": type(value).__name__, "v": str(value)}
        raise WireError(f"torch values of type {type(value).__name__} cannot be sent")
    t = value.detach().cpu()
    dtype = str(t.dtype).removeprefix("torch.")
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    return {
        _TAG: "tensor",
        "dtype": dtype,
        "requires_grad": bool(value.requires_grad),
        "v": _npy(t.numpy()),
    }


def _encode_sparse(value: Any, depth: int) -> Any:
    import scipy.sparse as sp

    if not sp.issparse(value):
        raise WireError(f"scipy values of type {type(value).__name__} cannot be sent")
    fmt = value.format if value.format in ("csr", "csc", "coo") else "csr"
    m = value.asformat(fmt)
    kind = "matrix" if isinstance(value, sp.spmatrix) else "array"
    if fmt == "coo":
        parts = {"data": m.data, "row": m.row, "col": m.col}
    else:
        parts = {"data": m.data, "indices": m.indices, "indptr": m.indptr}
    return {
        _TAG: "sparse",
        "format": fmt,
        "kind": kind,
        "shape": list(m.shape),
        "v": {k: _npy(np.asarray(v)) for k, v in parts.items()},
    }


def encode(value: Any, refer: Any = None) -> Any:
    """A JSON-ready form of ``value`` (raises :class:`WireError` for what cannot travel).

    Args:
        value: the value.
        refer: for objects that are not plain data, a function returning a reference tag
            (``{"$t": "ref", "name": ...}`` for a notebook variable the sandbox also holds,
            ``{"$t": "construct", ...}`` for an object the sandbox builds itself) or None.
    """
    return _encode(value, 0, refer)


# --- decoding ------------------------------------------------------------------------------------


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise WireError("expected base64 text")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise WireError(f"bad base64 ({exc})") from None


def _load_npy(text: Any) -> np.ndarray:
    data = _unb64(text)
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise WireError(f"bad array ({exc})") from None
    if not isinstance(array, np.ndarray) or array.dtype.hasobject:
        raise WireError("bad array")
    if array.size > MAX_ELEMENTS:
        raise WireError(f"array of {array.size} elements is too large")
    return array


def _load_arrow(text: Any) -> Any:
    import pyarrow as pa

    try:
        reader = pa.ipc.open_stream(io.BytesIO(_unb64(text)))
        table = reader.read_all()
    except pa.ArrowException as exc:
        raise WireError(f"bad Arrow stream ({exc})") from None
    for field in table.schema:
        if isinstance(field.type, pa.ExtensionType):  # never rebuild foreign Python types
            raise WireError(f"Arrow extension type {field.type} refused")
    return table.to_pandas()


def _items(obj: dict, key: str) -> list:
    value = obj.get(key)
    if not isinstance(value, list):
        raise WireError(f"tag {obj.get(_TAG)!r} needs a list in {key!r}")
    return value


def _decode(obj: Any, depth: int, resolve: Any = None) -> Any:
    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    if type(obj) is list:
        return [_decode(v, depth + 1, resolve) for v in obj]
    if type(obj) is not dict or not isinstance(obj.get(_TAG), str):
        raise WireError("untagged object")
    tag = obj[_TAG]
    if tag == "float":
        text = obj.get("v")
        if text not in ("nan", "inf", "-inf"):
            raise WireError(f"bad float {text!r}")
        return float(text)
    if tag == "bigint":
        text = obj.get("v")
        if not isinstance(text, str) or len(text) > 4000:
            raise WireError("bad integer")
        return int(text)
    if tag == "tuple":
        return tuple(_decode(v, depth + 1, resolve) for v in _items(obj, "v"))
    if tag in ("set", "frozenset"):
        items = [_decode(v, depth + 1, resolve) for v in _items(obj, "v")]
        try:
            return set(items) if tag == "set" else frozenset(items)
        except TypeError:
            raise WireError("unhashable set element") from None
    if tag == "dict":
        keys = [_decode(k, depth + 1, resolve) for k in _items(obj, "k")]
        values = [_decode(v, depth + 1, resolve) for v in _items(obj, "v")]
        if len(keys) != len(values):
            raise WireError("dict with unequal keys and values")
        try:
            return dict(zip(keys, values))
        except TypeError:
            raise WireError("unhashable dict key") from None
    if tag == "complex":
        re_, im = _items(obj, "v")
        return complex(_decode(re_, depth + 1), _decode(im, depth + 1))
    if tag == "bytes":
        return _unb64(obj.get("v"))
    if tag == "ndarray":
        return _load_npy(obj.get("v"))
    if tag == "npscalar":
        array = _load_npy(obj.get("v"))
        if array.shape != ():
            raise WireError("bad numpy scalar")
        return array[()]
    if tag == "objarray":
        shape = tuple(int(s) for s in _items(obj, "shape"))
        values = [_decode(v, depth + 1, resolve) for v in _items(obj, "v")]
        if math.prod(shape) != len(values):
            raise WireError("object array of the wrong size")
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out.reshape(shape)
    if tag in ("dataframe", "series", "index"):
        frame = _load_arrow(obj.get("v"))
        if tag == "dataframe":
            return frame
        if tag == "index":
            return frame.index
        series = frame.iloc[:, 0]
        series.name = _decode(obj.get("name"), depth + 1)
        return series
    if tag == "na":
        import pandas as pd

        return pd.NA
    if tag == "timestamp":
        import pandas as pd

        return pd.Timestamp(str(obj.get("v")))
    if tag == "tensor":
        return _decode_tensor(obj)
    if tag == "torchattr":
        import torch

        text = str(obj.get("v"))
        if obj.get("kind") == "device":
            return torch.device(text)
        dtype = getattr(torch, text.removeprefix("torch."), None)
        if not isinstance(dtype, torch.dtype):
            raise WireError(f"bad torch dtype {text!r}")
        return dtype
    if tag == "sparse":
        return _decode_sparse(obj)
    if tag == "unserializable":
        return Unserializable(str(obj.get("type", "?")))
    if tag in ("ref", "construct") and resolve is not None:
        return resolve(obj, lambda v: _decode(v, depth + 1, resolve))
    raise WireError(f"unknown tag {tag!r}")


def _decode_tensor(obj: dict) -> Any:
    import torch

    array = _load_npy(obj.get("v"))
    dtype = getattr(torch, str(obj.get("dtype")), None)
    if not isinstance(dtype, torch.dtype):
        raise WireError(f"bad tensor dtype {obj.get('dtype')!r}")
    tensor = torch.from_numpy(array.copy()).to(dtype)
    if obj.get("requires_grad") and (tensor.is_floating_point() or tensor.is_complex()):
        tensor.requires_grad_(True)
    return tensor


def _decode_sparse(obj: dict) -> Any:
    import scipy.sparse as sp

    parts = obj.get("v")
    if not isinstance(parts, dict):
        raise WireError("bad sparse matrix")
    arrays = {k: _load_npy(v) for k, v in parts.items() if isinstance(k, str)}
    shape = tuple(int(s) for s in _items(obj, "shape"))
    fmt, kind = obj.get("format"), obj.get("kind")
    try:
        if fmt == "coo":
            args = (arrays["data"], (arrays["row"], arrays["col"]))
        elif fmt in ("csr", "csc"):
            args = (arrays["data"], arrays["indices"], arrays["indptr"])
        else:
            raise WireError(f"bad sparse format {fmt!r}")
        cls = getattr(sp, f"{fmt}_{'matrix' if kind == 'matrix' else 'array'}")
        return cls(args, shape=shape)
    except (KeyError, ValueError, TypeError) as exc:
        raise WireError(f"bad sparse matrix ({exc})") from None


def decode(obj: Any, resolve: Any = None) -> Any:
    """The value of a JSON-ready form (raises :class:`WireError` when it is malformed).

    Args:
        obj: the JSON-ready form.
        resolve: only in the sandbox: builds the objects of ``ref`` and ``construct`` tags.
            The grader never passes one, so nothing from the sandbox can name an object.
    """
    return _decode(obj, 0, resolve)


# --- framing -------------------------------------------------------------------------------------


def dumps(message: dict) -> bytes:
    """One frame: length header and JSON body."""
    body = json.dumps(message, separators=(",", ":"), allow_nan=True).encode("utf-8")
    return struct.pack(">Q", len(body)) + body


def send(fd: int, message: dict) -> None:
    """Write one frame to a file descriptor (blocking, complete)."""
    view = memoryview(dumps(message))
    while view:
        written = os.write(fd, view)
        view = view[written:]


class Closed(EOFError):
    """The other side closed the channel (or the deadline passed)."""


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, left = [], n
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError("no answer before the deadline")
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise Closed("the channel was closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv(fd: int, deadline: float | None = None, max_frame: int = MAX_FRAME) -> dict:
    """Read one frame (a JSON object) from a file descriptor.

    Args:
        fd: the descriptor.
        deadline: ``time.monotonic()`` value after which :class:`TimeoutError` is raised.
        max_frame: largest body accepted.

    Raises:
        Closed: end of file. TimeoutError: deadline passed. WireError: malformed or too large.
    """
    (size,) = struct.unpack(">Q", _read_exact(fd, 8, deadline))
    if size > max_frame:
        raise WireError(f"a message of {size} bytes exceeds the limit of {max_frame}")
    body = _read_exact(fd, size, deadline)
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError(f"malformed message ({exc})") from None
    if not isinstance(message, dict):
        raise WireError("a message must be a JSON object")
    return message


def tensor_leaves(value: Any, path: tuple = ()) -> list[tuple[list[int], Any]]:
    """Torch tensors inside nested tuples, lists and dicts, with their positions, in a fixed
    order (both sides of a call walk the same structure the same way)."""
    if type(value).__module__.split(".")[0] == "torch" and hasattr(value, "requires_grad"):
        return [(list(path), value)]
    if isinstance(value, tuple | list):
        items = list(enumerate(value))
    elif isinstance(value, dict):
        items = list(enumerate(value.values()))
    else:
        return []
    found = []
    for i, item in items:
        found += tensor_leaves(item, (*path, i))
    return found


def at_path(value: Any, path: list[int]) -> Any:
    """The element of nested tuples/lists/dicts at a path from :func:`tensor_leaves`."""
    for i in path:
        value = list(value.values())[i] if isinstance(value, dict) else value[i]
    return value
