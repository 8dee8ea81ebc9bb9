"""On-disk caches for embeddings (and other per-text results such as LLM generations).

Encoding the catalog is the slowest step of most notebooks, and a grader re-runs every notebook
for every student: each vector is therefore stored once, keyed by a fingerprint of the model
and the exact input. SQLite gives atomic writes, safe concurrent readers and one file per model.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> c = EmbeddingCache(pathlib.Path(tempfile.mkdtemp()) / "e.sqlite", dim=2)
    >>> c.put(["a"], np.array([[1.0, 0.0]], dtype=np.float32))
    >>> c.get(["a", "b"])[1]
    [1]
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["text_key", "init_sqlite", "SqliteStore", "EmbeddingCache"]

_SCHEMA = "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)"
_CHUNK = 500  # SQLite limits the number of bound parameters per statement
_OPEN_ATTEMPTS = 20


def text_key(*parts: str) -> str:
    """A stable hex key for a tuple of strings (model fingerprint, kind, text)."""
    h = hashlib.sha1()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def init_sqlite(path: Path, schema: str, what: str) -> None:
    """Create (or check) a cache file: WAL journal and the table, with clear errors.

    Args:
        path: the SQLite file.
        schema: the ``CREATE TABLE IF NOT EXISTS`` statement.
        what: how to name the file in error messages (``"embedding cache"``).

    Raises:
        RuntimeError: the file is damaged or foreign (never overwritten), or stays locked.
    """
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=60)) as con, con:
                # WAL: readers never block the writer (set once; it persists in the file)
                con.execute("PRAGMA journal_mode=WAL")
                con.execute(schema)
            return
        except sqlite3.OperationalError as exc:
            # Another process (a parallel grader, a second notebook) is creating the same
            # file: "database is locked" is transient, not damage. Wait and try again.
            if "locked" not in str(exc) or attempt == _OPEN_ATTEMPTS - 1:
                raise RuntimeError(
                    f"{what} {path} could not be opened ({exc}); another process may hold "
                    "it. Retry, or pass cache=False."
                ) from exc
            time.sleep(0.2 * (attempt + 1))
        except sqlite3.DatabaseError as exc:  # a truncated or foreign file: never overwrite it
            raise RuntimeError(
                f"{what} {path} is unreadable ({exc}). Delete that file to rebuild the cache, "
                "or pass cache=False."
            ) from exc


class SqliteStore:
    """A cache file that is written where its folder is writable and only read elsewhere.

    A read-only cache is normal, not an error: the grader's sandbox mounts the course's cache
    read-only (no submission can poison what the next one reads), and a shared JupyterHub cache
    may be too. Lookups then read the file as it is and stores are skipped.

    Args:
        path: the SQLite file (created with its folder on first use, when writable).
        schema: the ``CREATE TABLE IF NOT EXISTS`` statement.
        what: how to name the file in error messages.
    """

    def __init__(self, path: str | Path, schema: str, what: str) -> None:
        self.path = Path(path)
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.readonly = not os.access(self.path.parent, os.W_OK) or (
            self.path.exists() and not os.access(self.path, os.W_OK)
        )
        if not self.readonly:
            init_sqlite(self.path, schema, what)

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            if not self.path.is_file():
                return sqlite3.connect(":memory:")  # nothing cached: every lookup misses
            try:  # sees rows still in the write-ahead log, when its index file can be read
                con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
                con.execute("SELECT 1 FROM sqlite_master").fetchone()
                return con
            except sqlite3.OperationalError:  # a read-only folder without the WAL's index
                return sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True)
        return sqlite3.connect(self.path, timeout=60)

    def _rows(self, table: str, value: str, keys: Sequence[str]) -> dict[str, Any]:
        """``{key: stored value}`` for the keys present (chunked: SQLite bounds parameters)."""
        found: dict[str, Any] = {}
        unique = list(dict.fromkeys(keys))
        with contextlib.closing(self._connect()) as con:
            if not con.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
            ).fetchone():
                return found
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = con.execute(
                    f"SELECT key, {value} FROM {table} WHERE key IN ({marks})", chunk
                )
                found.update(rows.fetchall())
        return found

    def _store(self, table: str, value: str, rows: list[tuple[str, Any]]) -> None:
        if self.readonly:
            return
        with contextlib.closing(self._connect()) as con, con:
            con.executemany(f"INSERT OR REPLACE INTO {table} (key, {value}) VALUES (?, ?)", rows)

    def _count(self, table: str) -> int:
        with contextlib.closing(self._connect()) as con:
            try:
                return int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            except sqlite3.OperationalError:  # a read-only cache that was never created
                return 0


class EmbeddingCache(SqliteStore):
    """A persistent map from string keys to float32 vectors of one dimension.

    Args:
        path: the SQLite file (created with its folder on first use).
        dim: the vector dimension; a stored vector of another size is an error.
    """

    def __init__(self, path: str | Path, dim: int) -> None:
        super().__init__(path, _SCHEMA, "embedding cache")
        self.dim = int(dim)

    def get(self, keys: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Look keys up.

        Args:
            keys: the keys, in the caller's order.

        Returns:
            ``(vectors, missing)``: a ``(len(keys), dim)`` float32 array (rows of missing keys
            are zero) and the positions of the keys not in the cache.
        """
        out = np.zeros((len(keys), self.dim), dtype=np.float32)
        found = self._rows("vectors", "vec", keys)
        missing = []
        for i, key in enumerate(keys):
            blob = found.get(key)
            if blob is None:
                missing.append(i)
                continue
            vec = np.frombuffer(blob, dtype=np.float32)
            if vec.size != self.dim:
                raise RuntimeError(
                    f"embedding cache {self.path} holds a {vec.size}-d vector where {self.dim}-d "
                    "was expected: the file belongs to another model. Delete it to rebuild."
                )
            out[i] = vec
        return out, missing

    def put(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors (float32, shape ``(len(keys), dim)``) under keys, in one transaction."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(
                f"expected vectors of shape ({len(keys)}, {self.dim}), got {vectors.shape}"
            )
        self._store("vectors", "vec", [(k, v.tobytes()) for k, v in zip(keys, vectors)])

    def __len__(self) -> int:
        return self._count("vectors")
