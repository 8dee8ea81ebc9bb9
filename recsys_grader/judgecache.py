"""The judge's reference namespace, kept between gradings of the same assignment.

The judge builds its reference namespace by running the solution notebook (without its tests):
for a heavy module that costs as much as a student's own run, and a lone submission (a late
student, ``autograde --student``) paid it every time. After a build, the namespace is saved
here; the next judge of the same assignment loads it instead of running the notebook again.

What makes a saved namespace valid (its key): the solution notebook's content, the source of
``recsys_kit`` and ``recsys_grader``, the datasets' files (names, sizes, modification times),
every installed distribution's version, the Python version and the ``RECSYS_*`` environment
variables. Any change gives a new key, and the namespace is built again.

What is saved: every name the solution's cells defined (IPython's own names aside), pickled by
``cloudpickle`` in one piece (so objects shared between names stay shared; functions and classes
defined in the notebook are saved by value), and the global random states of ``random``, numpy
and torch as the build left them. A value that will not pickle (a running server, a closed
file, a lock...) is left out when neither the hidden tests nor the notebook's functions name it
and it is no function, class or module (the delegation check resolves those); otherwise the
namespace is not saved and the judge builds it every time, as before. The kit's model wrappers
pickle by reloading their fixed weights (the 4-bit E5 engine, the ONNX reranker).

Where: ``<course root>/.judge-cache/`` (one file per assignment), a private folder of the
instructor's that no sandbox sees (``autograde`` refuses course roots a sandbox would show). The
file is written by the trusted judge only, atomically, readable by its owner only; it is loaded
with pickle, which is safe only because no student can write there.

Example:
    >>> from recsys_grader.judgecache import source_key
    >>> len(source_key("{}"))
    64
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import os
import pickle
import random
import sys
import tempfile
import types
from collections.abc import Collection
from pathlib import Path
from typing import Any

#: Largest namespace worth saving (a bigger one is built each time).
MAX_BYTES = 512 * 1024 * 1024
_FORMAT = 1
_CODE = (types.ModuleType, types.FunctionType, types.MethodType, type)


def _tree_digest(h: Any, folder: Path, pattern: str, contents: bool) -> None:
    for path in sorted(folder.rglob(pattern)):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        h.update(str(path.relative_to(folder)).encode())
        if contents:
            h.update(path.read_bytes())
        else:
            st = path.stat()
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())


def source_key(source_text: str) -> str:
    """The key of a reference namespace built from this solution notebook here and now.

    Args:
        source_text: the solution notebook, as its file's text.

    Returns:
        A sha256 hex digest (see the module's docstring for what goes in).
    """
    import recsys_kit
    from recsys_kit import paths

    h = hashlib.sha256()
    h.update(f"format {_FORMAT}\n{sys.version}\n".encode())
    h.update(source_text.encode("utf-8"))
    for package in (Path(recsys_kit.__file__).parent, Path(__file__).parent):
        _tree_digest(h, package, "*.py", contents=True)
    data = paths.data_dir()
    if data.is_dir():
        _tree_digest(h, data, "*", contents=False)
    versions = sorted(
        f"{d.metadata['Name']}=={d.version}".lower()
        for d in importlib.metadata.distributions()
        if d.metadata["Name"]
    )
    h.update("\n".join(versions).encode())
    env = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("RECSYS_"))
    h.update("\n".join(env).encode())
    return h.hexdigest()


def _random_states() -> dict:
    import numpy as np

    states = {"random": random.getstate(), "numpy": np.random.get_state()}
    if "torch" in sys.modules:
        states["torch"] = sys.modules["torch"].get_rng_state()
    return states


def _restore_random_states(states: dict) -> None:
    import numpy as np

    random.setstate(states["random"])
    np.random.set_state(states["numpy"])
    if "torch" in states:
        import torch

        torch.set_rng_state(states["torch"])


def _path(folder: Path, assignment: str, key: str) -> Path:
    return folder / f"{assignment}-{key[:24]}.pkl"


def _pickled(key: str, names: dict[str, Any]) -> io.BytesIO:
    import cloudpickle

    buffer = io.BytesIO()
    cloudpickle.dump(
        {"key": key, "names": names, "random": _random_states()},
        buffer,
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    return buffer


def _unpicklable(names: dict[str, Any]) -> dict[str, str]:
    """The names whose values will not pickle on their own, and why."""
    import cloudpickle

    bad = {}
    for name, value in names.items():
        try:
            cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 (whatever the value raises)
            bad[name] = f"{type(exc).__name__}: {str(exc)[:120]}"
    return bad


def save(
    folder: Path,
    assignment: str,
    key: str,
    names: dict[str, Any],
    needed: Collection[str] | None = None,
) -> str | None:
    """Save a built namespace; older files of the same assignment are removed.

    Args:
        folder: the cache folder (created, owner-only).
        assignment: the assignment's name (one file per assignment).
        key: :func:`source_key` of its solution notebook.
        names: the names the solution's cells defined, and their values.
        needed: the names the tests may read (directly or through the notebook's functions);
            an unpicklable value of any other name (a running server, a closed file) is left
            out instead of spoiling the whole save. None: every name is needed.

    Returns:
        None when saved whole, "without a, b" when unneeded names were left out, else why
        not (nothing is written then).
    """
    dropped: list[str] = []
    try:
        buffer = _pickled(key, names)
    except Exception as exc:  # noqa: BLE001 (any value that will not pickle)
        bad = _unpicklable(names) if needed is not None else {}
        # code objects stay whatever the tests read: the delegation check resolves names of
        # the reference namespace to functions, classes and modules, and must see them all
        blocking = {n: why for n, why in bad.items() if n in needed or isinstance(names[n], _CODE)}
        if not bad or blocking:
            name, why = next(iter(blocking.items()), ("", f"{type(exc).__name__}: {exc}"))
            where = f" (name {name!r}, which the tests or the checks use)" if name else ""
            return f"the namespace cannot be saved{where}: {why[:200]}"
        dropped = sorted(bad)
        try:
            buffer = _pickled(key, {n: v for n, v in names.items() if n not in bad})
        except Exception as exc2:  # noqa: BLE001 (values that pickle alone but not together)
            return f"the namespace cannot be saved ({type(exc2).__name__}: {str(exc2)[:200]})"
    if buffer.tell() > MAX_BYTES:
        return f"the namespace is too large to keep ({buffer.tell() >> 20} MiB)"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    target = _path(folder, assignment, key)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pkl")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(buffer.getbuffer())
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return f"the namespace could not be written ({exc})"
    for old in folder.glob(f"{assignment}-*.pkl"):
        if old != target:
            with contextlib.suppress(OSError):
                old.unlink()
    return f"without {', '.join(dropped)}" if dropped else None


def load(folder: Path, assignment: str, key: str) -> dict[str, Any] | None:
    """The saved namespace of this key (global random states restored), or None.

    A missing, unreadable or stale file gives None: the caller builds the namespace again.
    """
    path = _path(folder, assignment, key)
    try:
        with open(path, "rb") as fh:
            saved = pickle.load(fh)  # noqa: S301 (written by the trusted judge; see module doc)
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 (corrupt or from other library versions: rebuild)
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    if not isinstance(saved, dict) or saved.get("key") != key:
        return None
    _restore_random_states(saved["random"])
    return saved["names"]
