"""Exact top-k retrieval over embeddings: the dense-retrieval workhorse of the course.

:func:`topk` scores every query against every item and keeps the ``k`` best, chunked over the
items so memory stays bounded whatever the catalogue size. :class:`Index` wraps it with ids and
an optional text encoder. :func:`naive_topk_loop` is the slow Python loop from the training
material, kept only for the teaching comparison.

Conventions (tested in ``tests/test_ranking.py``):

* **Larger score = better, for every metric.** ``"cosine"`` and ``"dot"`` return similarities;
  ``"l2"`` returns *negative squared* Euclidean distances (``-||q - x||**2``, so the nearest
  item has the largest score, at most 0).
* **Ties are broken by the lower item index**, so results are deterministic across chunk sizes,
  devices and threads (``torch.topk`` and ``np.argpartition`` alone do not promise that).
* **k > n_items raises** ``ValueError`` rather than silently returning fewer columns.
* Scores are computed in float32 (float64/float16 inputs are cast). A zero-norm vector has
  cosine 0 with everything. Items must be finite (checking that would cost a full extra pass
  per call; :class:`Index` checks once at construction).

Fast route (``precision="auto"``/``"bf16"``): for many queries on hardware with native bf16
(AMX / AVX512-BF16 CPUs, CUDA compute capability >= 8), candidates are generated with a bf16
GEMM, rescored exactly in float32, and each query's result is *proven* equal to the exact
top-k (else retried with a wider margin, then recomputed on the float32 path); see
:func:`_topk_bf16` and :func:`_bf16_error_bound`. :func:`topk_with_stats` (and
:attr:`Index.last_stats`) report how many queries were retried or fell back.

Memory bound: besides the inputs, one call holds one block of scores
``n_queries x chunk_size x 4`` bytes, plus the running and per-chunk top-k
``2 x n_queries x (k + 1) x (4 + 8)`` bytes (float32 scores + int64 indices); cosine/l2 add
``chunk_size x 4`` bytes of item norms. ``chunk_size`` defaults to the number of items that fits
:data:`CHUNK_BYTES_CPU` (16 MiB) or :data:`CHUNK_BYTES_GPU` (256 MiB) of scores. The bf16 route
holds one block of bf16 scores (:data:`BF16_CHUNK_BYTES_CPU` over an :class:`Index`'s copy),
its group maxima (1/16 of it), ``n_queries x (k + margin)`` candidates, and a ~1 MiB CPU
(64 MiB GPU) rescoring buffer; :class:`Index` adds its bf16 copy (half the float32 items).

Example:
    >>> import numpy as np
    >>> items = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], dtype=np.float32)
    >>> scores, idx = topk(np.array([1.0, 0.1], dtype=np.float32), items, k=2)
    >>> idx.tolist()
    [[0, 2]]
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from recsys_kit.constants import DEFAULT_BATCH_SIZE, DEFAULT_K

Metric = Literal["cosine", "dot", "l2"]
METRICS: tuple[str, ...] = ("cosine", "dot", "l2")
Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")

#: Score-block budget per chunk on CPU: small enough to stay in the last-level cache region.
CHUNK_BYTES_CPU = 16 * 2**20
#: Score-block budget per chunk on an accelerator.
CHUNK_BYTES_GPU = 256 * 2**20
#: Score-block budget of the bf16 candidate route over a prepared (Index) copy, on CPU.
BF16_CHUNK_BYTES_CPU = 16 * 2**20
#: At most this many queries take the numpy matrix-vector route (memory-bound; no torch overhead).
NUMPY_MAX_QUERIES = 1
_EPS = 1e-12
#: ``precision="auto"`` takes the bf16 route from this many queries on (below it the GEMM is
#: memory-bound and the per-chunk bf16 conversion costs more than the faster GEMM saves).
BF16_MIN_QUERIES = 32
#: ... and from this many items (small catalogues: the fixed costs dominate).
BF16_MIN_ITEMS = 16384
#: Whether "auto" may pick the bf16 route for raw item arrays on a CPU. Off: on the 2-core AMX
#: test machine (bench/RESULTS.md) converting the float32 items to bf16 and measuring their
#: rounding errors on every call made the route 1.2-1.5x *slower* than the float32 route.
#: :class:`Index` makes that copy once and takes the route on such CPUs regardless.
BF16_AUTO_CPU = False
#: Unit roundoffs (round-to-nearest): bf16 keeps 8 significant bits, float32 24.
_U_BF16 = 2.0**-8
_U_FP32 = 2.0**-24


@dataclass(frozen=True)
class TopkStats:
    """What :func:`topk_with_stats` did (a debug/benchmark view of the route choice).

    Attributes:
        route: ``"numpy"`` (one query, matrix-vector), ``"fp32"`` or ``"bf16"``.
        n_queries: queries in the call.
        n_candidates: candidates rescored per query on the bf16 route (0 otherwise).
        n_fallback: queries whose bf16 result could not be proven exact and were recomputed on
            the float32 path.
        n_retried: queries whose first proof failed and that were run once more on the bf16
            route with a wider margin (those that failed again count in ``n_fallback`` too).
    """

    route: str
    n_queries: int
    n_candidates: int = 0
    n_fallback: int = 0
    n_retried: int = 0


@dataclass(frozen=True)
class _BF16Items:
    """A bf16 copy of an item matrix, made once (by :class:`Index`) for the candidate route.

    Converting (and, for cosine, normalising) the items costs about as much as the bf16 GEMM
    itself, so an index that answers many batches keeps the copy instead of redoing it.
    """

    bf16: torch.Tensor  # (N, d): items (cosine: unit rows) rounded to bf16
    xmax: float  # upper bound of the float32 item norms
    dmax: float  # upper bound of the rounding-error norms ||bf16(x) - x||
    sq: torch.Tensor | None  # (N,) float32 squared norms (l2 only)

    @classmethod
    def build(cls, items: torch.Tensor, metric: str) -> _BF16Items:
        x = items.float()
        if metric == "cosine":
            x = x / x.norm(dim=1, keepdim=True).clamp_min(_EPS)
        xb = x.to(torch.bfloat16)
        xmax, dmax = _norm_bounds(x, xb)
        sq = (x * x).sum(dim=1) if metric == "l2" else None
        return cls(xb, xmax, dmax, sq)


def _norm_inflation(dim: int) -> float:
    """Factor that turns a float32 norm of ``dim`` terms into an upper bound of the true one
    (``1 + 2 d w'`` with ``w' = 2^-23``: sums of squares and the square root, any order)."""
    return 1.0 + 2.0 * dim * 2.0 * _U_FP32


def _norm_bounds(x: torch.Tensor, xb: torch.Tensor) -> tuple[float, float]:
    """Upper bounds of ``max ||x_j||`` and ``max ||bf16(x_j) - x_j||`` over the rows.

    The difference of a float32 value and its bf16 rounding is exact in float32 (Sterbenz);
    the float32 norms are inflated (:func:`_norm_inflation`) so that they bound the true ones.
    """
    infl = _norm_inflation(x.shape[1])
    xmax = float(torch.linalg.vector_norm(x, dim=1).max()) * infl
    dmax = float(torch.linalg.vector_norm(xb.float() - x, dim=1).max()) * infl
    return xmax, dmax


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
# kernels
# --------------------------------------------------------------------------------------------
def _order_rows(vals: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row by (score descending, index ascending) with two stable sorts."""
    idx, perm = torch.sort(idx, dim=1, stable=True)
    vals = torch.gather(vals, 1, perm)
    vals, perm = torch.sort(vals, dim=1, descending=True, stable=True)
    return vals, torch.gather(idx, 1, perm)


