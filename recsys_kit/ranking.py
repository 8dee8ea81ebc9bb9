"""Exact top-k retrieval over embeddings: the dense-retrieval workhorse of the course.

:func:`topk` scores every query against every item and keeps the ``k`` best, block by block
over the items so memory stays bounded whatever the catalogue size. :class:`Index` wraps it with
ids and an optional text encoder. :func:`naive_topk_loop` is the slow Python loop from the
training material, kept only for the teaching comparison.

Conventions (tested in ``tests/test_ranking.py``):

* **Larger score = better, for every metric.** ``"cosine"`` and ``"dot"`` return similarities;
  ``"l2"`` returns *negative squared* Euclidean distances (``-||q - x||**2``, so the nearest
  item has the largest score, at most 0).
* **One answer, whatever the route or the machine.** The result is the top-k by the
  *canonical* float32 score (:func:`recsys_kit.topk_engine.canonical_scores`: IEEE products,
  a fixed-order sum, so the same bits on every CPU), **ties broken by the lower item index**.
  GEMMs (bf16 or float32) only propose candidates and each query's answer is settled exactly
  (:mod:`recsys_kit.topk_engine`), so the route, the thread count, the chunk size and the
  CPU's kernels change the speed, never the result. Identical items tie exactly.
* **k > n_items raises** ``ValueError`` rather than silently returning fewer columns.
* Scores are computed in float32 (float64/float16 inputs are cast). A zero-norm vector has
  cosine 0 with everything. Items must be finite (checking that would cost a full extra pass
  per call; :class:`Index` checks once at construction).

Routes (:func:`topk_with_stats` and :attr:`Index.last_stats` say which ran): ``"scan"`` for a
single query on CPU (a matrix-vector pass, then the few items that may reach the k-th scored
canonically); otherwise GEMM candidates in ``"fp32"``, or in ``"bf16"`` where a bf16 GEMM
really is faster: on a CUDA GPU with bf16 tensor cores, and, for an :class:`Index`, on a CPU
where :func:`recsys_kit.device.bf16_matmul_speedup` *measures* it (once per process) at least
:data:`BF16_MIN_SPEEDUP` times faster than float32 (AMX: 3.5x; not AVX512-BF16 alone on the
Sapphire Rapids VM this was tested on: 0.6x; not AVX2, where bf16 is emulated). Where bf16 does
not pay, an :class:`Index` takes ``"int8"`` (k up to :data:`INT8_MAX_K`) on a CPU whose int8
products are exact and fast (VNNI: Ice Lake and later, Zen 4 and later; measured once per
process) when numba is installed: exact int32 sums of two int8 digits per item. On CPU the
work runs on ``torch.get_num_threads()`` single-threaded workers that take blocks of items as
they go, smaller ones when :func:`recsys_kit.device.free_cores` finds cores busy (on the AMX
bf16 route, only as many workers as cores are free).

This module is over 600 lines because the two public entry points (:func:`topk`,
:class:`Index`) share one validation and one route choice (scan, float32, bf16, int8), which
read best next to them; the engine itself is :mod:`recsys_kit.topk_engine`.

Memory bound: besides the inputs, one call holds one block of approximate scores per worker
(:data:`recsys_kit.topk_engine.CPU_BLOCK_BYTES`, 32 MiB, or 256 MiB on a GPU), the candidates
(``n_queries x (k + margin)`` scores and indices; on the int8 route and the compiled bf16
selection up to ``max(4 (k + margin), 2048)`` per query and worker, for at most 4,096 queries
at a time: :data:`recsys_kit.topk_engine.INT8_MAX_QUERIES`), and a ~1 MiB CPU (64 MiB GPU) rescoring
buffer per worker; :class:`Index` adds its bf16 copy or its int8 digits (half the float32
items) where it uses them.

Example:
    >>> import numpy as np
    >>> items = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], dtype=np.float32)
    >>> scores, idx = topk(np.array([1.0, 0.1], dtype=np.float32), items, k=2)
    >>> idx.tolist()
    [[0, 2]]
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from recsys_kit import topk_engine as engine
from recsys_kit.constants import DEFAULT_BATCH_SIZE, DEFAULT_K
from recsys_kit.device import (
    bf16_matmul_speedup,
    free_cores,
    int8_matmul_exact,
    int8_matmul_speedup,
    single_threaded,
)
from recsys_kit.topk_engine import default_margin

__all__ = [
    "BF16_AUTO_CPU",
    "BF16_MIN_ITEMS",
    "BF16_MIN_QUERIES",
    "BF16_MIN_SPEEDUP",
    "AMX_MIN_SPEEDUP",
    "INT8_MAX_K",
    "INT8_MIN_SPEEDUP",
    "CHUNK_BYTES_CPU",
    "CHUNK_BYTES_GPU",
    "METRICS",
    "NUMPY_MAX_QUERIES",
    "PRECISIONS",
    "Index",
    "Metric",
    "Precision",
    "TopkStats",
    "default_margin",
    "naive_topk_loop",
    "topk",
    "topk_with_stats",
]

Metric = Literal["cosine", "dot", "l2"]
METRICS: tuple[str, ...] = ("cosine", "dot", "l2")
Precision = Literal["auto", "fp32", "bf16", "int8"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "int8")

#: Score-block budget of one CPU task (:data:`recsys_kit.topk_engine.CPU_BLOCK_BYTES`).
CHUNK_BYTES_CPU = engine.CPU_BLOCK_BYTES
#: Score-block budget on an accelerator.
CHUNK_BYTES_GPU = engine.GPU_BLOCK_BYTES
#: At most this many queries take the ``"scan"`` route on CPU (memory-bound; no GEMM).
NUMPY_MAX_QUERIES = 1
_EPS = 1e-12
#: ``precision="auto"`` takes the bf16 route from this many queries on (below it the GEMM is
#: memory-bound and the bf16 conversion of the queries and the rescoring do not pay).
BF16_MIN_QUERIES = 32
#: ... and from this many items (small catalogues: the fixed costs dominate).
BF16_MIN_ITEMS = 16384
#: ... where a bf16 GEMM measured at least this many times faster than a float32 one
#: (:func:`recsys_kit.device.bf16_matmul_speedup`): the bf16 route also rescores more
#: candidates (a wider error bound), so a marginal GEMM gain does not pay.
BF16_MIN_SPEEDUP = 1.4
#: Whether "auto" may pick the bf16 route for raw item arrays on a CPU. Off: on the 2-core AMX
#: test machine (bench/RESULTS.md) converting the float32 items to bf16 and measuring their
#: rounding errors on every call made the route 1.2-1.5x *slower* than the float32 route.
#: :class:`Index` makes that copy once and takes the route where it measures faster.
BF16_AUTO_CPU = False
#: An :class:`Index` on a CPU where bf16 does not pay takes the int8 route (two int8 digits per
#: item, exact int32 sums; :mod:`recsys_kit.topk_engine`) where the int8 product is exact
#: (:func:`recsys_kit.device.int8_matmul_exact`: VNNI), measures at least this many times
#: faster than float32 (it runs two products per block) and numba is installed...
INT8_MIN_SPEEDUP = 3.0
#: ... for k up to this (the largest measured: at Q=256, N=100k on the test machine's 2
#: cores, the int8 route took 41 / 47 / 64 / 86 / 143 ms against float32's 89 / 91 / 99 /
#: 129 / 211 ms at k = 10 / 32 / 100 / 300 / 1000; on tight clusters of 2,000 items 90 ms
#: against 99 ms at k=10, 115 against 109 ms at k=100).
INT8_MAX_K = 1000
#: A CPU bf16 GEMM this many times faster than float32 runs on AMX tiles: AVX512-BF16 dot
#: products do twice a float32 FMA's work per instruction, so at most ~2x (measured: AMX
#: 3.5-5.4x, AVX512-BF16 0.5-0.9x). On such a CPU a busy machine's search keeps to the free
#: cores (:func:`_candidate_route`).
AMX_MIN_SPEEDUP = 2.5


@dataclass(frozen=True)
class TopkStats:
    """What :func:`topk_with_stats` did (a debug/benchmark view of the route choice).

    Attributes:
        route: ``"scan"`` (one query on CPU: a matrix-vector pass), ``"fp32"`` or ``"bf16"``
            (the GEMM that proposed the candidates).
        n_queries: queries in the call.
        n_candidates: candidates kept per query on the GEMM routes (0 on ``"scan"``).
        n_fallback: queries their candidates did not settle, which took the exact
            threshold pass (one more GEMM row each; near-ties, duplicates, dense clusters).
        threads: CPU workers used (1 on a GPU).
    """

    route: str
    n_queries: int
    n_candidates: int = 0
    n_fallback: int = 0
    threads: int = 1


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {METRICS}")


def _check_k(k: int, n_items: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k <= 0:
        raise ValueError(f"k must be >= 1, got {k}")
    if k > n_items:
        raise ValueError(
            f"k={k} is larger than the number of items ({n_items}); pass k <= {n_items}"
        )


def _as_2d(x: Any, name: str) -> tuple[Any, bool]:
    """Validate an array/tensor and return it 2-D plus whether it was 1-D."""
    if isinstance(x, torch.Tensor):
        if not (x.dtype.is_floating_point):
            raise TypeError(f"{name} must be a floating tensor, got {x.dtype}; cast with .float()")
    elif isinstance(x, np.ndarray):
        if x.dtype.kind != "f":
            raise TypeError(
                f"{name} must be a floating array, got dtype {x.dtype}; "
                "cast with .astype(np.float32)"
            )
    else:
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if x.ndim == 1:
        return x[None, :], True
    if x.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (n, dim), got shape {tuple(x.shape)}")
    return x, False


def _resolve_device(device: str | torch.device | None) -> torch.device:
    from recsys_kit.device import get_device

    return get_device(device)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def topk(
    queries: np.ndarray | torch.Tensor,
    items: np.ndarray | torch.Tensor,
    k: int = DEFAULT_K,
    metric: Metric = "cosine",
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
    *,
    precision: Precision = "auto",
    margin: int | None = None,
) -> tuple[np.ndarray, np.ndarray] | tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k items for each query, best first, ties broken by the lower item index.

    Args:
        queries: (n_queries, dim) or (dim,) for one query; numpy array or torch tensor.
        items: (n_items, dim) numpy array or torch tensor.
        k: how many items to return per query, 1 <= k <= n_items.
        metric: ``"cosine"``, ``"dot"`` or ``"l2"`` (negative squared distance). For
            embeddings that are already L2-normalised, ``"dot"`` gives the same ranking as
            ``"cosine"`` and skips a pass over the items to compute their norms.
        device: where to compute. ``None``: a torch input's own device; for numpy input
            :func:`recsys_kit.device.get_device` (``$RECSYS_DEVICE``, cuda > mps > cpu), except
            a single query, which stays on CPU (the transfer would dominate).
        chunk_size: items per block; ``None`` picks it from the memory budget (module doc).
        precision: which GEMM proposes the candidates: ``"fp32"``, ``"bf16"`` or ``"int8"``
            (forced; int8: CPU, dot or cosine, needs numba), or
            ``"auto"`` (default): bf16 only where it pays, from :data:`BF16_MIN_QUERIES` queries
            and :data:`BF16_MIN_ITEMS` items, on a CUDA GPU with bf16 tensor cores, or for an
            :class:`Index` (which keeps a bf16 copy) on a CPU where a bf16 GEMM measures
            :data:`BF16_MIN_SPEEDUP` times faster (raw arrays on a CPU stay on float32, see
            :data:`BF16_AUTO_CPU`); an :class:`Index` may take int8 (:data:`INT8_MIN_SPEEDUP`).
            The result is the same either way (module doc).
        margin: extra candidates per query on the GEMM routes (default
            :func:`default_margin`); larger means fewer threshold passes, more rescoring.

    Returns:
        ``(scores, indices)``, each (n_queries, k): float32 scores and int64 item rows. numpy
        in, numpy out; torch in, torch out (on the compute device).

    Example:
        >>> s, i = topk(np.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32), k=1)
        >>> i.ravel().tolist()
        [0, 1, 2]
    """
    vals, idx, _ = _topk_impl(queries, items, k, metric, device, chunk_size, precision, margin)
    return vals, idx


