"""The exact top-k engine behind :func:`recsys_kit.ranking.topk` and ``ranking.Index``.

**The answer is defined once.** Every route returns the top-k by the *canonical score*, the
float32 score of :func:`canonical_scores` (IEEE products, a sum in one fixed order, a correctly
rounded square root), ties broken by the lower item index. Its bits depend on nothing but the
inputs: not on the CPU's vector width, the BLAS, the thread count or the batch shape, so
identical items score identically and every machine gets the same answer (checked under
forced AVX2, generic-x86 and MKL-compatible kernels by ``make test``). A GEMM only proposes
candidates; it never decides the answer. The route (bf16 or float32 GEMM, a matrix-vector pass
for one query), the threads and the blocks change the speed, never the result.

**How** (:func:`candidate_topk`):

1. Approximate scores ``s^`` with a GEMM (bf16, or float32), block by block over the items;
   per query keep the ``K = k + margin`` best (:func:`select_candidates`; on the bf16 route
   on a CPU with numba, compiled, a tile at a time as on the int8 route below:
   :func:`_select_pool_bf16`).
2. Settle each query: with ``a_k`` its k-th approximate score and ``e`` the error bound
   (:func:`error_bound`: ``|s^ - canonical| <= e``, measured input rounding included), the
   k-th canonical score is ``>= a_k - e``, so an item with ``s^ < T = a_k - 2e`` can neither
   reach nor tie it (:func:`settle_threshold`). If the K-th kept score is below ``T``, every
   item at or above ``T`` is a candidate: score those canonically, order them (score desc,
   index asc), keep k. Exact.
3. A query the candidates do not settle (duplicates, near-ties, a dense cluster) takes the
   *threshold pass*: one more GEMM row over all items, keeping every item with ``s^ >= T``,
   scored canonically. Exact by construction, however many items tie.

**The int8 route** (CPU with exact int8 products, numba) computes ``s^`` as exact int32 sums
of int8 digits, in tiles that a compiled kernel selects from while they are in cache
(:func:`_select_pool_int8`). Each query starts from a floor estimated on a sample of items
(:func:`_int8_floor`, checked afterwards); its buffers keep every candidate within the bound
of its k-th score so far, so dense clusters settle without the threshold pass; for small k
one product per tile suffices, the second digit gathered for the few candidates that can
matter (:func:`_one_product_pool`). Rescoring runs in two steps, the top k by ``s^`` first,
so that only candidates within about ``e`` (not ``2e``) of ``a_k`` are scored
(:func:`_rescore_pool`).

**Threads** (CPU): the blocks run as tasks on single-threaded workers
(:func:`recsys_kit.device.run_tasks`) that take the next block when done: few, large parallel
regions, and no barrier per small op that a descheduled thread would hold up when another
process shares the machine; when one does, the blocks get smaller, so that the work moves to
whichever worker the system runs.

This module is over 600 lines because the engine's parts (bounds, selection, canonical
scoring, settling, the two passes) are one proof of exactness, best read together.

Example:
    >>> import numpy as np, torch
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> r = candidate_topk(torch.tensor([[1.0, 0.1]]), x, 2, "dot", kind="fp32")
    >>> r.indices.tolist()  # items 0 and 2 tie: the lower index first
    [[0, 2]]
"""

from __future__ import annotations

import contextlib
import mmap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from recsys_kit.device import run_tasks

__all__ = [
    "SELECT_GROUP",
    "CPU_BLOCK_BYTES",
    "GPU_BLOCK_BYTES",
    "CPU_GATHER_BYTES",
    "GPU_GATHER_BYTES",
    "COMPILED_MIN_WORK",
    "KINDS",
    "default_margin",
    "QueryNorms",
    "error_bound",
    "settle_threshold",
    "PreparedItems",
    "kth_largest",
    "select_candidates",
    "fixed_sum",
    "unit_rows",
    "canonical_scores",
    "order_rows",
    "block_topk",
    "EngineResult",
    "candidate_topk",
    "scan_topk",
]

_EPS = 1e-12
#: Unit roundoffs (round-to-nearest): bf16 keeps 8 significant bits, float32 24.
_U_BF16 = 2.0**-8
_U_FP32 = 2.0**-24
#: Group size of :func:`select_candidates` (16: measured fastest for K = 100-300 at Q = 256;
#: strided groups beat contiguous ones by 1.4-1.6x, measured).
SELECT_GROUP = 16
#: Score-block budget of one task on CPU. The selection costs about the same per block
#: whatever its width (~n_cand groups pass), so wide blocks pay: at Q=256, N=100k, k=100 one
#: thread took 529 / 468 / 339 / 263 ms with blocks of 4k / 8k / 16k / 32k items.
CPU_BLOCK_BYTES = 32 * 2**20
#: Score-block budget on an accelerator (one stream: larger blocks, fewer launches).
GPU_BLOCK_BYTES = 256 * 2**20
#: Gathered candidate rows per rescoring step (~1 MiB on CPU: stays in L2 for mul and sum).
CPU_GATHER_BYTES = 2**20
GPU_GATHER_BYTES = 64 * 2**20


#: The GEMMs that may propose candidates, and the relative rounding of their output: bf16
#: products come back rounded to bf16; float32 ones carry their accumulation error in the
#: slack; int8 ones are exact integers, scaled to float32 at the end (float64 products, one
#: float32 rounding).
KINDS: dict[str, float] = {
    "fp32": 0.0,
    "bf16": _U_BF16 / (1 - _U_BF16),
    "int8": _U_FP32 / (1 - _U_FP32) * (1 + 2.0**-20),
}
#: Weight of the int8 route's first digit for 384-d items (:func:`int8_base`).
INT8_BASE = 254
#: Items per int8 GEMM tile: its int32 scores (256 queries: 2 MiB) stay in cache for the
#: compiled selection (:func:`recsys_kit.topk_kernels.select_tile`) that follows.
INT8_TILE = 2048


