"""Batch encoding on a Dask cluster: a catalogue of millions of products as one job.

:func:`encode_distributed` splits the texts into partitions, encodes each partition on a Dask
worker with :meth:`TextEncoder.encode` (the model is loaded once per worker process and kept
for the next partitions) and returns the float32 matrix in the order of the texts: the same
vectors as one ``TextEncoder.encode`` call on one machine, within float tolerance (batches are
padded differently). With ``out=`` the rows go straight into a ``.npy`` file as partitions
finish, so the client never holds more than one partition.

Workers encode without the on-disk embedding cache: it is an SQLite file in WAL mode, which
must not be shared over a network file system, and a batch job encodes each text once anyway.

Command line (the same function)::

    python -m recsys_kit.encoders.batch --input catalog.parquet --column title_en \\
        --output vectors.npy --cluster tcp://scheduler:8786 --partition-size 20000

Dask is the optional ``cluster`` extra; this module imports without it.

Example:
    >>> from recsys_kit.encoders import encode_distributed                 # doctest: +SKIP
    >>> encode_distributed(["red lipstick", "usb cable"], None, "local:2").shape  # doctest: +SKIP
    (2, 384)
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsys_kit.cluster import connect, require_dask
from recsys_kit.constants import DEFAULT_BATCH_SIZE, DEFAULT_PARTITION_SIZE
from recsys_kit.encoders.text import PROGRESS_THRESHOLD, TextEncoder, check_texts, resolve_model
from recsys_kit.progress import progress_bar
from recsys_kit.threads import check_threads, thread_limit

__all__ = ["encode_partition", "models_loaded", "encode_distributed", "read_texts", "main"]

# --- the worker's side: one encoder per worker process, loaded on its first partition ----------

_ENCODERS: dict[tuple, TextEncoder] = {}
_LOCK = threading.Lock()
_LOADS = [0]


def _worker_encoder(options: tuple) -> TextEncoder:
    with _LOCK:  # a worker with several threads still loads the model once
        encoder = _ENCODERS.get(options)
        if encoder is None:
            encoder = _ENCODERS[options] = TextEncoder(**dict(options), cache=False)
            _LOADS[0] += 1
        return encoder


def encode_partition(
    texts: list[str], options: tuple, batch_size: int, kind: str, num_threads: int | None
) -> np.ndarray:
    """Encode one partition on a worker (runs there; called through Dask).

    Args:
        texts: the partition's texts.
        options: ``TextEncoder`` keyword arguments as sorted ``(name, value)`` pairs.
        batch_size: texts per forward pass.
        kind: ``"passage"`` or ``"query"``.
        num_threads: torch/BLAS threads for this partition, or None (the worker's setting).

    Returns:
        float32 array ``(len(texts), dim)``.
    """
    encoder = _worker_encoder(options)
    with thread_limit(num_threads):
        return encoder.encode(texts, batch_size=batch_size, show_progress=False, kind=kind)


def models_loaded() -> int:
    """How many encoders this process has loaded (one per distinct model and settings)."""
    return _LOADS[0]


# --- the client's side --------------------------------------------------------------------------


def encode_distributed(
    texts: Sequence[str],
    model: str | None = None,
    cluster: Any = "local:2",
    partition_size: int = DEFAULT_PARTITION_SIZE,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    kind: str = "passage",
    backend: str = "auto",
    precision: str = "fp32",
    max_length: int = 256,
    device: str | None = None,
    num_threads: int | None = None,
    out: str | Path | None = None,
    show_progress: bool | None = None,
) -> np.ndarray:
    """Encode texts on the workers of a Dask cluster, in partitions, and return them in order.

    Args:
        texts: the strings to encode.
        model: as for :class:`TextEncoder` (None: the shipped all-MiniLM-L6-v2).
        cluster: ``"local:N"``, a scheduler address or a ``distributed.Client``
            (:func:`recsys_kit.cluster.connect`).
        partition_size: texts per task; each worker encodes partitions one after another.
        batch_size, kind, backend, precision, max_length: as for ``TextEncoder``/``encode``.
        device: the workers' device (None: each worker picks with ``get_device``).
        num_threads: torch/BLAS threads per worker while it encodes (Dask's worker processes
            start with ``OMP_NUM_THREADS=1``: give the cores of a worker here), or None.
        out: a ``.npy`` path: rows are written there as partitions finish and a memory-mapped
            array is returned (a catalogue larger than the client's memory).
        show_progress: a bar over partitions; None shows one above 512 texts.

    Returns:
        float32 array ``(len(texts), dim)``, row i the vector of ``texts[i]``.

    Raises:
        TypeError, ValueError: bad texts or arguments (before anything is sent).
        ImportError: Dask is not installed (names the ``cluster`` extra).
        RuntimeError: a partition failed on the cluster (naming its rows).
    """
    texts = check_texts(texts, batch_size, kind)
    if (
        isinstance(partition_size, bool)
        or not isinstance(partition_size, int)
        or partition_size < 1
    ):
        raise ValueError(f"partition_size must be a positive integer, got {partition_size!r}")
    check_threads(num_threads)
    distributed = require_dask()
    options = _encoder_options(model, backend, precision, max_length, device)
    # an empty input still asks one worker, for the model's dimension
    starts = list(range(0, max(len(texts), 1), partition_size))
    if show_progress is None:
        show_progress = len(texts) > PROGRESS_THRESHOLD
    with connect(cluster) as client:
        pending = {
            client.submit(
                encode_partition,
                texts[start : start + partition_size],
                options,
                batch_size,
                kind,
                num_threads,
                pure=False,
            ): start
            for start in starts
        }
        result = _gather(distributed, pending, len(texts), partition_size, out, show_progress)
    if isinstance(result, np.memmap):
        result.flush()
    return result


def _encoder_options(
    model: str | None, backend: str, precision: str, max_length: int, device: str | None
) -> tuple:
    """``TextEncoder`` keyword arguments as sorted ``(name, value)`` pairs: the workers' cache
    key for their encoder."""
    return tuple(
        sorted(
            {
                "model": resolve_model(model),
                "backend": backend,
                "precision": precision,
                "max_length": max_length,
                "device": device,
            }.items()
        )
    )


def _gather(
    distributed: Any,
    pending: dict[Any, int],
    n: int,
    partition_size: int,
    out: str | Path | None,
    show_progress: bool,
) -> np.ndarray | None:
    """Each partition's vectors written at its rows as it finishes (``pending``: future ->
    first row); a failed partition cancels the others and raises naming its rows."""
    result: np.ndarray | None = None
    bar = progress_bar(len(pending), "encoding partitions", not show_progress, unit="part")
    try:
        for future in distributed.as_completed(list(pending)):
            start = pending.pop(future)
            try:
                vectors = future.result()
            except Exception as exc:
                for other in pending:
                    other.cancel()
                rows = f"{start}..{min(start + partition_size, n) - 1}"
                raise RuntimeError(
                    f"the partition of rows {rows} failed on the cluster "
                    f"({type(exc).__name__}: {exc}); partitions are independent: re-run"
                ) from exc
            future.release()  # the cluster keeps no finished partition
            if result is None:
                result = _allocate(n, vectors.shape[1], out)
            result[start : start + len(vectors)] = vectors
            bar.update()
    finally:
        bar.close()
    return result


def _allocate(n: int, dim: int, out: str | Path | None) -> np.ndarray:
    if out is None or n == 0:  # (an empty file cannot be memory-mapped)
        empty = np.empty((n, dim), dtype=np.float32)
        if out is not None:
            np.save(Path(out), empty)
        return empty
    return np.lib.format.open_memmap(Path(out), mode="w+", dtype=np.float32, shape=(n, dim))


def read_texts(path: Path, column: str | None) -> list[str]:
    """Texts of a ``.parquet``/``.csv`` column, or of a ``.txt`` file (one per line).

    Raises:
        ValueError: an unknown file type or column (naming the columns there are).
    """
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return path.read_text(encoding="utf-8").splitlines()
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"{path}: give a .parquet, .csv or .txt file (one text per line)")
    import pandas as pd

    frame = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    if column not in frame.columns:
        raise ValueError(f"{path} has no column {column!r}; its columns: {list(frame.columns)}")
    return frame[column].tolist()


def main(argv: list[str] | None = None) -> int:
    """``python -m recsys_kit.encoders.batch``: encode a file's texts into a ``.npy`` file."""
    parser = argparse.ArgumentParser(
        prog="python -m recsys_kit.encoders.batch",
        description="Encode a catalogue's texts on a Dask cluster into a float32 .npy file.",
    )
    parser.add_argument("--input", type=Path, required=True, help=".parquet, .csv or .txt")
    parser.add_argument("--column", default=None, help="text column (.parquet/.csv)")
    parser.add_argument("--output", type=Path, required=True, help="the .npy file to write")
    parser.add_argument("--cluster", default="local:2", help="local:N or tcp://scheduler:8786")
    parser.add_argument("--model", default=None, help="model name or alias (default MiniLM)")
    parser.add_argument("--kind", default="passage", choices=("passage", "query"))
    parser.add_argument("--partition-size", type=int, default=DEFAULT_PARTITION_SIZE)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--num-threads", type=int, default=None, help="threads per worker")
    args = parser.parse_args(argv)
    # run as __main__, this file's functions would travel to the workers by value (with its
    # lock): call the importable module's, which travel by name
    from recsys_kit.encoders import batch

    try:
        texts = batch.read_texts(args.input, args.column)
        vectors = batch.encode_distributed(
            texts,
            args.model,
            args.cluster,
            args.partition_size,
            batch_size=args.batch_size,
            kind=args.kind,
            num_threads=args.num_threads,
            out=args.output,
        )
    except (ValueError, TypeError, ImportError, ConnectionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.output}: {vectors.shape[0]} x {vectors.shape[1]} float32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