def topk_with_stats(
    queries: np.ndarray | torch.Tensor,
    items: np.ndarray | torch.Tensor,
    k: int = DEFAULT_K,
    metric: Metric = "cosine",
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
    *,
    precision: Precision = "auto",
    margin: int | None = None,
) -> tuple[Any, Any, TopkStats]:
    """:func:`topk` plus a :class:`TopkStats` saying which route ran and how many queries fell
    back (for tests and benchmarks).

    Args:
        queries, items, k, metric, device, chunk_size, precision, margin: as in :func:`topk`.

    Returns:
        ``(scores, indices, stats)``.
    """
    return _topk_impl(queries, items, k, metric, device, chunk_size, precision, margin)


def _topk_impl(
    queries: Any,
    items: Any,
    k: int,
    metric: str,
    device: str | torch.device | None,
    chunk_size: int | None,
    precision: str,
    margin: int | None,
    prepared: engine.PreparedItems | None = None,
) -> tuple[Any, Any, TopkStats]:
    """Validation, device and route choice shared by :func:`topk` and :func:`topk_with_stats`.

    ``prepared`` (from :class:`Index`) is ``items`` made ready for one kind of GEMM: with it the
    candidate route pays no conversion; it is used when the route chosen matches its kind.
    """
    q2, items2, is_torch = _checked_inputs(queries, items, k, metric, chunk_size, precision, margin)
    n_q = q2.shape[0]
    dev = _compute_device(device, is_torch, q2, items2)

    # on CPU the parallel phases run on the engine's workers; the glue runs on one thread
    # (also this check: after a two-thread op, torch's OpenMP thread spins for ~1.5 ms and
    # held up the first parallel phase's second worker by as much, measured)
    def glue() -> contextlib.AbstractContextManager:
        return single_threaded() if dev.type == "cpu" else contextlib.nullcontext()

    qt = torch.as_tensor(q2).to(dev, torch.float32)
    with glue():
        finite = bool(torch.isfinite(qt).all())
    if not finite:
        raise ValueError("queries contain NaN or inf")
    it = torch.as_tensor(items2).to(dev)  # no copy when already there; cast per block
    # CPU: every thread the user allows, as workers that take blocks as they go; when other
    # processes hold cores (fewer free than workers), smaller blocks, so that the work moves to
    # whichever worker runs. Measured on the loaded test machine: 1.7-2x faster than fitting
    # the worker count to the free cores (bench/RESULTS.md, "shared machine"); AMX is the
    # exception (_candidate_route).
    threads = torch.get_num_threads() if dev.type == "cpu" else 1
    free = free_cores() if dev.type == "cpu" else 1.0
    if precision == "int8":
        _check_int8(dev, metric, qt.shape[1])
    with torch.inference_mode(), glue():
        if dev.type == "cpu" and n_q <= NUMPY_MAX_QUERIES and precision not in ("bf16", "int8"):
            xmax = prepared.xmax if prepared is not None and metric == "dot" else None
            vals, idx = engine.scan_topk(qt, it, k, metric, threads, xmax)
            stats = TopkStats("scan", n_q, threads=threads)
        else:
            vals, idx, stats = _candidate_route(
                qt, it, k, metric, dev, chunk_size, precision, margin, prepared, threads, free
            )
    if is_torch:
        return vals, idx, stats
    return vals.cpu().numpy(), idx.cpu().numpy(), stats


