"""The student-kernel side of a remote call: run one request of the grader, answer plain data.

Runs inside the sandboxed kernel, after the student's notebook has executed. The executor writes
the grader's request to a file, executes ``serve(request, response)`` in the kernel and sends the
response file back. Nothing here is trusted by the grader: the response is only data, which the
grader decodes with :mod:`recsys_grader.wire` and judges itself. What this module does is make an
honest student's function see ordinary arguments and give the grader an honest account of what
it returned, raised, changed in its arguments, and (for torch losses) its gradients.

Example (inside the kernel)::

    __import__("recsys_grader.agent", fromlist=["serve"]).serve("/tmp/req.json", "/tmp/resp.json")
"""

from __future__ import annotations

import hashlib
import json
import traceback
from typing import Any

from recsys_grader import wire

#: Outputs larger than this many elements get no Jacobian (the grader then sees no gradient).
MAX_JACOBIAN = 1 << 21


def _fingerprint(value: Any) -> str | None:
    try:
        return hashlib.sha256(json.dumps(wire.encode(value), sort_keys=True).encode()).hexdigest()
    except (wire.WireError, TypeError, ValueError, RecursionError):
        return None


def _snapshot(value: Any) -> Any:
    """What the argument held before the call (a copy, or a digest when copying is awkward)."""
    import copy

    try:
        if hasattr(value, "clone") and type(value).__module__.split(".")[0] == "torch":
            return ("copy", value.detach().clone())
        return ("copy", copy.deepcopy(value))
    except Exception:  # noqa: BLE001 (an argument that cannot be copied is hashed instead)
        return ("digest", _fingerprint(value))


def _changed(value: Any, snapshot: tuple) -> bool:
    """Whether the call changed the argument in place."""
    kind, before = snapshot
    if kind == "digest":
        return _fingerprint(value) != before
    try:
        top = type(value).__module__.split(".")[0]
        if top == "pandas":
            return type(value) is not type(before) or not value.equals(before)
        if top == "numpy":
            import numpy as np

            return (
                value.shape != before.shape
                or value.dtype != before.dtype
                or not np.array_equal(value, before, equal_nan=value.dtype.kind in "fc")
            )
        if top == "torch":
            import torch

            return value.shape != before.shape or not torch.equal(value.detach(), before)
        if top == "scipy":
            return value.shape != before.shape or (value != before).nnz > 0
        return bool(value != before)
    except Exception:  # noqa: BLE001 (a comparison that fails: fall back to the digest)
        return _fingerprint(value) != _fingerprint(before)


def _mutable(value: Any) -> bool:
    name = type(value).__module__.split(".")[0]
    return isinstance(value, list | dict | set) or name in ("numpy", "pandas", "torch", "scipy")


def _exception(exc: BaseException) -> dict:
    mro = [f"{k.__module__}.{k.__qualname__}" for k in type(exc).__mro__]
    try:
        message = str(exc)
    except Exception:  # a student's __str__ that raises
        message = "<the exception's message could not be read>"
    frames = traceback.extract_tb(exc.__traceback__)
    where = [f"line {f.lineno} of {f.name}" for f in frames[-3:] if f.filename.startswith("<")]
    return {"type": type(exc).__qualname__, "mro": mro, "message": message[:2000], "where": where}


def _grads(result: Any, inputs: list) -> list:
    """For each tensor of ``result`` that needs a gradient: its gradients w.r.t. ``inputs``."""
    import torch

    out = []
    for path, tensor in wire.tensor_leaves(result):
        if not (isinstance(tensor, torch.Tensor) and tensor.requires_grad):
            continue
        n = tensor.numel()
        if n == 0 or n * sum(x.numel() for x in inputs) > MAX_JACOBIAN:
            out.append({"path": path, "jacobian": None})
            continue
        flat = tensor.reshape(-1)
        rows = []
        for i in range(n):
            grads = torch.autograd.grad(flat[i], inputs, retain_graph=True, allow_unused=True)
            rows.append(grads)
        per_input = []
        for j, x in enumerate(inputs):
            if all(r[j] is None for r in rows):
                per_input.append(None)
                continue
            stacked = torch.stack(
                [(r[j] if r[j] is not None else torch.zeros_like(x)).detach() for r in rows]
            )
            per_input.append(wire.encode(stacked.reshape(*tensor.shape, *x.shape)))
        out.append({"path": path, "jacobian": per_input})
    return out