def _chunk_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of a score block with ties at the k-th place resolved towards lower indices."""
    n = scores.shape[1]
    if k >= n:
        idx = torch.arange(n, device=scores.device).expand(scores.shape[0], n)
        return _order_rows(scores, idx.contiguous())
    # One extra column tells, per row, whether the k-th place is tied (then torch's choice of
    # which tied item to keep is arbitrary and must be redone).
    vals, idx = torch.topk(scores, k + 1, dim=1, sorted=True)
    tied = vals[:, k] == vals[:, k - 1]
    vals, idx = vals[:, :k].contiguous(), idx[:, :k].contiguous()
    if bool(tied.any()):
        for r in torch.nonzero(tied).flatten().tolist():
            row, t = scores[r], vals[r, k - 1]
            above = torch.nonzero(row > t).flatten()
            equal = torch.nonzero(row == t).flatten()[: k - above.numel()]
            sel = torch.cat([above, equal])
            idx[r] = sel
            vals[r] = row[sel]
    return _order_rows(vals, idx)


def _merge(
    best: tuple[torch.Tensor, torch.Tensor] | None, new: tuple[torch.Tensor, torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge two ordered top-k lists; ``best`` holds lower indices, so a stable sort keeps ties."""
    if best is None:
        return new
    vals = torch.cat([best[0], new[0]], dim=1)
    idx = torch.cat([best[1], new[1]], dim=1)
    vals, perm = torch.sort(vals, dim=1, descending=True, stable=True)
    return vals[:, :k].contiguous(), torch.gather(idx, 1, perm[:, :k])