def _checked_inputs(
    queries: Any,
    items: Any,
    k: int,
    metric: str,
    chunk_size: int | None,
    precision: str,
    margin: int | None,
) -> tuple[Any, Any, bool]:
    """The arguments of :func:`topk` checked: ``(queries, items)`` as 2-D arrays or tensors,
    and whether either came as a tensor (the answer then stays one)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {PRECISIONS}")
    if margin is not None and margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    _check_metric(metric)
    is_torch = isinstance(queries, torch.Tensor) or isinstance(items, torch.Tensor)
    q2, _ = _as_2d(queries, "queries")
    items2, items_1d = _as_2d(items, "items")
    if items_1d:
        raise ValueError(f"items must be 2-D (n_items, dim), got shape {tuple(items.shape)}")
    if q2.shape[1] != items2.shape[1]:
        raise ValueError(
            f"dimension mismatch: queries have dim {q2.shape[1]}, items have dim "
            f"{items2.shape[1]}; encode both with the same model"
        )
    _check_k(k, items2.shape[0])
    if q2.shape[0] == 0:
        raise ValueError("queries is empty; pass at least one query vector")
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return q2, items2, is_torch


def _check_int8(dev: torch.device, metric: str, dim: int) -> None:
    """``precision="int8"`` needs a CPU, a dot-product metric, numba and exact int8 sums."""
    from recsys_kit.jit import INSTALL_HINT, numba_available

    if dev.type != "cpu":
        raise ValueError(f"precision='int8' runs on the CPU, not {dev.type}; use 'bf16' there")
    if metric == "l2":
        raise ValueError("precision='int8' ranks dot products: use metric 'dot' or 'cosine'")
    if not numba_available():
        raise ImportError(f"precision='int8' needs numba: {INSTALL_HINT}")
    if not int8_matmul_exact(dim):
        raise RuntimeError(
            "precision='int8' needs exact int8 products, and this CPU's saturate (no VNNI, "
            "or kernels forced by ONEDNN_MAX_CPU_ISA): use precision='auto'"
        )


def _compute_device(
    device: str | torch.device | None, is_torch: bool, q2: Any, items2: Any
) -> torch.device:
    """Where the search runs: ``device``, else where the tensors are, else CPU for one query
    (the transfer to an accelerator would dominate), else the default device."""
    if is_torch:
        return (
            _resolve_device(device)
            if device is not None
            else (items2.device if isinstance(items2, torch.Tensor) else q2.device)
        )
    if device is None and q2.shape[0] <= NUMPY_MAX_QUERIES:
        return torch.device("cpu")
    return _resolve_device(device)


def _candidate_route(
    qt: torch.Tensor,
    it: torch.Tensor,
    k: int,
    metric: str,
    dev: torch.device,
    chunk_size: int | None,
    precision: str,
    margin: int | None,
    prepared: engine.PreparedItems | None,
    threads: int,
    free: float,
) -> tuple[torch.Tensor, torch.Tensor, TopkStats]:
    """The GEMM-candidates route (:func:`recsys_kit.topk_engine.candidate_topk`): picks its
    GEMM kind (``"auto"``: bf16 only for large searches where it pays) and uses ``prepared``
    when it was made for that kind. ``free``: cores other processes left free
    (:func:`recsys_kit.device.free_cores`; fewer than ``threads``: smaller blocks)."""
    n_q, n_items = qt.shape[0], it.shape[0]
    m = default_margin(k) if margin is None else int(margin)
    kind = precision
    if precision == "auto":
        large = n_q >= BF16_MIN_QUERIES and n_items >= max(BF16_MIN_ITEMS, 4 * (k + m))
        kind = _fast_kind(dev, prepared is not None, metric, qt.shape[1], k) if large else "fp32"
    if prepared is not None and prepared.kind != kind:
        prepared = None
    busy = free < threads - 0.5
    if busy and free >= 0.5 and kind == "bf16" and dev.type == "cpu" and _amx():
        # With AMX a worker sharing its core with another process slows the search down (one
        # busy-loop process, 2-core test machine, k=100: medians 69-98 ms with the free core
        # only, 94-115 ms with both; bf16 on AVX512-BF16 and float32 were faster on both
        # cores: bench/RESULTS.md). Only the free cores.
        threads, busy = int(free + 0.5), False
    res = engine.candidate_topk(
        qt, it, k, metric, kind=kind, chunk_size=chunk_size, margin=margin,
        prepared=prepared, threads=threads, blocks_per_worker=4 if busy else 2,
    )  # fmt: skip
    stats = TopkStats(kind, n_q, res.n_candidates, res.n_threshold, res.threads)
    return res.scores, res.indices, stats


def _fast_kind(dev: torch.device, prepared: bool, metric: str, dim: int, k: int) -> str:
    """The candidate GEMM that pays here: on CUDA, bf16 with bf16 tensor cores (compute
    capability >= 8); on a CPU, for items kept as a bf16 copy (``prepared``, or
    :data:`BF16_AUTO_CPU`), bf16 where a bf16 GEMM *measures* :data:`BF16_MIN_SPEEDUP` times
    faster than float32 (:func:`recsys_kit.device.bf16_matmul_speedup`); else, for prepared
    items, int8 where it is exact and pays (:data:`INT8_MIN_SPEEDUP`, :data:`INT8_MAX_K`);
    else float32."""
    if dev.type == "cuda":
        return "bf16" if torch.cuda.get_device_capability(dev)[0] >= 8 else "fp32"
    if dev.type != "cpu" or not (prepared or BF16_AUTO_CPU):
        return "fp32"
    if bf16_matmul_speedup("cpu") >= BF16_MIN_SPEEDUP:
        return "bf16"
    if prepared and _int8_pays(metric, dim, k):
        return "int8"
    return "fp32"


def _amx() -> bool:
    """Whether this CPU's bf16 GEMM runs on AMX tiles (:data:`AMX_MIN_SPEEDUP`, measured)."""
    return bf16_matmul_speedup("cpu") >= AMX_MIN_SPEEDUP