def handle(request: dict, namespace: dict) -> dict:
    """Answer one request of the grader against the notebook's namespace.

    Args:
        request: ``{"op": "call", "name", "args", "kwargs", "forbidden", "grad"}`` or
            ``{"op": "get", "name"}``.
        namespace: the kernel's user namespace.

    Returns:
        ``{"value": ...}``, ``{"raised": ...}`` or ``{"missing": name}``, plus ``mutated`` and
        ``grads`` for calls.
    """
    name = request.get("name")
    if not isinstance(name, str) or name not in namespace:
        return {"missing": str(name)}
    target = namespace[name]
    if request.get("op") == "get":
        try:
            return {"value": wire.encode(target)}
        except (wire.WireError, RecursionError):
            return {"value": {"$t": "unserializable", "type": type(target).__qualname__}}
    if not callable(target):
        return {"not_callable": type(target).__qualname__}
    resolve = _resolver(namespace)
    try:
        args = wire.decode(request.get("args", []), resolve)
        kwargs = wire.decode(request.get("kwargs", {"$t": "dict", "k": [], "v": []}), resolve)
    except (wire.WireError, KeyError, ImportError, AttributeError, TypeError) as exc:
        return {"bad_arguments": f"{type(exc).__name__}: {exc}"[:500]}
    watched = [(i, a) for i, a in enumerate(args) if _mutable(a)]
    watched += [(k, v) for k, v in kwargs.items() if _mutable(v)]
    before = {key: _snapshot(v) for key, v in watched}
    grad_inputs = [t for _, t in wire.tensor_leaves((args, kwargs)) if _requires_grad(t)]
    from recsys_grader.testing import references_disabled, resolve_forbidden

    forbidden = resolve_forbidden(request.get("forbidden", []))
    try:
        with references_disabled(forbidden):
            result = target(*args, **kwargs)
    except KeyboardInterrupt:
        raise  # the grader's timeout: the executor reports it
    except BaseException as exc:  # noqa: BLE001 (everything the student raises is data)
        return {"raised": _exception(exc)}
    answer: dict = {}
    try:
        answer["value"] = wire.encode(result)
    except (wire.WireError, RecursionError):
        answer["value"] = {"$t": "unserializable", "type": type(result).__qualname__}
    mutated = {}
    for key, value in watched:
        if _changed(value, before[key]):
            try:
                mutated[str(key)] = {"int": isinstance(key, int), "v": wire.encode(value)}
            except (wire.WireError, RecursionError):
                mutated[str(key)] = {"int": isinstance(key, int), "v": None}
    if mutated:
        answer["mutated"] = mutated
    if request.get("grad") and grad_inputs:
        try:
            answer["grads"] = _grads(result, grad_inputs)
        except Exception as exc:  # noqa: BLE001 (a graph that cannot be differentiated)
            answer["grads_error"] = _exception(exc)
    return answer


def _resolver(namespace: dict) -> Any:
    """Builds what the grader refers to: a variable of the notebook (``ref``), or an object
    made by an installed module's factory (``construct``)."""
    import importlib

    def resolve(obj: dict, decode: Any) -> Any:
        if obj.get("$t") == "ref":
            name = str(obj.get("name"))
            if name not in namespace:
                raise KeyError(f"the notebook has no variable {name!r} (did you delete it?)")
            return namespace[name]
        module, _, qualname = str(obj.get("factory")).partition(":")
        factory: Any = importlib.import_module(module)
        for part in qualname.split("."):
            factory = getattr(factory, part)
        return factory(*decode(obj.get("args", [])), **decode(obj.get("kwargs", {})))

    return resolve


def _requires_grad(value: Any) -> bool:
    return bool(getattr(value, "requires_grad", False))


def serve(request_path: str, response_path: str) -> None:
    """Read a request file, answer it, write the response file (called by the executor)."""
    import gc
    import sys

    from IPython import get_ipython

    # the notebook's last error keeps its frames (and their memory: a cell that ran out of
    # memory holds it all) alive for %debug; release them before working
    held = getattr(sys, "last_traceback", None) is not None
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):
            setattr(sys, name, None)
    if held:
        gc.collect()
    with open(request_path, encoding="utf-8") as fh:
        request = json.load(fh)
    shell = get_ipython()
    namespace = shell.user_ns if shell is not None else {}
    answer = handle(request, namespace)
    with open(response_path, "w", encoding="utf-8") as fh:
        json.dump(answer, fh, allow_nan=True)