def _topk_torch(
    q: torch.Tensor, items: torch.Tensor, k: int, metric: str, chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked GEMM + top-k on ``items.device``. ``q`` is (Q, d) float32 on the same device."""
    if metric == "cosine":
        q = q / q.norm(dim=1, keepdim=True).clamp_min(_EPS)
    elif metric == "l2":
        q = q * 2.0  # rank by 2 q.x - ||x||^2; ||q||^2 is added back at the end
    best = None
    for start in range(0, items.shape[0], chunk_size):
        block = items[start : start + chunk_size]
        if block.dtype != torch.float32:
            block = block.float()
        scores = q @ block.T
        if metric == "cosine":
            scores /= block.norm(dim=1).clamp_min(_EPS)
        elif metric == "l2":
            scores -= (block * block).sum(dim=1)
        vals, idx = _chunk_topk(scores, k)
        best = _merge(best, (vals, idx + start), k)
    vals, idx = best
    if metric == "l2":
        # Negative squared distance, clamped at 0 (rounding can give tiny positives).
        vals = (vals - q.square().sum(dim=1, keepdim=True) / 4.0).clamp_max(0.0)
        vals, idx = _order_rows(vals, idx)
    return vals, idx


def _topk_numpy_single(
    q: np.ndarray, items: np.ndarray, k: int, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """One query on CPU: a matrix-vector product + argpartition (memory-bound, no torch)."""
    q = q.astype(np.float32, copy=False)
    items = items.astype(np.float32, copy=False)
    scores = items @ q
    if metric == "cosine":
        norms = np.sqrt(np.einsum("ij,ij->i", items, items, dtype=np.float32))
        scores /= np.maximum(norms, _EPS) * max(float(np.linalg.norm(q)), _EPS)
    elif metric == "l2":
        sq = np.einsum("ij,ij->i", items, items, dtype=np.float32)
        scores = np.minimum(-(sq - 2.0 * scores + np.float32(q @ q)), 0.0)
    n = scores.shape[0]
    if k < n:
        t = scores[np.argpartition(scores, n - k)[n - k]]  # k-th largest value
        cand = np.flatnonzero(scores >= t)  # >= k items; all ties at t included, in index order
    else:
        cand = np.arange(n)
    order = np.lexsort((cand, -scores[cand]))[:k]  # score desc, then index asc
    sel = cand[order]
    return scores[sel][None, :].astype(np.float32), sel[None, :].astype(np.int64)


# --------------------------------------------------------------------------------------------
# bf16 candidates + exact float32 rescoring
# --------------------------------------------------------------------------------------------
@functools.cache
def _cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AMX-BF16 or AVX512-BF16), from the flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no cheap, reliable probe, so stay on float32
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool({"amx_bf16", "avx512_bf16"} & flags)
    return False


def _bf16_is_fast(dev: torch.device) -> bool:
    """Whether bf16 GEMMs beat float32 clearly here (CUDA: tensor cores, compute >= 8.0)."""
    if dev.type == "cpu":
        return BF16_AUTO_CPU and _cpu_has_fast_bf16()
    if dev.type == "cuda":
        major, _ = torch.cuda.get_device_capability(dev)
        return major >= 8
    return False


@contextlib.contextmanager
def _float32_accumulation(dev: torch.device) -> Iterator[None]:
    """Make cuBLAS keep float32 partial sums in bf16 GEMMs for the duration (then restore).

    By default (``allow_bf16_reduced_precision_reduction``) cuBLAS may reduce split-K
    partial sums in bf16, which the error bound of :func:`_bf16_error_bound` does not cover.
    The flag is process-global: another thread's bf16 GEMMs meanwhile also accumulate in
    float32 (more exact, never less).
    """
    if dev.type != "cuda":
        yield
        return
    flags = torch.backends.cuda.matmul
    saved = flags.allow_bf16_reduced_precision_reduction
    flags.allow_bf16_reduced_precision_reduction = False
    try:
        yield
    finally:
        flags.allow_bf16_reduced_precision_reduction = saved


def default_margin(k: int) -> int:
    """Extra candidates per query on the bf16 route: ``max(32, 3 * k // 4)``.

    Why: the proof needs the exact k-th score to clear the (k + m)-th approximate score by the
    per-query error bound of :func:`_bf16_error_bound` (~0.004-0.005 for unit vectors in
    384-d, under a tenth of a standard deviation of random cosines). Measured at N = 100k-1M,
    k = 10-100, on random unit vectors and on clustered ones (200-5000 clusters, k-th cosine
    0.16-0.57): ``3k/4`` extra candidates left no query unproven, ``k/2`` up to 4 % (dense
    clusters), and each extra candidate costs a float32 rescoring; 32 covers small k.
    """
    return max(32, 3 * k // 4)


def _bf16_slack(dim: int) -> float:
    """Relative error terms of the bf16 route besides the input and output roundings.

    With ``w = 2^-24`` (float32) and ``g = gamma_d = d w' / (1 - d w')``, ``w' = 2w`` so that
    accumulators that truncate (some tensor cores) or fuse pairs (AMX) are covered too:
    ``g (1 + u)^2`` for the float32 accumulation of the bf16 products (a product of two bf16
    numbers is exact in float32: 8 + 8 <= 24 bits), ``g`` for the exact side's own float32 dot
    product, and ``4g + 64w`` for the norms, divisions and subtractions around the products
    (cosine / l2). A ``2^-10`` relative slack covers evaluating the bound in floating point.
    All are relative to ``||q|| * max ||x||``; for d = 384 the sum is ~2.8e-4.
    """
    u, w = _U_BF16, 2.0 * _U_FP32
    g = dim * w / (1.0 - dim * w)
    return (g * (1 + u) ** 2 + g + 4 * g + 64 * _U_FP32) * (1.0 + 2.0**-10)


def _bf16_error_bound(
    q: torch.Tensor,
    qb: torch.Tensor,
    xmax: float,
    dmax: float,
    bound: torch.Tensor,
    metric: str,
) -> torch.Tensor:
    """Per-query ``eps``: every item whose approximate score is ``<= bound`` has exact
    (float32-path) score ``<= bound + eps``.

    Derivation (``u = 2^-8``, bf16 round-to-nearest), for one query ``a`` (``q``: already
    normalised for cosine) and item ``x`` (the float32 row that was rounded):
    ``a . x - a^ . x^ = -(a^ . (x^ - x)) - ((a^ - a) . x)``, so by Cauchy-Schwarz the input
    roundings move a score by at most ``||a^|| * max ||x^ - x|| + ||a^ - a|| * max ||x||``.
    Both rounding-error norms are *measured* (``dmax`` once per item matrix, ``||a^ - a||``
    per query) rather than bounded by the worst case ``u ||a|| ||x||``: random rounding
    errors are about 0.4 u in norm, which makes the bound ~2.5x tighter than the classic
    ``(2u + u^2) ||a|| ||x||``. torch returns the bf16 GEMM rounded to bf16: ``s^ =
    bf16(r)`` with ``|s^ - r| <= u/(1-u) |s^|``; ``t + u/(1-u)|t|`` grows with ``t``, so for
    ``s^ <= B`` it is at most ``B + u/(1-u)|B|``. The remaining terms are :func:`_bf16_slack`.
    For l2 the route ranks ``2 q.x - ||x||^2`` with the dot product in bf16: twice the dot
    error (output rounding bounded through ``||q^|| ||x^||``), plus the float32 squared norms.
    Denormals may be flushed to zero (DAZ/FTZ in AMX and tensor cores): a tiny absolute term.

    Args:
        q: (Q, d) float32 queries as the exact path uses them (l2: the *undoubled* query).
        qb: ``q`` rounded to bf16.
        xmax, dmax: from :func:`_norm_bounds` over all items.
        bound: (Q,) the smallest kept approximate score per query.
        metric: ``"cosine"``, ``"dot"`` or ``"l2"``.

    Returns:
        (Q,) float32 ``eps``.
    """
    u, dim = _U_BF16, q.shape[1]
    infl = _norm_inflation(dim)
    qn = q.norm(dim=1) * infl
    qbn = qb.float().norm(dim=1) * infl
    dq = (qb.float() - q).norm(dim=1) * infl  # the difference itself is exact (Sterbenz)
    tiny = dim * 2.0**-118
    dot_err = qbn * dmax + dq * xmax + _bf16_slack(dim) * qn * xmax
    if metric == "l2":
        g = dim * 2.0 * _U_FP32
        out = u / (1 - u) * (1 + g) * qbn * (xmax + dmax)  # |bf16(r) - r| via |r| <= ||q^|| ||x^||
        sq_err = (8 * g + 64 * _U_FP32) * xmax * xmax  # ||x||^2 sums and the subtraction
        eps = 2 * (dot_err + out) + sq_err + tiny * (1 + qn) * (1 + xmax) ** 2
    else:
        out = u / (1 - u) * bound.abs()
        eps = dot_err + out + tiny * (1 + qn) * (1 + xmax)
    return eps * (1.0 + 2.0**-10)


#: Group size of :func:`_select_candidates` (16: measured fastest for K = 100-300 at Q = 256).
SELECT_GROUP = 16


def _kth_largest(x: torch.Tensor, kth: int) -> torch.Tensor:
    """Per row, the ``kth`` largest value of ``x`` (R, C), in ``x``'s dtype.

    On CPU numpy's SIMD ``partition`` (x86-simd-sort) is 4-7x faster than ``torch.topk``; bf16
    has no numpy dtype, so its bits are mapped to int16 keys with the same order (positive
    values keep their bits; negative ones flip their 15 magnitude bits) and back.
    """
    n_cols = x.shape[1]
    if x.device.type != "cpu" or x.dtype not in (torch.bfloat16, torch.float32):
        return torch.topk(x, kth, dim=1, sorted=False).values.amin(dim=1)
    if x.dtype == torch.float32:
        arr = np.partition(x.contiguous().numpy(), n_cols - kth, axis=1)[:, n_cols - kth]
        return torch.from_numpy(np.ascontiguousarray(arr))
    bits = x.contiguous().view(torch.int16)
    keys = bits ^ ((bits >> 15) & 0x7FFF)
    kk = np.partition(keys.numpy(), n_cols - kth, axis=1)[:, n_cols - kth]
    kt = torch.from_numpy(np.ascontiguousarray(kk))
    return (kt ^ ((kt >> 15) & 0x7FFF)).view(torch.bfloat16)


def _select_candidates(
    scores: torch.Tensor, n_cand: int, floor: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, every column whose value may be among the row's ``n_cand`` largest.

    Returns ``(vals, cols)``, (R, W) with ``W >= n_cand`` typically close to it; a row with
    fewer entries is padded with ``-inf`` / column ``-1``. Every column left out has a value
    ``<=`` the row's ``n_cand``-th largest *and* (if given) ``< floor``: the caller passes as
    ``floor`` a lower bound of the ``n_cand``-th largest value over all chunks so far.

    Why not ``torch.topk`` alone: on CPU its cost grows with ``n_cand`` and, at k = 100, it
    cost more than the bf16 GEMM it follows. Here the columns are cut into ``G`` strided
    groups of ``g`` (group ``j`` = columns ``j, j + G, j + 2G, ...``, so the max over groups
    is a vectorised elementwise max over ``g`` contiguous slices). ``t`` = the
    ``n_cand``-th largest group max is a lower bound of the ``n_cand``-th largest value
    (``n_cand`` groups have a max ``>= t``: ``n_cand`` distinct values), so only values
    ``>= t`` (and ``>= floor``) can matter, and they lie in groups whose max is ``>= t``:
    a partition, a compare on the ``G`` maxima and a gather of their members replace a top-k
    over all columns (measured 3-4x faster at k = 100).
    """
    n_rows, n_cols = scores.shape
    g = SELECT_GROUP
    n_groups = n_cols // g
    if n_groups < 2 * n_cand:  # too few groups for the two-step selection to pay
        return torch.topk(scores, min(n_cand, n_cols), dim=1, sorted=False)
    main = scores[:, : n_groups * g].view(n_rows, g, n_groups)
    gmax = main.amax(dim=1)
    t = _kth_largest(gmax, n_cand)
    if floor is not None:
        t = torch.maximum(t, floor.to(t.dtype))
    rows, grp = torch.nonzero(gmax >= t[:, None], as_tuple=True)
    members = main[rows, :, grp]  # (P, g): the members of every group that passed
    p, m = torch.nonzero(members >= t[rows, None], as_tuple=True)
    r, v, c = rows[p], members[p, m], grp[p] + m * n_groups
    if n_groups * g < n_cols:  # the last few columns, outside the groups
        tail = scores[:, n_groups * g :]
        tr, tc = torch.nonzero(tail >= t[:, None], as_tuple=True)
        r = torch.cat([r, tr])
        v = torch.cat([v, tail[tr, tc]])
        c = torch.cat([c, tc + n_groups * g])
        r, perm = torch.sort(r, stable=True)
        v, c = v[perm], c[perm]
    counts = torch.bincount(r, minlength=n_rows)
    width = max(1, int(counts.max()))
    pos = torch.arange(r.numel(), device=r.device) - (torch.cumsum(counts, 0) - counts)[r]
    vals = torch.full((n_rows, width), float("-inf"), dtype=scores.dtype, device=scores.device)
    cols = torch.full((n_rows, width), -1, dtype=torch.int64, device=scores.device)
    vals[r, pos] = v
    cols[r, pos] = c
    return vals, cols


def _exact_candidate_scores(
    q: torch.Tensor, items: torch.Tensor, cand: torch.Tensor, metric: str
) -> torch.Tensor:
    """Float32 scores of each query's candidate rows, as :func:`_topk_torch` ranks them.

    ``q`` is already normalised (cosine) or doubled (l2), like in :func:`_topk_torch`. The
    rows are gathered (``index_select``: row memcpy, ~4x faster than fancy indexing) into one
    reused buffer, a block of queries at a time, sized (~1 MiB) to stay in the L2 cache for
    the multiply and the sum that follow (measured 2x faster than 4 MiB blocks of fresh
    tensors).

    Multiply + last-dim ``sum``, not ``bmm``: a batched GEMV reduces some row positions in
    another order (measured: identical rows one ulp apart), which would break the tie
    between exact duplicates; the elementwise product and the inner-dim reduction treat every
    row the same way, so identical rows get identical scores and are ordered by index.
    """
    n_q, n_c = cand.shape
    out = torch.empty((n_q, n_c), dtype=torch.float32, device=q.device)
    dim = q.shape[1]
    block = 2**20 if q.device.type == "cpu" else 64 * 2**20  # GPU: fewer, larger launches
    step = max(1, block // max(1, n_c * dim * 4))
    buf = torch.empty((min(step, n_q) * n_c, dim), dtype=items.dtype, device=q.device)
    for s in range(0, n_q, step):
        blk = cand[s : s + step]
        rows = torch.index_select(items, 0, blk.reshape(-1), out=buf[: blk.numel()])
        rows = rows.view(blk.shape[0], n_c, dim)
        if rows.dtype != torch.float32:
            rows = rows.float()
        if metric == "dot":
            torch.sum(rows.mul_(q[s : s + step, None, :]), dim=2, out=out[s : s + step])
            continue
        sq = (rows * rows).sum(dim=2)
        sc = (rows * q[s : s + step, None, :]).sum(dim=2)
        if metric == "cosine":
            sc /= sq.sqrt_().clamp_min_(_EPS)
        else:
            sc -= sq
        out[s : s + step] = sc
    return out


def _keep_best(
    best_v: torch.Tensor | None,
    best_i: torch.Tensor | None,
    vals: torch.Tensor,
    idx: torch.Tensor,
    n_cand: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge a chunk's approximate candidates into the running best ``n_cand`` per query."""
    if best_v is not None and best_i is not None:
        vals = torch.cat([best_v, vals.to(best_v.dtype)], dim=1)
        idx = torch.cat([best_i, idx], dim=1)
    if vals.shape[1] > n_cand:
        vals, pos = torch.topk(vals, n_cand, dim=1, sorted=False)
        idx = torch.gather(idx, 1, pos)
    return vals, idx


def _topk_bf16(
    q: torch.Tensor,
    items: torch.Tensor,
    k: int,
    metric: str,
    chunk_size: int,
    margin: int,
    prepared: _BF16Items | None = None,
    retry: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Exact top-k via bf16 candidates, float32 rescoring and a per-query proof.

    1. Approximate scores ``s^`` with a bf16 GEMM, chunk by chunk; keep the top
       ``K = k + margin`` per query (:func:`_select_candidates`; ties there do not matter).
    2. Rescore those K candidates exactly in float32 (the same formula as the float32 path)
       and order them by (score desc, index asc).
    3. Proof, per query: let ``B`` be the smallest kept approximate score, so every other item
       has ``s^ <= B``, and ``eps`` the bound of :func:`_bf16_error_bound`. Any non-candidate
       then has exact score ``<= B + eps``. If the k-th exact candidate score is
       ``> B + eps`` (strictly), no non-candidate can reach or tie it, so the k best
       candidates, ordered with the index tie-break, are the exact top-k. We also refuse a tie
       between the k-th and (k+1)-th candidates (the float32 path decides those with its own
       tie logic). Failing queries are run once more with a 4x wider margin (``retry``),
       then, if they fail again or tie, recomputed on the float32 path. When
       ``K = n_items`` every item is a candidate and no proof is needed.

    Args:
        q: (Q, d) float32 queries on the compute device.
        items: (N, d) items on the same device (cast per chunk).
        k: results per query.
        metric: ``"cosine"``, ``"dot"`` or ``"l2"``.
        chunk_size: items per GEMM block.
        margin: extra candidates per query (``m``).
        prepared: a bf16 copy of ``items`` made by :meth:`_BF16Items.build` (skips the
            per-chunk conversion).
        retry: whether failing queries get a second bf16 pass with a wider margin.

    Returns:
        ``(scores, indices, n_retried, n_fallback)``: queries re-run with the wider margin,
        and queries recomputed on the float32 path.
    """
    n_q, dim = q.shape
    n = items.shape[0]
    n_cand = min(n, k + margin)
    if metric == "cosine":
        qx = q / q.norm(dim=1, keepdim=True).clamp_min(_EPS)
    elif metric == "l2":
        qx = q * 2.0
    else:
        qx = q
    qa = q if metric == "l2" else qx  # the vector rounded to bf16 (l2: undoubled)
    qb = qa.to(torch.bfloat16)
    xmax = dmax = 0.0
    floor: torch.Tensor | None = None
    best_v: torch.Tensor | None = None
    best_i: torch.Tensor | None = None
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        if prepared is not None:
            xb, xmax, dmax = prepared.bf16[start:stop], prepared.xmax, prepared.dmax
            sq = prepared.sq[start:stop] if prepared.sq is not None else None
        else:
            block = items[start:stop].float()
            if metric == "cosine":  # normalise before rounding: s^ is then a cosine directly
                block = block / block.norm(dim=1, keepdim=True).clamp_min(_EPS)
            xb = block.to(torch.bfloat16)
            bx, bd = _norm_bounds(block, xb)
            xmax, dmax = max(xmax, bx), max(dmax, bd)
            sq = (block * block).sum(dim=1) if metric == "l2" else None
        with _float32_accumulation(q.device):
            scores = qb @ xb.T
        if sq is not None:
            scores = scores.float() * 2.0 - sq
        vals, idx = _select_candidates(scores, n_cand, floor)
        idx = torch.where(idx >= 0, idx + start, idx)  # -1 marks padding
        best_v, best_i = _keep_best(best_v, best_i, vals, idx, n_cand)
        if best_v.shape[1] >= n_cand:  # the n_cand-th best so far bounds the final one below
            floor = best_v.amin(dim=1)
    assert best_v is not None and best_i is not None
    real = best_i >= 0  # (padding only where a row had < n_cand entries: not expected)
    # every non-candidate has s^ <= bound, the smallest kept approximate score
    bound = torch.where(real, best_v.float(), float("inf")).amin(dim=1)
    exact = _exact_candidate_scores(qx, items, best_i.clamp_min(0), metric)
    exact.masked_fill_(~real, float("-inf"))
    vals, idx = _order_rows(exact, best_i)
    ties_at_k = torch.zeros(n_q, dtype=torch.bool, device=q.device)
    if n_cand == n:
        ok = torch.ones(n_q, dtype=torch.bool, device=q.device)
    else:
        eps = _bf16_error_bound(qa, qb, xmax, dmax, bound, metric)
        ok = vals[:, k - 1] > bound + eps
        if n_cand > k:  # a tie at the k-th place is left to the float32 path's tie logic
            ties_at_k = vals[:, k] == vals[:, k - 1]
            ok &= ~ties_at_k
        ok &= real.sum(dim=1) > k  # the k-th and (k+1)-th are real candidates
    vals, idx = vals[:, :k].contiguous(), idx[:, :k].contiguous()
    if metric == "l2":
        vals = (vals - qx.square().sum(dim=1, keepdim=True) / 4.0).clamp_max(0.0)
        vals, idx = _order_rows(vals, idx)
    bad = torch.nonzero(~ok).flatten()
    n_retried = n_fallback = 0
    if bad.numel() and retry and n_cand < n and not bool(ties_at_k[bad].all()):
        # A dense stretch of scores near the k-th: once more on the bf16 route with a wider
        # margin (half the bytes of a float32 pass), only for these queries.
        wide = min(n - k, 4 * margin + 64)
        rv, ri, _, n_fallback = _topk_bf16(
            q[bad], items, k, metric, chunk_size, wide, prepared, retry=False
        )
        vals[bad], idx[bad], n_retried = rv, ri, int(bad.numel())
    elif bad.numel():
        # One failing query would be a (1 x d) product, which BLAS runs as a GEMV whose
        # rounding can differ per item position (identical rows one ulp apart); a 2-row GEMM
        # keeps the batched float32 path's numerics, so the fallback matches it.
        qf = q[bad] if bad.numel() > 1 else q[bad].expand(2, dim)
        fv, fi = _topk_torch(qf, items, k, metric, chunk_size)
        vals[bad], idx[bad] = fv[: bad.numel()], fi[: bad.numel()]
        n_fallback = int(bad.numel())
    return vals, idx, n_retried, n_fallback


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
        precision: ``"fp32"`` always scores everything in float32. ``"bf16"`` takes the bf16
            candidates + exact float32 rescoring route (results proven identical to the
            float32 top-k, else recomputed in float32; see :func:`_topk_bf16`). ``"auto"``
            (default) takes it only where it pays: at least :data:`BF16_MIN_QUERIES` queries
            and :data:`BF16_MIN_ITEMS` items, on a CUDA GPU with bf16 tensor cores (or a CPU
            with AMX/AVX512-BF16 when :data:`BF16_AUTO_CPU` is on; off, because converting
            the items on every call costs what the bf16 GEMM saves. :class:`Index` keeps a
            bf16 copy and takes the route on such CPUs: 1.5-2.6x FAISS at k=10-100 in
            ``bench/RESULTS.md``).
        margin: extra candidates per query on the bf16 route (default
            :func:`default_margin`); larger means fewer fallbacks but more rescoring.

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
    prepared: _BF16Items | None = None,
) -> tuple[Any, Any, TopkStats]:
    """Validation, device and route choice shared by :func:`topk` and :func:`topk_with_stats`.

    ``prepared`` (from :class:`Index`) is a bf16 copy of ``items``: with it the candidate route
    pays no conversion, and "auto" takes it on any CPU with fast bf16 (AMX / AVX512-BF16).
    """
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
    n_items = items2.shape[0]
    _check_k(k, n_items)
    if q2.shape[0] == 0:
        raise ValueError("queries is empty; pass at least one query vector")
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    n_q = q2.shape[0]

    if is_torch:
        dev = (
            _resolve_device(device)
            if device is not None
            else (items2.device if isinstance(items2, torch.Tensor) else q2.device)
        )
    elif device is None and n_q <= NUMPY_MAX_QUERIES:
        dev = torch.device("cpu")
    else:
        dev = _resolve_device(device)

    if not is_torch and dev.type == "cpu" and n_q <= NUMPY_MAX_QUERIES:
        if not np.isfinite(q2).all():
            raise ValueError("queries contain NaN or inf")
        s1, i1 = _topk_numpy_single(q2[0], items2, k, metric)
        return s1, i1, TopkStats("numpy", 1)

    qt = torch.as_tensor(q2).to(dev, torch.float32)
    if not bool(torch.isfinite(qt).all()):
        raise ValueError("queries contain NaN or inf")
    it = torch.as_tensor(items2).to(dev)  # no copy when already there; cast per chunk
    chunk_size_given = chunk_size
    if chunk_size is None:
        budget = CHUNK_BYTES_CPU if dev.type == "cpu" else CHUNK_BYTES_GPU
        chunk_size = max(1024, budget // (4 * n_q))
    m = default_margin(k) if margin is None else int(margin)
    fast_hw = _bf16_is_fast(dev) or (
        prepared is not None and dev.type == "cpu" and _cpu_has_fast_bf16()
    )
    use_bf16 = precision == "bf16" or (
        precision == "auto"
        and n_q >= BF16_MIN_QUERIES
        and n_items >= max(BF16_MIN_ITEMS, 4 * (k + m))
        and fast_hw
    )
    with torch.inference_mode():
        if use_bf16:
            if prepared is not None and chunk_size_given is None:
                budget = BF16_CHUNK_BYTES_CPU if dev.type == "cpu" else CHUNK_BYTES_GPU
                chunk_size = max(1024, budget // (2 * n_q))  # bf16 scores
            vals, idx, n_re, n_fb = _topk_bf16(qt, it, k, metric, int(chunk_size), m, prepared)
            stats = TopkStats("bf16", n_q, min(n_items, k + m), n_fb, n_re)
        else:
            vals, idx = _topk_torch(qt, it, k, metric, int(chunk_size))
            stats = TopkStats("fp32", n_q)
    if is_torch:
        return vals, idx, stats
    return vals.cpu().numpy(), idx.cpu().numpy(), stats


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
        if metric == "cosine":
            arr = arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), _EPS)
        self.ids = list(ids)
        self.encoder = encoder
        self.device = torch.device("cpu") if device is None else _resolve_device(device)
        self.items: np.ndarray | torch.Tensor = (
            arr if self.device.type == "cpu" else torch.from_numpy(arr).to(self.device)
        )
        self._bf16: _BF16Items | None = None  # made on the first large batch (see search_arrays)
        #: How the last :meth:`search_arrays` call ran (route, retried and fallback queries).
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
            q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), _EPS)
        if isinstance(self.items, torch.Tensor):
            s, i, self.last_stats = _topk_impl(
                torch.from_numpy(q), self.items, k, self._search_metric, None, None, "auto",
                None, self._prepared(q),
            )  # fmt: skip
            return s.cpu().numpy(), i.cpu().numpy()
        s, i, self.last_stats = _topk_impl(
            q, self.items, k, self._search_metric, "cpu", None, "auto", None, self._prepared(q)
        )
        return s, i

    def _prepared(self, q: np.ndarray) -> _BF16Items | None:
        """The bf16 copy for the exact candidate route, made once when a batch can use it."""
        n_q = 1 if q.ndim == 1 else q.shape[0]
        dev = self.device
        fast = _bf16_is_fast(dev) or (dev.type == "cpu" and _cpu_has_fast_bf16())
        if n_q < BF16_MIN_QUERIES or len(self) < BF16_MIN_ITEMS or not fast:
            return None
        if self._bf16 is None:
            items = torch.as_tensor(self.items)
            self._bf16 = _BF16Items.build(items, self._search_metric)
        return self._bf16

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