def _int8_pays(metric: str, dim: int, k: int) -> bool:
    """Whether the int8 route runs here and pays for this search (:func:`_fast_kind`)."""
    from recsys_kit.jit import numba_available

    return (
        metric != "l2"
        and k <= INT8_MAX_K
        and numba_available()
        and int8_matmul_speedup() >= INT8_MIN_SPEEDUP
        and int8_matmul_exact(dim)
    )


def naive_topk_loop(
    query_vec: Sequence[float] | np.ndarray,
    item_vecs: Sequence[Sequence[float]] | np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The slow way: a Python loop computing one cosine per item, then a full sort.

    Kept deliberately naive for the teaching comparison with :func:`topk` (same results,
    orders of magnitude slower). Ties go to the lower index, as in :func:`topk`.

    Args:
        query_vec: one query vector (dim,).
        item_vecs: (n_items, dim) item vectors.
        k: how many to return.

    Returns:
        ``(scores, indices)`` as 1-D arrays of length k.

    Example:
        >>> naive_topk_loop([1.0, 0.0], [[0.0, 1.0], [1.0, 0.0]], k=1)[1].tolist()
        [1]
    """
    q = np.asarray(query_vec, dtype=np.float64)
    _check_k(k, len(item_vecs))
    sims = []
    for i, item in enumerate(item_vecs):
        v = np.asarray(item, dtype=np.float64)
        denom = max(float(np.linalg.norm(q) * np.linalg.norm(v)), _EPS)
        sims.append((float(np.dot(q, v)) / denom, i))
    sims.sort(key=lambda pair: (-pair[0], pair[1]))
    top = sims[:k]
    return np.array([s for s, _ in top]), np.array([i for _, i in top], dtype=np.int64)


class Index:
    """Items embeddings + ids, searchable by vectors or (with an encoder) by text.

    Cosine items are L2-normalised once at construction, so searches run as dot products.
    ``search`` returns ``list[list[tuple[id, score]]]``: one list per query, best first.

    Args:
        items_embeddings: (n_items, dim) float array or tensor.
        ids: one id per item (e.g. product ids).
        encoder: an object with ``encode(texts) -> np.ndarray`` (e.g.
            :class:`recsys_kit.encoders.TextEncoder`), needed to search by text.
        metric: ``"cosine"``, ``"dot"`` or ``"l2"``.
        device: where to keep the items (``None``: CPU, numpy matrix-vector for one query).

    Example:
        >>> idx = Index(np.eye(2, dtype=np.float32), ["a", "b"])
        >>> idx.search(np.array([0.1, 1.0], dtype=np.float32), k=1)
        [[('b', 0.9950371384620667)]]
    """

    def __init__(
        self,
        items_embeddings: np.ndarray | torch.Tensor,
        ids: Sequence[Any],
        encoder: Any | None = None,
        metric: Metric = "cosine",
        device: str | torch.device | None = None,
    ) -> None:
        _check_metric(metric)
        items, one_d = _as_2d(items_embeddings, "items_embeddings")
        if one_d:
            raise ValueError("items_embeddings must be 2-D (n_items, dim)")
        if len(ids) != items.shape[0]:
            raise ValueError(
                f"got {len(ids)} ids for {items.shape[0]} item embeddings; pass one id per row"
            )
        arr = (
            items.detach().float().cpu().numpy()
            if isinstance(items, torch.Tensor)
            else np.ascontiguousarray(items, dtype=np.float32)
        )
        if not np.isfinite(arr).all():
            raise ValueError("items_embeddings contain NaN or inf")
        self.metric = metric
        self._search_metric = "dot" if metric == "cosine" else metric
        if metric == "cosine":  # normalised the engine's way: the same bits on every machine
            arr = engine.unit_rows(torch.from_numpy(arr)).numpy()
        self.ids = list(ids)
        self.encoder = encoder
        self.device = torch.device("cpu") if device is None else _resolve_device(device)
        self.items: np.ndarray | torch.Tensor = (
            arr if self.device.type == "cpu" else torch.from_numpy(arr).to(self.device)
        )
        #: items made ready for the candidate GEMM, per kind (bf16 / float32), on first need
        self._prepared_items: dict[str, engine.PreparedItems] = {}
        #: How the last :meth:`search_arrays` call ran (route, threshold passes, threads).
        self.last_stats: TopkStats | None = None

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        ids: Sequence[Any],
        encoder: Any,
        metric: Metric = "cosine",
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str | torch.device | None = None,
    ) -> Index:
        """Encode ``texts`` with ``encoder`` and index them under ``ids``."""
        emb = encoder.encode(list(texts), batch_size=batch_size)
        return cls(np.asarray(emb, dtype=np.float32), ids, encoder=encoder, metric=metric,
                   device=device)  # fmt: skip

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.items.shape[1])

    def search_arrays(
        self, queries: str | Sequence[str] | np.ndarray | torch.Tensor, k: int = DEFAULT_K
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`search` but returns ``(scores, row_indices)`` arrays (n_queries, k)."""
        q = self._encode(queries)
        if isinstance(q, torch.Tensor):
            q = q.detach().float().cpu().numpy()
        q = np.asarray(q, dtype=np.float32)
        if self.metric == "cosine":  # items were normalised at construction
            q = engine.unit_rows(torch.from_numpy(np.atleast_2d(q))).numpy().reshape(q.shape)
        if isinstance(self.items, torch.Tensor):
            s, i, self.last_stats = _topk_impl(
                torch.from_numpy(q), self.items, k, self._search_metric, None, None, "auto",
                None, self._prepared(q, k),
            )  # fmt: skip
            return s.cpu().numpy(), i.cpu().numpy()
        s, i, self.last_stats = _topk_impl(
            q, self.items, k, self._search_metric, "cpu", None, "auto", None,
            self._prepared(q, k),
        )  # fmt: skip
        return s, i

    def _prepared(self, q: np.ndarray, k: int) -> engine.PreparedItems | None:
        """The items ready for the candidate GEMM this batch will use (bf16 or int8 where it
        measures faster: :func:`_fast_kind`), made once per kind."""
        n_q = 1 if q.ndim == 1 else q.shape[0]
        large = n_q >= BF16_MIN_QUERIES and len(self) >= BF16_MIN_ITEMS
        kind = _fast_kind(self.device, True, self._search_metric, self.dim, k) if large else "fp32"
        if kind not in self._prepared_items:
            items = torch.as_tensor(self.items)
            self._prepared_items[kind] = engine.PreparedItems.build(
                items, self._search_metric, kind
            )
        return self._prepared_items[kind]

    def search(
        self, queries: str | Sequence[str] | np.ndarray | torch.Tensor, k: int = DEFAULT_K
    ) -> list[list[tuple[Any, float]]]:
        """Top-k ``(id, score)`` pairs per query, best first.

        Args:
            queries: a text, a list of texts (needs ``encoder``), or query vectors (dim,) or
                (n_queries, dim).
            k: results per query (<= number of items).

        Returns:
            One list per query (a single text or vector still gives a list of one list).
        """
        scores, rows = self.search_arrays(queries, k)
        return [
            [(self.ids[j], float(s)) for s, j in zip(srow, irow, strict=True)]
            for srow, irow in zip(scores, rows, strict=True)
        ]

    def _encode(self, queries: Any) -> np.ndarray | torch.Tensor:
        if isinstance(queries, str):
            queries = [queries]
        if isinstance(queries, (list, tuple)) and queries and isinstance(queries[0], str):
            if self.encoder is None:
                raise ValueError(
                    "this Index has no encoder, so it cannot search by text; pass vectors or "
                    "build it with Index(..., encoder=TextEncoder()) / Index.from_texts"
                )
            return np.asarray(self.encoder.encode(list(queries)), dtype=np.float32)
        if isinstance(queries, (np.ndarray, torch.Tensor)):
            return queries
        raise TypeError(
            f"queries must be a str, a list of str or an array of vectors, got "
            f"{type(queries).__name__}"
        )