def default_margin(k: int, kind: str = "bf16") -> int:
    """Candidates kept per query beyond k, by GEMM kind: ``max(16, k/4)`` after float32,
    ``max(32, 3k/4)`` after bf16, ``max(48, 2k)`` after int8 (its bound is ~1.6x bf16's;
    there the buffers keep every candidate within the bound of the k-th score anyway, and the
    margin only decides what a full buffer keeps when that is more than half of it).

    Why: a query is settled by its candidates when the K-th kept approximate score lies below
    ``a_k - 2e`` (``a_k`` the k-th approximate score, ``e`` the error bound: ~3e-4 for unit
    vectors in 384-d after float32, ~0.005 after bf16: ``2e`` is 0.0006 and 0.0095 measured on
    random unit vectors), so the margin must
    cover the items within ``2e`` of the k-th. Measured at N = 100k-1M, k = 10-100 on random
    and clustered unit vectors, ``3k/4`` left no query unsettled after bf16 (``k/2`` up to 4 %
    in dense clusters). An unsettled query costs one more GEMM row (the threshold pass).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown GEMM kind {kind!r}; use one of {sorted(KINDS)}")
    if kind == "int8":
        return max(48, 2 * k)
    return max(16, k // 4) if kind == "fp32" else max(32, 3 * k // 4)


# --------------------------------------------------------------------------------------------
# error bound of an approximate score against the canonical one
# --------------------------------------------------------------------------------------------
def _norm_inflation(dim: int) -> float:
    """Factor that turns a float32 norm of ``dim`` terms into an upper bound of the true one
    (``1 + 2 d w'`` with ``w' = 2^-23``: sums of squares and the square root, any order)."""
    return 1.0 + 2.0 * dim * 2.0 * _U_FP32


def _slack(dim: int) -> float:
    """Relative error terms besides the input and output roundings (relative to
    ``||q|| * max ||x||``; ~2.8e-4 for d = 384).

    With ``w = 2^-24`` and ``g = gamma_d = d w' / (1 - d w')``, ``w' = 2w`` so that accumulators
    that truncate (some tensor cores) or fuse pairs (AMX) are covered too: ``g (1 + u)^2`` for
    the approximate dot product (a product of two bf16 numbers is exact in float32), ``g`` for
    the canonical one, and ``4g + 64w`` for the norms, divisions
    and subtractions around them (cosine / l2). A ``2^-10`` relative slack covers evaluating
    the bound in floating point.
    """
    u, w = _U_BF16, 2.0 * _U_FP32
    g = dim * w / (1.0 - dim * w)
    return (g * (1 + u) ** 2 + g + 4 * g + 64 * _U_FP32) * (1.0 + 2.0**-10)


@dataclass(frozen=True)
class QueryNorms:
    """Per-query norms the bound needs (float32 (Q,), inflated to be upper bounds)."""

    qn: torch.Tensor  # ||q||
    qan: torch.Tensor  # ||q~||, the query as the GEMM saw it (rounded to bf16)
    dq: torch.Tensor  # ||q~ - q||

    @classmethod
    def of(cls, q: torch.Tensor, q_approx: torch.Tensor | None) -> QueryNorms:
        """From float32 queries ``q`` and what the GEMM used instead (``None``: ``q``
        itself). Computed in float64, so the differences and norms are exact enough."""
        infl = _norm_inflation(q.shape[1])
        qd = q.double()
        qn = (qd.norm(dim=1) * infl).float()
        if q_approx is None:
            return cls(qn, qn, torch.zeros_like(qn))
        qa = q_approx.double()
        return cls(qn, (qa.norm(dim=1) * infl).float(), ((qa - qd).norm(dim=1) * infl).float())

    def __getitem__(self, rows: torch.Tensor | slice) -> QueryNorms:
        return QueryNorms(self.qn[rows], self.qan[rows], self.dq[rows])


def error_bound(
    norms: QueryNorms,
    dim: int,
    xmax: float,
    dmax: float,
    bound: torch.Tensor,
    metric: str,
    kind: str,
) -> torch.Tensor:
    """Per-query ``eps``: an item whose approximate score is ``<= bound`` has a canonical
    score ``<= bound + eps``; symmetrically, a canonical score ``>= s^ - eps(|s^|)``.

    Derivation, for one query ``a`` (normalised for cosine) and an item ``x`` (the float32 row
    the GEMM's copy approximates), with ``^`` for what the GEMM used (rounded to bf16):
    ``a . x - a^ . x^ = -(a^ . (x^ - x)) - ((a^ - a) . x)``, so by
    Cauchy-Schwarz the inputs move a score by at most ``||a^|| max ||x^ - x|| + ||a^ - a||
    max ||x||``. Both error norms are *measured* (``dmax`` once per item matrix, ``||a^ - a||``
    per query) rather than bounded by the worst case: random bf16 rounding errors are about
    0.4 u in norm, ~2.5x tighter than ``(2u + u^2) ||a|| ||x||``. The output: a bf16 GEMM
    returns ``s^`` rounded to bf16, ``|s^ - r| <= u/(1-u) |s^|``, at most that at ``|B|`` for
    ``s^ <= B`` (:data:`KINDS` has each kind's rounding). The rest is :func:`_slack`. For l2
    the engine ranks ``s^ = 2 r^ - ||x||^2`` with the dot product ``r`` approximated: twice
    the dot error, the output rounding ``2 |r^ - r| <= u (|s^| + ||x||^2)``, and the float32
    squared norms. Denormals may be flushed to zero (DAZ/FTZ): a tiny absolute term.

    Args:
        norms: the queries' :class:`QueryNorms` (the *undoubled* query for l2).
        dim: the dimension.
        xmax, dmax: upper bounds of ``max ||x||`` and ``max ||x^ - x||`` over all items.
        bound: (Q,) the approximate score at which to bound.
        metric: ``"cosine"``, ``"dot"`` or ``"l2"``.
        kind: the GEMM, a key of :data:`KINDS`.

    Returns:
        (Q,) float32 ``eps``.
    """
    u = KINDS[kind]
    qn, qan, dq = norms.qn, norms.qan, norms.dq
    tiny = dim * 2.0**-118
    dot_err = qan * dmax + dq * xmax + _slack(dim) * qn * xmax
    if metric == "l2":
        g = dim * 2.0 * _U_FP32
        # s^ = 2 r^ - ||x||^2 with |r^ - r| <= u |r^| = u |s^ + ||x||^2| / 2
        out = u * (1 + g) * (bound.abs() + xmax * xmax)
        sq_err = (8 * g + 64 * _U_FP32) * xmax * xmax  # ||x||^2 sums and the subtraction
        eps = 2 * dot_err + out + sq_err + tiny * (1 + qn) * (1 + xmax) ** 2
    else:
        out = u * bound.abs()
        eps = dot_err + out + tiny * (1 + qn) * (1 + xmax)
    return eps * (1.0 + 2.0**-10)


def settle_threshold(
    value: torch.Tensor,
    norms: QueryNorms,
    dim: int,
    xmax: float,
    dmax: float,
    metric: str,
    kind: str,
    n_eps: int = 1,
) -> torch.Tensor:
    """Per query, ``T = value - n_eps * e``: an item with ``s^ < T`` has a canonical score
    below ``value - (n_eps - 1) e``.

    ``e = eps(|value|) / (1 - 2.5 u)`` (:func:`error_bound`; it grows with ``|s^|`` at a slope
    below ``u``, so for ``|s^| <= |value| + n_eps e`` the bound is still below ``e``).
    Two uses: ``value = c_k``, the k-th canonical score among some candidates (a lower bound
    of the true k-th), ``n_eps = 1``: items below ``T`` cannot reach or tie the top k; and
    ``value = a_k``, the k-th approximate score, ``n_eps = 2``: the k-th canonical score is
    ``>= a_k - e``, so items below ``T`` cannot either. Evaluated in float64, rounded down.
    """
    u = KINDS[kind]
    eps = error_bound(norms, dim, xmax, dmax, value.abs(), metric, kind).cpu().double()
    t = (value.cpu().double() - n_eps * eps / (1.0 - 2.5 * u)).float()
    return torch.nextafter(t, torch.full_like(t, float("-inf"))).to(value.device)


# --------------------------------------------------------------------------------------------
# items prepared once (Index): the GEMM's copy and its bounds
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PreparedItems:
    """Items made ready for one kind of candidate GEMM once (by ``ranking.Index``).

    Converting (and, for cosine, normalising) the items costs about as much as a fast GEMM
    itself, so an index that answers many batches keeps the copy instead of redoing it.
    """

    kind: str  # "fp32", "bf16" or "int8"
    low: torch.Tensor  # (N, d): what the GEMM reads (cosine: from unit rows; int8: digit 1)
    exact: torch.Tensor  # (N, d) float32 items as given, scored canonically
    xmax: float  # upper bound of the norms of the float32 rows ``low`` approximates
    dmax: float  # upper bound of ||x^ - x|| over the rows (0 for float32)
    sq: torch.Tensor | None  # (N,) float32 squared norms (l2 only)
    low2: torch.Tensor | None = None  # int8: the second digit (N, d)
    scale: float = 1.0  # int8: x^ = scale * (low + low2 / base)
    base: int = 0  # int8: the first digit's weight
    x2max: float = 0.0  # int8: an upper bound of the second digits' norms ||x2||

    @classmethod
    def build(cls, items: torch.Tensor, metric: str, kind: str = "bf16") -> PreparedItems:
        """Prepare float ``items`` (N, d) for ``metric`` and GEMM ``kind``."""
        exact = items.float()
        if kind == "int8":
            if metric == "l2":
                raise ValueError("the int8 route ranks dot products: use it for dot or cosine")
            return _int8_items(exact, metric)
        low, xmax, dmax, sq = _approx_rows(exact, metric, kind)
        return cls(kind, low, exact, xmax, dmax, sq)


def int8_base(dim: int) -> int:
    """The int8 route's first-digit weight for ``dim``: :data:`INT8_BASE`, smaller where the
    int32 score ``base * (q1 . x1) + q1 . x2`` could come within 2^24 of the int32 limits
    (``|.| <= 127 (127 base + base / 2) dim <= 2^31 - 2^24``: 254 up to d = 518; the engine
    marks "no score" below that)."""
    fit = int((2**31 - 2**24) // (127 * 127.5 * max(1, dim)))
    return max(2, min(INT8_BASE, fit - fit % 2))


def _int8_items(exact: torch.Tensor, metric: str, block: int = 8192) -> PreparedItems:
    """Items as two int8 digits: ``x^ = s (x1 + x2 / base)`` with one scale ``s`` for all
    (``max |x| / 127``), so a query's int32 scores compare across items without rescaling;
    ``|x^ - x| <= s / (2 base)`` per coordinate, and ``max ||x^ - x||`` is measured (float64)."""
    x = exact
    if metric == "cosine":
        x = x / x.norm(dim=1, keepdim=True).clamp_min(_EPS)
    n, dim = x.shape
    infl = _norm_inflation(dim)
    top = float(x.abs().max()) if x.numel() else 0.0
    scale = top / 127.0 if top > 0 else 1.0
    base = int8_base(dim)
    x1, x2 = _huge_page_empty(n * dim).view(n, dim), _huge_page_empty(n * dim).view(n, dim)
    xmax = dmax = x2max = 0.0
    for a in range(0, n, block):
        xd = x[a : a + block].double()
        xs = xd / scale
        d1 = torch.round(xs).clamp_(-127, 127)
        d2 = torch.round((xs - d1) * base).clamp_(-127, 127)
        x1[a : a + block] = d1.to(torch.int8)
        x2[a : a + block] = d2.to(torch.int8)
        xhat = (d1 + d2 / base) * scale
        xmax = max(xmax, float(xd.norm(dim=1).max()))
        dmax = max(dmax, float((xhat - xd).norm(dim=1).max()))
        x2max = max(x2max, float(d2.norm(dim=1).max()))  # integers: exact sums, one sqrt
    return PreparedItems("int8", x1, exact, xmax * infl, dmax * infl, None, x2, scale, base,
                         x2max * (1 + 2.0**-40))  # fmt: skip


def _huge_page_empty(size: int) -> torch.Tensor:
    """An int8 tensor of ``size`` elements in memory the kernel may back with 2 MiB pages
    (``MADV_HUGEPAGE``, where Linux has transparent huge pages set to ``madvise``): rows read
    at random addresses (the second digits) then miss the TLB far less (measured ~20 % faster
    gathers). Plain memory elsewhere."""
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is None or size < 2**21:
        return torch.empty(size, dtype=torch.int8)
    buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    with contextlib.suppress(OSError):  # advice refused: plain pages
        buf.madvise(advice)
    return torch.from_numpy(np.frombuffer(buf, dtype=np.int8))  # keeps buf alive


def _approx_rows(
    x: torch.Tensor, metric: str, kind: str
) -> tuple[torch.Tensor, float, float, torch.Tensor | None]:
    """Rows as a ``kind`` GEMM reads them: ``(low, xmax, dmax, sq)``."""
    if metric == "cosine":  # normalise before rounding: s^ is then a cosine directly
        x = x / x.norm(dim=1, keepdim=True).clamp_min(_EPS)
    infl = _norm_inflation(x.shape[1])
    xmax = float(torch.linalg.vector_norm(x, dim=1).max()) * infl if len(x) else 0.0
    sq = (x * x).sum(dim=1) if metric == "l2" else None
    if kind == "fp32":
        return x, xmax, 0.0, sq
    xb = x.to(torch.bfloat16)  # the difference below is exact in float32 (Sterbenz)
    dmax = float(torch.linalg.vector_norm(xb.float() - x, dim=1).max()) * infl if len(x) else 0.0
    return xb, xmax, dmax, sq


# --------------------------------------------------------------------------------------------
# selection of candidates from a block of approximate scores
# --------------------------------------------------------------------------------------------
def kth_largest(x: torch.Tensor, kth: int) -> torch.Tensor:
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


def select_candidates(
    scores: torch.Tensor, n_cand: int, floor: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Per row, every column whose value may be among the row's ``n_cand`` largest.

    Returns ``(vals, cols, t)``: (R, W) with ``W >= n_cand`` typically close to it (a row with
    fewer entries is padded with ``-inf`` / column ``-1``), and ``t`` (R,), a lower bound of
    each row's ``n_cand``-th largest value (``None`` when the block has fewer columns). Every
    column left out has a value ``<=`` the row's ``n_cand``-th largest *and* (if given)
    ``< floor``: the caller passes as ``floor`` a lower bound of the ``n_cand``-th largest
    value over all blocks so far.

    Why not ``torch.topk`` alone: on CPU its cost grows with ``n_cand`` and, at k = 100, it
    cost more than the bf16 GEMM it follows. Here the columns are cut into ``G`` strided
    groups of ``g`` (group ``j`` = columns ``j, j + G, j + 2G, ...``, so the max over groups is
    a vectorised elementwise max over ``g`` contiguous slices). ``t`` = the ``n_cand``-th
    largest group max is a lower bound of the ``n_cand``-th largest value (``n_cand`` groups
    have a max ``>= t``), so only values ``>= t`` (and ``>= floor``) can matter, and they lie
    in groups whose max is ``>= t``: a partition, a compare on the ``G`` maxima and a gather of
    their members replace a top-k over all columns (measured 3-4x faster at k = 100).
    """
    n_rows, n_cols = scores.shape
    g = SELECT_GROUP
    n_groups = n_cols // g
    if n_groups < 2 * n_cand:  # too few groups for the two-step selection to pay
        vals, cols = torch.topk(scores, min(n_cand, n_cols), dim=1, sorted=False)
        return vals, cols, (vals.amin(dim=1) if n_cols >= n_cand else None)
    main = scores[:, : n_groups * g].view(n_rows, g, n_groups)
    gmax = main.amax(dim=1)
    t = kth_largest(gmax, n_cand)
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
    vals, cols = _pad_rows(r, v, c, n_rows)
    return vals, cols, t


def _pad_rows(
    r: torch.Tensor, v: torch.Tensor, c: torch.Tensor, n_rows: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scatter ``(row, value, column)`` triples, sorted by row, into (R, W) padded rows."""
    counts = torch.bincount(r, minlength=n_rows)
    width = max(1, int(counts.max())) if r.numel() else 1
    pos = torch.arange(r.numel(), device=r.device) - (torch.cumsum(counts, 0) - counts)[r]
    vals = torch.full((n_rows, width), float("-inf"), dtype=v.dtype, device=v.device)
    cols = torch.full((n_rows, width), -1, dtype=torch.int64, device=v.device)
    vals[r, pos] = v
    cols[r, pos] = c
    return vals, cols


# --------------------------------------------------------------------------------------------
# canonical scores and ordering
# --------------------------------------------------------------------------------------------
def fixed_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over the last dimension in one fixed order, *in place* (``x`` is overwritten).

    A pairwise tree of elementwise adds (halves folded onto each other: ``w -> ceil(w/2)``),
    so the order of the additions depends on nothing but the length: not on the CPU's vector
    width, the library's kernel, the thread count or the device. Each add is one IEEE-rounded
    operation, so the result has the same bits on every machine (``torch.sum`` does not: its
    vectorised accumulators follow the SIMD width, so AVX2 and AVX-512 round differently).

    Args:
        x: (..., w) float tensor, contiguous in its last dimension; used as scratch space.

    Returns:
        (...,) the sums (a new tensor).

    Example:
        >>> fixed_sum(torch.tensor([[1.0, 2.0, 3.0]])).tolist()
        [6.0]
    """
    w = x.shape[-1]
    while w > 1:
        h = (w + 1) // 2
        x[..., : w - h] += x[..., h:w]
        w = h
    return x[..., 0].clone()


def unit_rows(x: torch.Tensor, block: int = 4096) -> torch.Tensor:
    """``x`` (n, d) float32 divided by its row norms (:func:`fixed_sum` of squares, so the same
    bits everywhere), ``block`` rows at a time; a zero row stays zero.

    Example:
        >>> unit_rows(torch.tensor([[3.0, 4.0], [0.0, 0.0]])).tolist()
        [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    out = torch.empty_like(x)
    for a in range(0, x.shape[0], block):
        xb = x[a : a + block]
        torch.div(xb, _sqrt(fixed_sum(xb * xb)).clamp_min_(_EPS)[:, None], out=out[a : a + block])
    return out


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    """Correctly rounded float32 square root. torch's float32 ``sqrt`` on CPU goes through
    MKL's vector math, accurate to an ulp but not correctly rounded (and rounding differently
    under ``MKL_CBWR``); a float64 root rounded to float32 is (double has >= 2p + 2 bits)."""
    if x.device.type == "mps":  # no float64 there
        return x.cpu().double().sqrt_().float().to(x.device)
    return x.double().sqrt_().float()


def canonical_scores(
    rows: torch.Tensor, q: torch.Tensor, metric: str, work: torch.Tensor | None = None
) -> torch.Tensor:
    """The canonical float32 score of item rows against queries, over the last dimension.

    ``rows`` (..., d) float32 items; ``q`` broadcastable to it: queries as scored (unit rows
    for cosine, from :func:`unit_rows`; *doubled* for l2: the score is ``2 q.x - ||x||^2``,
    and ``||q||^2`` is subtracted from the final top-k only). Elementwise IEEE products, the
    fixed-order :func:`fixed_sum`, a correctly rounded square root and division: every route,
    batch shape, thread count and machine gets the same bits, and identical rows the same
    score (a GEMM or GEMV reduces row positions in different orders: identical rows one ulp
    apart, on some CPUs). ``work``: a contiguous buffer shaped like ``rows`` for the products.

    Example:
        >>> canonical_scores(torch.ones(2, 3), torch.ones(1, 3), "dot").tolist()
        [3.0, 3.0]
    """
    shape = torch.broadcast_shapes(rows.shape, q.shape)
    if work is None:
        work = torch.empty(shape, dtype=torch.float32, device=rows.device)
    sc = fixed_sum(torch.mul(rows, q, out=work))
    if metric == "dot":
        return sc
    sq = fixed_sum(torch.mul(rows, rows, out=work) if rows.shape == shape else rows * rows)
    if metric == "cosine":
        return sc / _sqrt(sq).clamp_min_(_EPS)
    return sc - sq


def order_rows(vals: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row by (score descending, index ascending) with two stable sorts."""
    idx, perm = torch.sort(idx, dim=1, stable=True)
    vals = torch.gather(vals, 1, perm)
    vals, perm = torch.sort(vals, dim=1, descending=True, stable=True)
    return vals, torch.gather(idx, 1, perm)


def block_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row of a score block, best first, ties at the k-th place resolved
    towards the lower column (for score matrices already computed, e.g. by a recommender).

    Example:
        >>> block_topk(torch.tensor([[0.5, 0.9, 0.5]]), 2)[1].tolist()
        [[1, 0]]
    """
    n = scores.shape[1]
    if k >= n:
        idx = torch.arange(n, device=scores.device).expand(scores.shape[0], n)
        return order_rows(scores, idx.contiguous())
    # One extra column tells, per row, whether the k-th place is tied (then torch's choice of
    # which tied column to keep is arbitrary and must be redone).
    vals, idx = torch.topk(scores, k + 1, dim=1, sorted=True)
    tied = vals[:, k] == vals[:, k - 1]
    vals, idx = vals[:, :k].contiguous(), idx[:, :k].contiguous()
    for r in torch.nonzero(tied).flatten().tolist():
        row, t = scores[r], vals[r, k - 1]
        above = torch.nonzero(row > t).flatten()
        equal = torch.nonzero(row == t).flatten()[: k - above.numel()]
        sel = torch.cat([above, equal])
        idx[r] = sel
        vals[r] = row[sel]
    return order_rows(vals, idx)


#: Products below which candidates are rescored by torch even with numba installed: a small
#: search (a notebook's few queries) then never imports numba (~0.3 s) or compiles (~1 s).
COMPILED_MIN_WORK = 2**22


def _compiled_rescoring(qx: torch.Tensor, items: torch.Tensor, n_pairs: int) -> bool:
    """Whether :func:`recsys_kit.topk_kernels.canonical_pairs` should score ``n_pairs``
    (query, candidate) pairs (large enough, CPU float32 tensors, items C-contiguous, numba)."""
    if n_pairs * qx.shape[-1] < COMPILED_MIN_WORK:
        return False
    from recsys_kit.jit import numba_available

    return (
        numba_available()
        and qx.device.type == "cpu"
        and items.device.type == "cpu"
        and qx.dtype == torch.float32
        and items.dtype == torch.float32
        and items.is_contiguous()
    )


def _score_candidates(
    qx: torch.Tensor,
    items: torch.Tensor,
    cand: torch.Tensor,
    need: torch.Tensor,
    metric: str,
) -> torch.Tensor:
    """Canonical scores of each query's candidate rows (Q, C) where ``need`` (-inf elsewhere),
    by torch; ``cand`` >= 0 (the compiled route: :func:`_score_rows`).

    The rows are gathered (``index_select``: row memcpy, ~4x faster than fancy indexing) into
    one reused buffer, a block of queries at a time, sized (~1 MiB on CPU) to stay in the L2
    cache for the product and the sum that follow (2x faster than 4 MiB blocks).
    """
    n_q, n_c = cand.shape
    dim = qx.shape[1]
    out = torch.empty((n_q, n_c), dtype=torch.float32, device=qx.device)
    block = CPU_GATHER_BYTES if qx.device.type == "cpu" else GPU_GATHER_BYTES
    step = max(1, block // max(1, n_c * dim * 4))
    size = min(step, n_q) * n_c
    buf = torch.empty((size, dim), dtype=items.dtype, device=qx.device)
    work = torch.empty((size, dim), dtype=torch.float32, device=qx.device)
    for s in range(0, n_q, step):
        blk = cand[s : s + step]
        p = blk.numel()
        rows = torch.index_select(items, 0, blk.reshape(-1), out=buf[:p]).float()
        out[s : s + step] = canonical_scores(
            rows.view(blk.shape[0], n_c, dim), qx[s : s + step, None, :], metric,
            work[:p].view(blk.shape[0], n_c, dim),
        )  # fmt: skip
    return out.masked_fill_(~need, float("-inf"))


# --------------------------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------------------------
@dataclass
class EngineResult:
    """What :func:`candidate_topk` returns: the answer and how it was found."""

    scores: torch.Tensor  # (Q, k) float32, best first
    indices: torch.Tensor  # (Q, k) int64
    n_candidates: int  # K, candidates kept per query (those at or above T are rescored)
    n_threshold: int  # queries finished by the threshold pass
    threads: int  # CPU workers used (1 on an accelerator)


@contextlib.contextmanager
def _float32_accumulation(dev: torch.device) -> Iterator[None]:
    """Make cuBLAS keep float32 partial sums in bf16 GEMMs for the duration (then restore).

    By default (``allow_bf16_reduced_precision_reduction``) cuBLAS may reduce split-K partial
    sums in bf16, which :func:`error_bound` does not cover. The flag is process-global: another
    thread's bf16 GEMMs meanwhile also accumulate in float32 (more exact, never less).
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


class _Plan:
    """The per-call state shared by the tasks: the queries in their forms, the items as the
    GEMM reads them (prepared, or converted block by block), and the bounds found so far."""

    def __init__(
        self,
        q: torch.Tensor,
        items: torch.Tensor,
        metric: str,
        kind: str,
        prepared: PreparedItems | None,
    ) -> None:
        self.metric, self.kind, self.prepared = metric, kind, prepared
        self.qx = unit_rows(q) if metric == "cosine" else (q * 2.0 if metric == "l2" else q)
        self.qa = q if metric == "l2" else self.qx  # what the GEMM approximates (l2: undoubled)
        if kind == "bf16":
            self.qlow = self.qa.to(torch.bfloat16)
            self.norms = QueryNorms.of(self.qa, self.qlow.float())
        elif kind == "int8":  # q^ = s_q q1, one scale per query: the int32 scores keep order
            assert prepared is not None and prepared.low2 is not None
            qd = self.qa.double()
            s_q = qd.abs().amax(dim=1) / 127.0
            s_q = torch.where(s_q > 0, s_q, torch.ones_like(s_q))
            q1 = torch.round(qd / s_q[:, None]).clamp_(-127, 127)
            self.qlow = q1.to(torch.int8).contiguous()
            self.norms = QueryNorms.of(self.qa, q1 * s_q[:, None])
            self.scale = s_q * prepared.scale / prepared.base  # score = scale * int32 score
            # |q1 . x2| <= ||q1|| max ||x2|| (Cauchy-Schwarz), as an integer
            self.bq = torch.ceil(q1.norm(dim=1) * prepared.x2max * (1 + 2.0**-40)).long()
        else:
            self.qlow, self.norms = self.qa, QueryNorms.of(self.qa, None)
        self.items = items
        self.exact = prepared.exact if prepared is not None else items
        self.xmax = prepared.xmax if prepared is not None else 0.0
        self.dmax = prepared.dmax if prepared is not None else 0.0
        self.lock = threading.Lock()

    def block(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Items ``start:stop`` as the GEMM reads them, and their squared norms (l2)."""
        p = self.prepared
        if p is not None:
            return p.low[start:stop], (p.sq[start:stop] if p.sq is not None else None)
        low, xmax, dmax, sq = _approx_rows(self.items[start:stop].float(), self.metric, self.kind)
        with self.lock:
            self.xmax, self.dmax = max(self.xmax, xmax), max(self.dmax, dmax)
        return low, sq

    def approx(self, rows: torch.Tensor | slice, start: int, stop: int) -> torch.Tensor:
        """Approximate scores (float32, or bf16 from a bf16 GEMM without l2) of queries
        ``rows`` against items ``start:stop``."""
        if self.kind == "int8":
            return self.to_float(self.int_scores(self.qlow[rows], start, stop), rows)
        xl, sq = self.block(start, stop)
        ql = self.qlow[rows]
        with _float32_accumulation(ql.device):
            s = ql @ xl.T
        if sq is not None:
            s = s.float() * 2.0 - sq
        return s

    def int_scores(self, q1: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """int8 route: the exact int32 scores ``base (q1 . x1) + q1 . x2`` of int8 queries
        against items ``start:stop`` (:func:`int8_base` keeps them within int32)."""
        p = self.prepared
        assert p is not None and p.low2 is not None
        a = torch._int_mm(q1, p.low[start:stop].T)
        return a.mul_(p.base).add_(torch._int_mm(q1, p.low2[start:stop].T))

    def to_float(self, s: torch.Tensor, rows: torch.Tensor | slice) -> torch.Tensor:
        """int8 route: int scores of queries ``rows`` as float32 approximate scores."""
        return (s.double() * self.scale[rows, None]).float()

    def float_of(self, s: np.ndarray | torch.Tensor) -> torch.Tensor:
        """int8 route: one int score per query (Q,) as float32 approximate scores."""
        return self.to_float(torch.as_tensor(s)[:, None], slice(None))[:, 0]

    def int_below(self, value: torch.Tensor) -> torch.Tensor:
        """int8 route: per query, an int64 score whose float is at or below ``value`` (Q,)."""
        return torch.floor(value.double() / self.scale).long() - 1

    def threshold(
        self, rows: torch.Tensor | slice, value: torch.Tensor, n_eps: int
    ) -> torch.Tensor:
        dim = self.qa.shape[1]
        return settle_threshold(value, self.norms[rows], dim, self.xmax, self.dmax,
                                self.metric, self.kind, n_eps)  # fmt: skip


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def candidate_topk(
    q: torch.Tensor,
    items: torch.Tensor,
    k: int,
    metric: str,
    *,
    kind: str = "fp32",
    chunk_size: int | None = None,
    margin: int | None = None,
    prepared: PreparedItems | None = None,
    threads: int = 1,
    blocks_per_worker: int = 2,
) -> EngineResult:
    """Exact top-k (canonical scores, ties by lower index) via GEMM candidates.

    Args:
        q: (Q, d) float32 queries on the compute device.
        items: (N, d) items on the same device (any float dtype; cast per block).
        k: results per query, ``1 <= k <= N``.
        metric: ``"cosine"``, ``"dot"`` or ``"l2"``.
        kind: the candidate GEMM: ``"fp32"``, ``"bf16"`` or ``"int8"`` (CPU, dot or cosine,
            with numba: two int8 digits per item, exact int32 scores, compiled selection).
        chunk_size: items per block (``None``: from :data:`CPU_BLOCK_BYTES` /
            :data:`GPU_BLOCK_BYTES`).
        margin: candidates kept per query beyond k (default :func:`default_margin`).
        prepared: ``items`` prepared by :meth:`PreparedItems.build` for the same ``kind``.
        threads: CPU workers (:func:`recsys_kit.device.run_tasks`); ignored on accelerators.
        blocks_per_worker: at least this many item blocks per worker when there are enough
            items: more, smaller blocks when other processes hold cores, so that the work
            moves to whichever worker the system runs.

    Returns:
        An :class:`EngineResult`.
    """
    n_q, n = q.shape[0], items.shape[0]
    dev = q.device
    tiles = kind == "int8" or _compiled_bf16(kind, dev, metric)  # per-worker tile buffers
    if tiles and n_q > INT8_MAX_QUERIES:  # bounded buffers: queries in turns
        parts = [candidate_topk(q[a:b], items, k, metric, kind=kind, chunk_size=chunk_size,
                                margin=margin, prepared=prepared, threads=threads,
                                blocks_per_worker=blocks_per_worker)
                 for a, b in _chunks(n_q, INT8_MAX_QUERIES)]  # fmt: skip
        return EngineResult(torch.cat([r.scores for r in parts]),
                            torch.cat([r.indices for r in parts]), parts[0].n_candidates,
                            sum(r.n_threshold for r in parts), parts[0].threads)  # fmt: skip
    m = default_margin(k, kind) if margin is None else int(margin)
    n_cand = min(n, k + m)
    if kind == "int8" and (prepared is None or prepared.kind != "int8"):
        prepared = PreparedItems.build(items, metric, "int8")
    plan = _Plan(q, items, metric, kind, prepared)
    threads = max(1, int(threads)) if dev.type == "cpu" else 1
    if chunk_size is None:
        chunk_size = _block_size(n_q, n, n_cand, metric, kind, dev, threads, blocks_per_worker)
    blocks = _chunks(n, int(chunk_size))

    # 1. candidates, block by block
    # (left: a bound of the approximate scores of the items not in the pool; -inf: none)
    # one selection state per worker: fewer, larger tasks than the float routes' blocks
    parts = threads * max(1, blocks_per_worker // 2)
    if kind == "int8":
        vals, cand, a_k, left = _select_pool_int8(plan, n, k, n_cand, parts, threads)
    elif tiles:
        vals, cand, left = _select_pool_bf16(plan, n, n_cand, parts, threads)
        a_k = vals[:, k - 1]
    else:
        vals, cand = _select_pool(plan, blocks, n_cand, threads, dev)
        a_k = vals[:, k - 1]
        left = vals[:, -1] if n_cand < n else torch.full_like(a_k, float("-inf"))

    # 2. rescore each query's candidates down to t_a (>= a_k - 2e): every item that can reach
    # its k-th canonical score is there, if the pool reaches that far
    out_v, out_i, t_a = _rescore_pool(plan, vals, cand, a_k, k, threads, dev)

    # 3. settle: with c_k the k-th canonical score found, items with s^ < T = c_k - e cannot
    # reach the top k; if every item left out of the pool is below T (and every candidate at
    # or above T was rescored), the answer is exact. Else the threshold pass (both T and
    # a_k - 2e are valid floors: the higher one).
    t = plan.threshold(slice(None), out_v[:, k - 1], n_eps=1)
    ok = (left < t) & (t >= t_a)
    bad = torch.nonzero(~ok).flatten()
    if bad.numel():
        out_v[bad], out_i[bad] = _threshold_pass(plan, bad, torch.maximum(t, t_a)[bad], k,
                                                 blocks, threads)  # fmt: skip
    if metric == "l2":  # negative squared distance, clamped at 0 (rounding can give tiny > 0)
        out_v = (out_v - fixed_sum(plan.qx.square())[:, None] / 4.0).clamp_max(0.0)
        out_v, out_i = order_rows(out_v, out_i)
    return EngineResult(out_v, out_i, n_cand, int(bad.numel()), threads)


def _block_size(
    n_q: int,
    n: int,
    n_cand: int,
    metric: str,
    kind: str,
    dev: torch.device,
    threads: int,
    blocks_per_worker: int,
) -> int:
    """Items per block: the device's score budget (:data:`CPU_BLOCK_BYTES` /
    :data:`GPU_BLOCK_BYTES`) for ``n_q`` queries, within the bounds below."""
    budget = CPU_BLOCK_BYTES if dev.type == "cpu" else GPU_BLOCK_BYTES
    per_item = n_q * (2 if kind == "bf16" and metric != "l2" else 4)
    # wide enough for the group selection (>= 2 n_cand groups), and >= blocks_per_worker
    # blocks per worker when there are enough items (a held-up worker delays one block)
    chunk_size = max(budget // per_item, 40 * n_cand, 4096)
    per_worker = -(-n // (max(1, blocks_per_worker) * threads))
    chunk_size = min(chunk_size, max(40 * n_cand, 4096, per_worker))
    return -(-chunk_size // SELECT_GROUP) * SELECT_GROUP  # no ragged tail to sort


def _select_pool(
    plan: _Plan, blocks: list[tuple[int, int]], n_cand: int, threads: int, dev: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Phase 1 of :func:`candidate_topk`: each query's ``n_cand`` best approximate scores over
    all blocks, sorted (descending), and their items (-1: padding, scored -inf)."""
    # ``floor`` (a lower bound of each query's n_cand-th approximate score so far) lets later
    # blocks skip more
    state: dict[str, torch.Tensor | None] = {"floor": None}

    def select(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = plan.approx(slice(None), start, stop)
        vals, cols, t = select_candidates(s, n_cand, state["floor"])
        if t is not None:
            with plan.lock:
                f = state["floor"]
                state["floor"] = t if f is None else torch.maximum(f, t.to(f.dtype))
        return vals, torch.where(cols >= 0, cols + start, cols)

    parts = _run([lambda a=a, b=b: select(a, b) for a, b in blocks], threads, dev)
    vals = torch.cat([p[0].float() for p in parts], dim=1)
    cand = torch.cat([p[1] for p in parts], dim=1)
    # the n_cand best, sorted: every item not kept has s^ <= the last kept (padding: -inf)
    vals, pos = torch.topk(vals, min(n_cand, vals.shape[1]), dim=1, sorted=True)
    cand = torch.gather(cand, 1, pos)
    return vals, cand


def _compiled_bf16(kind: str, dev: torch.device, metric: str) -> bool:
    """Whether the bf16 route selects with :func:`_select_pool_bf16` (CPU, numba, dot or
    cosine: the GEMM's bf16 output is the score; l2 adds float32 norms to it)."""
    from recsys_kit.jit import numba_available

    return kind == "bf16" and dev.type == "cpu" and metric != "l2" and numba_available()


def _select_pool_bf16(
    plan: _Plan, n: int, n_cand: int, n_parts: int, threads: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Phase 1 of :func:`candidate_topk` on the bf16 route on CPU: :func:`_select_pool`'s
    answer, computed as the int8 route does (:func:`_int8_select`, ``digits=0``): the bf16
    scores of a tile, still in cache, selected by compiled code from a floor estimated on a
    sample (:func:`_bf16_floor`). Measured on one worker at Q=256, N=100k: 9-11 ms of
    selection against 33-75 ms for :func:`select_candidates` at k = 10-100.

    Returns:
        ``(vals, cand, left)``: each query's ``n_cand`` best approximate scores, sorted
        (descending), their items (-1: padding, scored -inf), and a bound of the approximate
        scores of every item not kept (-inf: none).
    """
    from recsys_kit.topk_kernels import bf16_of_keys

    floor0 = _bf16_floor(plan, n, n_cand, threads)
    keys, cols, left = _int8_select(plan, plan.qlow, floor0, n, n_cand, n_parts, threads, n_cand,
                                    slice(None), 0)  # fmt: skip
    # a query the floor estimate cut short of n_cand candidates: again, without it (rare)
    short = (cols >= 0).sum(dim=1) < min(n_cand, n) if floor0 is not None else None
    redo = torch.nonzero(short).flatten() if short is not None else torch.zeros(0, dtype=torch.long)
    if redo.numel():
        rk, rc, rl = _int8_select(plan, plan.qlow[redo], None, n, n_cand, n_parts, threads,
                                  n_cand, redo, 0)  # fmt: skip
        width = max(keys.shape[1], rk.shape[1])
        keys, cols = _pad_to(keys, width, _INT32_MIN), _pad_to(cols, width, -1)
        keys[redo], cols[redo] = _pad_to(rk, width, _INT32_MIN), _pad_to(rc, width, -1)
        left[redo] = rl
    vals = torch.from_numpy(bf16_of_keys(keys.numpy())).masked_fill_(cols < 0, float("-inf"))
    vals, pos = torch.topk(vals, min(n_cand, vals.shape[1]), dim=1, sorted=True)
    cand = torch.gather(cols, 1, pos)
    fleft = torch.from_numpy(bf16_of_keys(left.numpy())).masked_fill_(left <= _INT32_MIN, -np.inf)
    if vals.shape[1] >= n_cand and n_cand < n:  # the ones the top n_cand leaves out
        fleft = torch.maximum(fleft, vals[:, -1])
    return vals, cand, fleft


def _bf16_floor(plan: _Plan, n: int, n_cand: int, threads: int) -> torch.Tensor | None:
    """bf16 route: per query, the order key (``topk_kernels.bf16_keys``) of an estimate of its
    ``n_cand``-th largest bf16 score, from evenly spaced items as :func:`_int8_floor` (no
    lowering: the pool only has to hold the ``n_cand`` largest). ``None`` without a prepared
    copy or for fewer than ``8 m`` items."""
    from recsys_kit.topk_kernels import bf16_keys

    p = plan.prepared
    if p is None or n < 8 * INT8_SAMPLE:
        return None
    idx, j = _sample(n, n_cand)
    xs = torch.index_select(p.low, 0, idx)
    m, n_q = len(idx), plan.qlow.shape[0]
    kth = np.empty(n_q, dtype=np.int32)

    def sample(a: int, b: int) -> None:
        keys = bf16_keys((plan.qlow[a:b] @ xs.T).view(torch.int16).numpy())
        kth[a:b] = np.partition(keys, m - j, axis=1)[:, m - j]

    rows = max(1, min(-(-n_q // threads), CPU_BLOCK_BYTES // (4 * m)))
    _run([lambda a=a, b=b: sample(a, b) for a, b in _chunks(n_q, rows)], threads,
         torch.device("cpu"))  # fmt: skip
    return torch.from_numpy(kth)


def _sample(n: int, k: int) -> tuple[torch.Tensor, int]:
    """The items a floor estimate samples (:data:`INT8_SAMPLE`, evenly spaced) and the rank
    ``j = lam + 3 sqrt(lam) + 3`` (``lam = k m / n``) of the sampled score it takes."""
    m = INT8_SAMPLE
    lam = k * m / n
    j = min(m, int(np.ceil(lam + 3.0 * np.sqrt(lam) + 3.0)))
    return torch.arange(m, dtype=torch.int64) * n // m, j


def _select_pool_int8(
    plan: _Plan, n: int, k: int, n_cand: int, n_parts: int, threads: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Phase 1 of :func:`candidate_topk` on the int8 route (CPU, numba), in int32 units:
    ``s = base a + b`` with ``a = q1 . x1`` and ``b = q1 . x2``.

    For k up to :data:`INT8_ONE_PRODUCT_MAX_K`, one product per tile and the second digit
    for the few candidates that can matter (:func:`_one_product_pool`); above it, both
    products per tile (:func:`_int8_select`). Either way a query starts from the floor
    :func:`_int8_floor` estimates (large searches); a query the first pass cannot settle (the
    estimate missed, see there) is selected again, both digits per tile and no estimate.
    Exact either way; rare. Of the candidates, only those that can be rescored are kept
    (``s >= a_k - 2e``, :func:`_rescore_pool`), unsorted.

    Returns:
        ``(vals, cand, a_k, left)``: the candidates' approximate scores (Q, W) (padding:
        ``-inf``, item -1), ``a_k`` (Q,) the k-th approximate score over all items, and
        ``left`` (Q,) a bound of the approximate scores of the items never kept (``-inf``:
        none).
    """
    floor_s = _int8_floor(plan, n, k, threads) if n_cand < n else None
    if k <= INT8_ONE_PRODUCT_MAX_K:
        s, cols, left, a_k = _one_product_pool(plan, floor_s, n, k, n_cand, n_parts, threads)
    else:
        st, ct, lt = _int8_select(plan, plan.qlow, floor_s, n, n_cand, n_parts, threads, k,
                                  slice(None))  # fmt: skip
        s, cols, left = st.numpy(), ct.numpy(), lt.numpy().astype(np.int64)
        a_k = _kth_int(s, k)
    redo = torch.from_numpy(np.nonzero(((cols >= 0).sum(axis=1) < k) | (a_k <= left))[0])
    st, ct, left = torch.from_numpy(s), torch.from_numpy(cols), torch.from_numpy(left)
    if redo.numel():
        rs, rc, rl = _int8_select(plan, plan.qlow[redo], None, n, n_cand, n_parts, threads, k,
                                  redo)  # fmt: skip
        width = max(st.shape[1], rs.shape[1])
        st, ct = _pad_to(st, width, _INT32_MIN), _pad_to(ct, width, -1)
        st[redo], ct[redo] = _pad_to(rs, width, _INT32_MIN), _pad_to(rc, width, -1)
        left[redo] = rl.long()
        a_k[redo.numpy()] = _kth_int(st[redo].numpy(), k)
    fa_k = plan.float_of(a_k)
    thr = _clamp32(plan.int_below(plan.threshold(slice(None), fa_k, n_eps=2)))
    vals, ct = _keep_above(st, ct, thr, threads)
    fvals = plan.to_float(vals, slice(None)).masked_fill_(ct < 0, float("-inf"))
    fleft = plan.float_of(_clamp32(left))
    return fvals, ct, fa_k, fleft.masked_fill_(left <= _INT32_MIN, float("-inf"))


#: The int8 route computes one product per tile (and the second digit for its candidates)
#: for k up to this; above, both. At Q=256, N=100k on 2 cores (VNNI, no AMX: the
#: ``avx512-no-bf16`` kind), interleaved medians after the second digits were taken in item
#: order: one product 33.7 / 44.4 / 50.2 / 61.1 / 67.8 ms, both 46.2 / 52.6 / 57.0 / 63.2 /
#: 67.3 ms at k = 10 / 64 / 100 / 150 / 200 (the second digits' gathers grow with k).
INT8_ONE_PRODUCT_MAX_K = 150


def _one_product_pool(
    plan: _Plan,
    floor_s: torch.Tensor | None,
    n: int,
    k: int,
    n_cand: int,
    n_parts: int,
    threads: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The candidates of :func:`_select_pool_int8` from one product per tile
    (``|b| <= B = ||q1|| max ||x2||``, Cauchy-Schwarz, so ``base a - B <= s <= base a + B``).

    1. Every item with ``base a + B`` at or above the query's floor is a candidate
       (:func:`_int8_select`, ``digits=1``). Every item left out has ``s <= left``.
    2. ``s`` of the candidates that can matter, by one int8 row each
       (:func:`~recsys_kit.topk_kernels.second_digit`): first the k best by ``a``, whose k-th
       ``s`` is a lower bound ``L`` of the true k-th ``a_k``; then every candidate with
       ``base a + B >= L - c e`` (``e`` the error bound, ``c`` :data:`INT8_CUT`). A candidate
       without ``s`` has ``s < L - c e``; ``left`` rises to that, so the settle test covers
       it like an item never kept.
    3. So the k-th ``s`` found is ``a_k`` where it is above ``left`` (the caller checks).

    Half the GEMM work of both digits, for ~1 + 5k int8 rows gathered per query (measured
    at Q=256, N=100k: ~100 at k=10, ~470 at k=100).

    Returns:
        ``(s, cols, left, a_k)``: int32 scores (``INT32_MIN + column`` where not computed),
        items (-1: none), the int64 bound of the items left out, the k-th ``s`` found.
    """
    p = plan.prepared
    assert p is not None and p.low2 is not None
    base, bq = p.base, plan.bq.numpy()[:, None]
    floor_a = None if floor_s is None else _clamp32(torch.div(floor_s - plan.bq, base,
                                                              rounding_mode="floor"))  # fmt: skip
    ta, tc, left_a = _int8_select(plan, plan.qlow, floor_a, n, n_cand, n_parts, threads, k,
                                  slice(None), 1)  # fmt: skip
    la = left_a.numpy().astype(np.int64)
    left = np.where(la == _INT32_MIN, _INT32_MIN, base * la + bq[:, 0])
    top = _kth_int(ta.numpy(), k)  # stage A: the k best by a (and ties)
    # a_k >= base top - B, so a candidate with base a + B below that's reach cannot matter:
    # dropped before the stages read the rows
    first = plan.threshold(slice(None), plan.float_of(base * top.astype(np.int64) - bq[:, 0]), 2)
    ta, tc = _keep_above(ta, tc, _a_of(plan, plan.int_below(first)), threads)
    a, cols = ta.numpy(), tc.numpy()
    s = np.broadcast_to(_INT32_MIN + np.arange(a.shape[1], dtype=np.int32), a.shape).copy()
    high = np.full(len(a), np.iinfo(np.int32).max, dtype=np.int32)
    _second_digits(plan, cols, a, top, high, False, s, threads)
    low = plan.threshold(slice(None), plan.float_of(_kth_int(s, k)), INT8_CUT)
    # stage B: base a + B >= L - INT8_CUT e; the rest dropped, so they count as left out
    lo_b = np.minimum(_a_of(plan, plan.int_below(low)).numpy(), top)
    _second_digits(plan, cols, a, lo_b, top, True, s, threads)
    cut = base * lo_b.astype(np.int64) + bq[:, 0]  # a dropped candidate has s below this
    return s, cols, np.maximum(left, cut), _kth_int(s, k)


#: Stage B of :func:`_one_product_pool` completes the candidates within this many error bounds
#: ``e`` below ``L`` (a lower bound of ``a_k``). Anything the rescoring can need is within
#: ``2e`` of ``a_k``, but in practice within ``e`` and a little (the settle test sees
#: ``c_k - e`` with the k-th canonical score ``c_k`` within rounding of ``a_k``): 1.25 drops
#: ~20 % of the second digits; a query it cuts short is settled by the threshold pass.
INT8_CUT = 1.25


def _a_of(plan: _Plan, s_int: torch.Tensor) -> torch.Tensor:
    """int8 route, per query: the least first-digit product ``a`` with ``base a + B`` at or
    above the int64 score ``s_int`` (``B``: the bound of the second digit's part), int32."""
    p = plan.prepared
    assert p is not None
    return _clamp32(-torch.div(plan.bq - s_int, p.base, rounding_mode="floor"))  # the ceiling


def _clamp32(x: torch.Tensor) -> torch.Tensor:
    """int64 values clamped to the int32 range, as int32."""
    return x.clamp(_INT32_MIN, -_INT32_MIN - 1).to(torch.int32)


def _kth_int(x: np.ndarray, k: int) -> np.ndarray:
    """Each row's k-th largest of int32 ``x`` (numpy's SIMD partition; ``INT32_MIN`` when a
    row has fewer than k columns). Entries without a score should be distinct, below every
    score (``INT32_MIN + column``: :func:`int8_base` keeps 2^24 of headroom): many equal keys
    make the partition ~15x slower."""
    w = x.shape[1]
    if w < k:
        return np.full(x.shape[0], _INT32_MIN, dtype=np.int32)
    return np.partition(x, w - k, axis=1)[:, w - k].copy()


def _second_digits(
    plan: _Plan,
    cols: np.ndarray,
    a: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    drop: bool,
    out: np.ndarray,
    threads: int,
) -> None:
    """:func:`~recsys_kit.topk_kernels.second_digit` on the workers (blocks of rows)."""
    from recsys_kit.topk_kernels import second_digit

    p = plan.prepared
    assert p is not None and p.low2 is not None
    q1, x2 = plan.qlow.numpy(), p.low2.numpy()
    _run([lambda r0=r0, r1=r1: second_digit(q1[r0:r1], x2, cols[r0:r1], a[r0:r1], p.base,
                                            lo[r0:r1], hi[r0:r1], drop, out[r0:r1])
          for r0, r1 in _row_blocks(len(cols), threads)], threads, torch.device("cpu"))  # fmt: skip


def _pad_to(x: torch.Tensor, width: int, value: int) -> torch.Tensor:
    return torch.nn.functional.pad(x, (0, width - x.shape[1]), value=value)


def _keep_above(
    vals: torch.Tensor, cols: torch.Tensor, thr: torch.Tensor, threads: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's entries with ``vals >= thr`` (int32), at the front, the width cut to the
    longest row (:func:`~recsys_kit.topk_kernels.keep_above`, on the workers)."""
    from recsys_kit.topk_kernels import keep_above

    n_q = vals.shape[0]
    v, c, t = vals.numpy(), cols.numpy(), thr.numpy()
    cnt = np.zeros(n_q, dtype=np.int64)
    _run([lambda a=a, b=b: keep_above(v, c, t, a, b, cnt)
          for a, b in _chunks(n_q, max(1, -(-n_q // threads)))], threads,
         torch.device("cpu"))  # fmt: skip
    width = max(1, int(cnt.max()))
    return vals[:, :width].contiguous(), cols[:, :width].contiguous()


_INT32_MIN = int(np.iinfo(np.int32).min)
#: Items sampled (evenly spaced) by :func:`_int8_floor`; it samples only from 8x as many.
INT8_SAMPLE = 4096


_SCRATCH = threading.local()


def _int32_tiles(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This thread's two int32 scratch tiles of at least ``size`` elements, kept between
    searches: fresh multi-MiB buffers cost page faults on every search (~1 ms each)."""
    got = getattr(_SCRATCH, "tiles", None)
    if got is None or got[0].numel() < size:
        got = (torch.empty(size, dtype=torch.int32), torch.empty(size, dtype=torch.int32))
        _SCRATCH.tiles = got
    return got


def _int8_floor(plan: _Plan, n: int, k: int, threads: int) -> torch.Tensor | None:
    """int8 route: per query, an int32 floor below which no item is likely to matter.

    From the int32 scores of ``m`` evenly spaced items (:data:`INT8_SAMPLE`): the ``j``-th
    largest, ``j = lam + 3 sqrt(lam) + 3`` with ``lam = k m / n`` sampled items expected above
    the query's k-th score ``a_k``, lowered by ``2e`` (the settle test's reach,
    :func:`settle_threshold`). The j-th largest exceeds ``a_k`` only if ``j`` of the ``m``
    sampled items do (hypergeometric, mean ``lam``: below 1.3e-3 per query for every ``lam``,
    1e-4 at k=100 of 100k items, 5e-6 at k=10; ``4 sqrt(lam) + 4`` measured 4 ms slower at
    k=100: a lower floor, more candidates). It is an
    estimate and nothing relies on it: the caller redoes a query with fewer than ``k``
    candidates above it, and the settle test counts it as a bound of the items left out.
    ``None`` when ``n < 8 m``.
    """
    m = INT8_SAMPLE
    p = plan.prepared
    if n < 8 * m or p is None or p.low2 is None:
        return None
    idx, j = _sample(n, k)
    n_q = plan.qlow.shape[0]

    s1, s2 = torch.index_select(p.low, 0, idx), torch.index_select(p.low2, 0, idx)
    kth = np.empty(n_q, dtype=np.int32)  # numpy: the workers may not write a main-thread
    # tensor made under torch.inference_mode

    def sample(a: int, b: int) -> None:
        """The j-th best sampled score of queries a:b."""
        ta, tb = (t[: (b - a) * m].view(b - a, m) for t in _int32_tiles((b - a) * m))
        s = torch._int_mm(plan.qlow[a:b], s1.T, out=ta).mul_(p.base)
        s.add_(torch._int_mm(plan.qlow[a:b], s2.T, out=tb))
        kth[a:b] = np.partition(s.numpy(), m - j, axis=1)[:, m - j]

    rows = max(1, min(-(-n_q // threads), CPU_BLOCK_BYTES // (8 * m)))
    _run([lambda a=a, b=b: sample(a, b) for a, b in _chunks(n_q, rows)], threads,
         torch.device("cpu"))  # fmt: skip
    return _clamp32(plan.int_below(plan.threshold(slice(None), plan.float_of(kth), 2)))


#: Buffer entries per query and worker at least (int8 route): room for the candidates of
#: dense clusters, which must all be kept (:func:`~recsys_kit.topk_kernels.select_tile`).
INT8_MIN_CAP = 2048
#: Queries per int8 search (and compiled bf16 selection) at most; more are searched in turns,
#: so that the per-query buffers and candidate pools (~50 KiB per query and worker at
#: ``INT8_MIN_CAP`` entries) stay bounded.
INT8_MAX_QUERIES = 4096


def _int8_reach(plan: _Plan, rows: torch.Tensor | slice, digits: int) -> np.ndarray:
    """Per query (``rows``), how far below a query's k-th score so far a candidate can still
    matter, in the units the selection compares (int64): ``2e`` at the largest possible
    score (``||q|| max ||x||``, where the bound is widest), and with one digit (first-digit
    products ``a``) also twice the second digit's bound ``B``, over ``base``."""
    p = plan.prepared
    assert p is not None
    top = plan.norms.qn[rows] * plan.xmax
    gap = (top.double() - plan.threshold(rows, top, 2).double()) / plan.scale[rows]
    e2 = torch.ceil(gap).long() + 2
    if digits == 1:
        e2 = torch.div(e2 + 2 * plan.bq[rows] + p.base - 1, p.base, rounding_mode="floor") + 1
    return e2.numpy()


def _int8_select(
    plan: _Plan,
    q1: torch.Tensor,
    floor0: torch.Tensor | None,
    n: int,
    n_cand: int,
    n_parts: int,
    threads: int,
    k: int,
    rows: torch.Tensor | slice,
    digits: int = 2,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each int8 query row's candidates (int32 scores, items: every state's buffer side by
    side, unsorted; padding ``INT32_MIN``, item -1), and an int32 bound of the scores of the
    items left out (``INT32_MIN``: none was); each state keeps every candidate within
    :func:`_int8_reach` of its k-th largest so far (or, when that overflows its buffer, its
    ``n_cand`` best), from ``floor0`` up when given, so the k-th largest candidate is the
    k-th largest score when a row has k candidates. The item range is cut into
    ``n_parts`` tasks; each computes its int32 scores (both digits, or with ``digits=1`` the
    first one alone: ``q1 . x1``; with ``digits=0``, bf16 scores of bf16 queries ``q1``,
    selected by their order keys, the ``n_cand`` largest and ties) a tile (:data:`INT8_TILE`
    items, fewer for thousands of queries) at a time and hands the tile, still in cache, to
    :func:`~recsys_kit.topk_kernels.select_tile`, from ``floor0`` when given. Each worker keeps
    one selection state (its buffers and floors) across the tasks it takes, so that more,
    smaller tasks (a busy machine) do not restart from a low floor: the candidates are a set,
    whatever the order."""
    from recsys_kit.topk_kernels import select_tile, union_rows

    n_q = q1.shape[0]
    cap = max(4 * n_cand, INT8_MIN_CAP)
    # bf16 (digits 0): the n_cand largest and their ties, no reach
    reach = _int8_reach(plan, rows, digits) if digits else np.zeros(n_q, dtype=np.int64)
    kth = k if digits else n_cand
    # narrower tiles for many queries: two int32 tiles per worker within the block budget
    tile = max(256, min(INT8_TILE, CPU_BLOCK_BYTES // (8 * n_q)) // 16 * 16)
    tiles = _chunks(n, tile)
    per = -(-len(tiles) // max(1, min(n_parts, len(tiles))))
    parts = [tiles[i : i + per] for i in range(0, len(tiles), per)]
    p = plan.prepared
    assert digits == 0 or (p is not None and p.low2 is not None)
    pool = _Int8Pool(min(threads, len(parts)), n_q, cap, tile, floor0)
    states: dict[int, _Int8State] = {}

    def task(part: list[tuple[int, int]]) -> None:
        with plan.lock:  # one state per worker thread, made on its first task
            me = threading.get_ident()
            if me not in states:
                states[me] = pool.state(len(states))
            st = states[me]
        for a, b in part:
            w = b - a
            flat = _int32_tiles(n_q * tile)
            ta, tb = (t[: n_q * w].view(n_q, w) for t in flat)
            if digits == 0:  # bf16 scores, read as their bits
                buf = flat[0].view(torch.bfloat16)[: n_q * w].view(n_q, w)
                sa = torch.matmul(q1, plan.block(a, b)[0].T, out=buf).view(torch.int16)
                sb = sa
            else:
                sa = torch._int_mm(q1, p.low[a:b].T, out=ta)
                sb = torch._int_mm(q1, p.low2[a:b].T, out=tb) if digits == 2 else tb
            select_tile(sa.numpy(), sb.numpy(), p.base if digits == 2 else 0, a, st.floor,
                        st.vals, st.cols, st.cnt, n_cand, st.gmax, kth, reach)  # fmt: skip

    _run([lambda part=part: task(part) for part in parts], threads, torch.device("cpu"))
    # every state's entries, one row per query (padded): every item left out is <= a floor
    used = len(states)
    cnt = pool.cnt[:used]
    vals = np.empty((n_q, max(1, int(cnt.sum(axis=0).max()))), dtype=np.int32)
    cols = np.empty(vals.shape, dtype=np.int64)
    _run([lambda a=a, b=b: union_rows(pool.vals[:used], pool.cols[:used], cnt, a, b, vals, cols)
          for a, b in _chunks(n_q, max(1, -(-n_q // threads)))], threads,
         torch.device("cpu"))  # fmt: skip
    left = torch.from_numpy(pool.floor[:used].max(axis=0))
    return torch.from_numpy(vals), torch.from_numpy(cols), left


class _Int8Pool:
    """The int8 route's selection states, one slot per worker: per query a buffer of
    candidates (``vals``, ``cols``, ``cnt`` used) and a floor (from ``floor0`` when given)."""

    def __init__(
        self, slots: int, n_q: int, cap: int, tile: int, floor0: torch.Tensor | None
    ) -> None:
        self.vals = np.empty((slots, n_q, cap), dtype=np.int32)
        self.cols = np.empty((slots, n_q, cap), dtype=np.int64)
        self.cnt = np.zeros((slots, n_q), dtype=np.int64)
        self.floor = np.full((slots, n_q), _INT32_MIN, dtype=np.int32)
        if floor0 is not None:
            self.floor[:] = floor0.numpy()[None, :]
        self.tile = tile

    def state(self, slot: int) -> _Int8State:
        """Slot ``slot``'s state (views) and its own scratch."""
        return _Int8State(self.vals[slot], self.cols[slot], self.cnt[slot], self.floor[slot],
                          self.tile)  # fmt: skip


class _Int8State:
    """One worker's selection state (views into an :class:`_Int8Pool`) and its group-maxima
    scratch (its int32 tiles are the thread's: :func:`_int32_tiles`)."""

    def __init__(
        self, vals: np.ndarray, cols: np.ndarray, cnt: np.ndarray, floor: np.ndarray, tile: int
    ) -> None:
        from recsys_kit.topk_kernels import SELECT_GROUPS

        self.vals, self.cols, self.cnt, self.floor = vals, cols, cnt, floor
        self.gmax = np.empty(tile // SELECT_GROUPS + 1, dtype=np.int32)


def _rescore_pool(
    plan: _Plan,
    vals: torch.Tensor,
    cand: torch.Tensor,
    a_k: torch.Tensor,
    k: int,
    threads: int,
    dev: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Phase 2 of :func:`candidate_topk`: each query's top k by canonical score among the
    candidates that can reach it (``vals``, ``cand``: (Q, W), in any order, item -1 for
    padding; ``a_k`` the k-th approximate score, all the top-k items among the candidates),
    in two steps. (A) The candidates with ``s^ >= a_k`` (at least k): ``c_A``, their k-th
    canonical score, is a lower bound of the true k-th, so an item that can reach the top k
    has ``s^ >= t_A = c_A - e`` (:func:`settle_threshold`). (B) The other candidates at or
    above ``t_A``. As ``c_A >= a_k - e``, ``t_A`` is never below ``a_k - 2e``, the floor one
    step would need, and typically ``e`` higher: at k = 100 after int8, 167 candidates per
    query are scored instead of 261 (measured, random unit vectors).

    Returns:
        The top k (scores, items: (Q, k)) and ``t_A`` (Q,): every candidate at or above it was
        scored.
    """
    real = cand >= 0
    reach = plan.threshold(slice(None), a_k, n_eps=2)  # t_A >= reach
    compiled = _compiled_rescoring(plan.qx, plan.exact, vals.numel())
    top = (vals >= a_k[:, None]) & real
    ex = _score_rows(plan, cand, top, None, compiled, threads, dev)
    t_floor = torch.maximum(plan.threshold(slice(None), kth_largest(ex, k), n_eps=1), reach)
    ex = _score_rows(plan, cand, (vals >= t_floor[:, None]) & real & ~top, ex, compiled,
                     threads, dev)  # fmt: skip
    out_v, out_i = _best_k(ex, cand, k, compiled, threads, dev)
    return out_v, out_i, t_floor


def _row_blocks(n_rows: int, threads: int) -> list[tuple[int, int]]:
    """Rows cut into two blocks per worker (a held-up worker delays one of them)."""
    return _chunks(n_rows, max(1, -(-n_rows // (2 * threads))))


def _score_rows(
    plan: _Plan,
    cand: torch.Tensor,
    need: torch.Tensor,
    into: torch.Tensor | None,
    compiled: bool,
    threads: int,
    dev: torch.device,
) -> torch.Tensor:
    """Canonical scores of the pairs ``need`` of ``cand`` (Q, W), the rest from ``into``
    (``-inf`` when ``None``); blocks of rows on the workers. Compiled: each task is the
    kernel alone, its arrays cut beforehand (Python in a task holds the GIL, and a worker
    waiting for it measured 2-3 ms idle per block). Else each block over the columns that
    hold its needed pairs."""
    blocks = _row_blocks(need.shape[0], threads)
    if compiled:
        from recsys_kit.topk_kernels import METRIC_CODES, canonical_pairs

        code, items = METRIC_CODES[plan.metric], plan.exact.numpy()
        qx, c, nd = plan.qx.contiguous().numpy(), cand.clamp_min(0).numpy(), need.numpy()
        got = np.empty(need.shape, dtype=np.float32)
        _run([lambda a=a, b=b: canonical_pairs(qx[a:b], items, c[a:b], nd[a:b], code, got[a:b])
              for a, b in blocks], threads, dev)  # fmt: skip
        if into is not None:
            np.copyto(got, into.numpy(), where=~nd)
        return torch.from_numpy(got)

    def block(a: int, b: int) -> tuple[int, int, torch.Tensor] | None:
        used = torch.nonzero(need[a:b].any(dim=0)).flatten()
        if not used.numel():
            return None
        lo, hi = int(used[0]), int(used[-1]) + 1
        got = _score_candidates(plan.qx[a:b], plan.exact, cand[a:b, lo:hi].clamp_min(0),
                                need[a:b, lo:hi], plan.metric)  # fmt: skip
        return lo, hi, got

    out = torch.full(need.shape, float("-inf"), device=dev) if into is None else into.clone()
    found = _run([lambda a=a, b=b: block(a, b) for a, b in blocks], threads, dev)
    for (a, b), got in zip(blocks, found, strict=True):
        if got is not None:
            lo, hi, scores = got
            out[a:b, lo:hi] = torch.where(need[a:b, lo:hi], scores, out[a:b, lo:hi])
    return out


def _best_k(
    scores: torch.Tensor,
    cols: torch.Tensor,
    k: int,
    compiled: bool,
    threads: int,
    dev: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's k best (score descending, then lower column): :func:`order_rows` cut to k,
    or :func:`~recsys_kit.topk_kernels.best_pairs` (one pass, no full sort; on the workers)
    when compiled."""
    if not compiled:
        v, i = order_rows(scores, cols)
        return v[:, :k], i[:, :k]
    from recsys_kit.topk_kernels import best_pairs

    out_v = np.empty((scores.shape[0], k), dtype=np.float32)
    out_i = np.empty((scores.shape[0], k), dtype=np.int64)
    s, c = scores.contiguous().numpy(), cols.clamp_min(0).numpy()
    _run([lambda a=a, b=b: best_pairs(s[a:b], c[a:b], k, out_v[a:b], out_i[a:b])
          for a, b in _row_blocks(len(s), threads)], threads, dev)  # fmt: skip
    return torch.from_numpy(out_v), torch.from_numpy(out_i)


def _run(tasks: list[Callable[[], object]], threads: int, dev: torch.device) -> list:
    """CPU: :func:`~recsys_kit.device.run_tasks`; accelerators: in order, on this thread."""
    if dev.type == "cpu":
        return run_tasks(tasks, threads)
    return [t() for t in tasks]


def _threshold_pass(
    plan: _Plan,
    rows: torch.Tensor,
    t: torch.Tensor,
    k: int,
    blocks: list[tuple[int, int]],
    threads: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k for the queries ``rows``: every item with ``s^ >= t`` (from
    :func:`settle_threshold`), scored canonically; however many tie, all are there."""
    qx = plan.qx[rows]
    n_r = rows.numel()

    def scan(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = plan.approx(rows, start, stop).float()
        r, c = torch.nonzero(s >= t[:, None], as_tuple=True)
        out = torch.empty(r.numel(), dtype=torch.float32, device=qx.device)
        step = max(1, CPU_GATHER_BYTES // (4 * qx.shape[1]))
        for a in range(0, r.numel(), step):  # bounded memory even if every item qualifies
            x = plan.exact[c[a : a + step] + start].float()
            out[a : a + step] = canonical_scores(x, qx[r[a : a + step]], plan.metric)
        return r, c + start, out

    found = _run([lambda a=a, b=b: scan(a, b) for a, b in blocks], threads, qx.device)
    r = torch.cat([f[0] for f in found])
    c = torch.cat([f[1] for f in found])
    s = torch.cat([f[2] for f in found])
    # order by (query, score desc, index asc): three stable sorts, least significant first
    perm = torch.argsort(c, stable=True)
    perm = perm[torch.argsort(s[perm], descending=True, stable=True)]
    perm = perm[torch.argsort(r[perm], stable=True)]
    r, c, s = r[perm], c[perm], s[perm]
    counts = torch.bincount(r, minlength=n_r)
    assert bool((counts >= k).all()), "threshold pass found fewer than k items"
    pos = torch.arange(r.numel(), device=r.device) - (torch.cumsum(counts, 0) - counts)[r]
    keep = pos < k
    vals = torch.empty((n_r, k), dtype=torch.float32, device=qx.device)
    idx = torch.empty((n_r, k), dtype=torch.int64, device=qx.device)
    vals[r[keep], pos[keep]] = s[keep]
    idx[r[keep], pos[keep]] = c[keep]
    return vals, idx


def scan_topk(
    q: torch.Tensor,
    items: torch.Tensor,
    k: int,
    metric: str,
    threads: int = 1,
    xmax: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of one query (or a few) on CPU: a matrix-vector pass, then the canonical
    scores of every item that may reach the k-th.

    One query makes the GEMM a matrix-vector product, memory-bound: one pass over the items
    (MKL's GEMV, on the workers, a slice at a time) gives approximate scores ``s^`` and, in the
    same slice while it is in cache, the item norms the error bound needs. With ``t`` the k-th
    largest ``s^`` and ``e`` the float32 :func:`error_bound`, the k-th canonical score is
    ``>= t - e``, so items with ``s^ < t - 2e`` can neither reach nor tie it: the rest (usually
    little more than k items) is scored canonically.

    Args:
        q: (Q, d) float32 queries (CPU).
        items: (N, d) float items on the same device.
        k, metric: as in :func:`candidate_topk`.
        threads: CPU workers.
        xmax: an upper bound of the item norms when known (an index): skips their pass for
            ``"dot"``.

    Returns:
        ``(scores, indices)``, (Q, k).
    """
    n_q, dim = q.shape
    n = items.shape[0]
    plan = _Plan(q, items, metric, "fp32", None)
    step = max(256, 4 * CPU_GATHER_BYTES // (4 * dim))  # a few MiB: the norms read it cached
    per_task = max(step, -(-n // (4 * max(1, threads))))
    need_norms = metric != "dot" or xmax is None

    def scan(start: int, stop: int) -> tuple[torch.Tensor, float]:
        out = torch.empty((n_q, stop - start), dtype=torch.float32)
        top = 0.0
        for a in range(start, stop, step):
            b = min(stop, a + step)
            x = items[a:b].float()
            s = plan.qa @ x.T
            if need_norms:
                norms = torch.linalg.vector_norm(x, dim=1)
                top = max(top, float(norms.max()))
                if metric == "cosine":
                    s /= norms.clamp_min(_EPS)
                elif metric == "l2":
                    s.mul_(2.0).sub_(norms.square())
            out[:, a - start : b - start] = s
        return out, top

    parts = _run([lambda a=a, b=b: scan(a, b) for a, b in _chunks(n, per_task)], threads, q.device)
    approx = torch.cat([p[0] for p in parts], dim=1)
    # cosine scores are cosines: the items count as unit vectors
    bound_x = xmax if xmax is not None else max(p[1] for p in parts)
    bound_x = (1.0 if metric == "cosine" else bound_x) * _norm_inflation(dim)
    vals = torch.empty((n_q, k), dtype=torch.float32)
    idx = torch.empty((n_q, k), dtype=torch.int64)
    for r in range(n_q):
        row = approx[r]
        if k < n:
            a_k = kth_largest(row[None], k)
            t = settle_threshold(a_k, plan.norms[r : r + 1], dim, bound_x, 0.0, metric, "fp32", 2)
            cand = torch.nonzero(row >= t).flatten()
        else:
            cand = torch.arange(n)
        ex = canonical_scores(items[cand].float(), plan.qx[r], metric)
        v, i = order_rows(ex[None], cand[None])
        vals[r], idx[r] = v[0, :k], i[0, :k]
    if metric == "l2":
        vals = (vals - fixed_sum(plan.qx.square())[:, None] / 4.0).clamp_max(0.0)
        vals, idx = order_rows(vals, idx)
    return vals, idx
