"""Compiled loops of the exact top-k engine (:mod:`recsys_kit.topk_engine`), with numba.

Two hot spots that torch can only do as many small passes over memory:

* :func:`select_tile`: the candidates of an int32 score tile (the int8 route's GEMM output,
  still in cache), appended to a per-query buffer with a running floor. Strided groups of 16
  columns give each row's group maxima in one vectorised pass; only groups whose maximum
  reaches the floor are looked at. When the buffer fills, it shrinks to the ``keep`` largest
  and the floor rises to the ``keep``-th largest (:func:`_shrink`).
* :func:`canonical_pairs`: the canonical score (:func:`~recsys_kit.topk_engine.canonical_scores`)
  of each (query, candidate) pair, gathered and summed in one pass, without materialising the
  gathered rows. Same operations in the same order, so the same bits (checked by the tests).

Both release the GIL: the engine runs them on its worker threads. Without numba
(:func:`recsys_kit.jit.numba_available`), the engine keeps its torch routes.

Example:
    >>> import numpy as np
    >>> out = np.empty((1, 2), np.float32)
    >>> q, x = np.ones((1, 3), np.float32), np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> canonical_pairs(q, x, np.array([[1, 0]]), np.ones((1, 2), np.bool_), 0, out)
    >>> out.tolist()
    [[12.0, 3.0]]
"""

from __future__ import annotations

import numpy as np

from recsys_kit.jit import jit, numba_available, prefetch

__all__ = [
    "SELECT_GROUPS",
    "PREFETCH_AHEAD",
    "ROW_BUCKET",
    "METRIC_CODES",
    "select_tile",
    "bf16_keys",
    "bf16_of_keys",
    "union_rows",
    "keep_above",
    "best_pairs",
    "second_digit",
    "canonical_pairs",
]

#: Columns per strided group in :func:`select_tile` (``topk_engine.select_candidates`` uses
#: 16). 8: the selection of a 2048-column int8 tile measured 5.3-6.0 ms per worker and search
#: at Q=256, N=100k, k=100 (one digit: ~3 % of the columns kept), against 6.0-7.1 ms with 16
#: and 5.5-5.6 ms with 4; at k=10 4.2-4.3 against 4.6-5.0 ms.
SELECT_GROUPS = 8
#: Pairs ahead whose item row :func:`canonical_pairs` asks for (4: measured best of 2-16).
PREFETCH_AHEAD = 4
#: :func:`second_digit` takes its pairs in item order, by buckets of ``2^ROW_BUCKET_SHIFT``
#: rows (16 measured as fast as 1, and the counts fit in cache).
ROW_BUCKET_SHIFT = 4
ROW_BUCKET = 1 << ROW_BUCKET_SHIFT
#: ``metric`` argument of :func:`canonical_pairs`.
METRIC_CODES = {"dot": 0, "cosine": 1, "l2": 2}


@jit
def _shrink(
    vals: np.ndarray, cols: np.ndarray, r: int, c: int, keep: int, kth: int, reach: int
) -> tuple[int, int]:
    """Make room in row ``r``'s full buffer (``c`` entries); return ``(entries left, the
    row's new floor)``.

    First choice: every entry at or above ``v_k - reach``, ``v_k`` the ``kth`` largest: no
    item below it can matter (the caller's ``reach`` covers its error bounds), so dense rows
    keep every candidate they need. When that frees less than half the buffer, the ``keep``
    largest (at a tie, the first ones) and their ``keep``-th largest: the settle test then
    decides (and the threshold pass finishes a query cut too short).
    """
    tv = vals[r, :c].copy()
    tc = cols[r, :c].copy()
    n = 0
    if kth <= c:
        f = max(np.int64(np.partition(tv, c - kth)[c - kth]) - reach, np.iinfo(np.int32).min)
        m = 0
        for i in range(c):
            m += tv[i] >= f
        if 2 * m <= c:
            for i in range(c):
                if tv[i] >= f:
                    vals[r, n] = tv[i]
                    cols[r, n] = tc[i]
                    n += 1
            return n, np.int32(f)
    kv = np.partition(tv, c - keep)[c - keep]  # a sorted-around copy; tv keeps its order
    for i in range(c):
        if tv[i] > kv:
            vals[r, n] = tv[i]
            cols[r, n] = tc[i]
            n += 1
    for i in range(c):
        if n == keep:
            break
        if tv[i] == kv:
            vals[r, n] = tv[i]
            cols[r, n] = tc[i]
            n += 1
    return n, kv


def _key(v: np.integer) -> np.integer:
    """Order key of a tile entry in :func:`select_tile`: an int16 entry holds the bits of a
    bf16 score, read as a signed number with a negative one's magnitude bits flipped
    (``-1 - magnitude``), so that a larger key is never a smaller number (-0.0 just below
    +0.0; :func:`bf16_of_keys` inverts it); int32 entries are their own keys. Compiled, the
    choice is made by type (no branch in the loops)."""
    if isinstance(v, np.int16):
        w = np.int32(v)
        return w ^ ((w >> 15) & np.int32(0x7FFF))
    return v


if numba_available():
    from numba import types
    from numba.extending import overload

    @overload(_key, inline="always")
    def _key_compiled(v):  # noqa: ANN001, ANN202 (numba's typing signature)
        if isinstance(v, types.Integer) and v.bitwidth == 16:
            return lambda v: np.int32(v) ^ ((np.int32(v) >> 15) & np.int32(0x7FFF))
        return lambda v: v


def bf16_keys(bits: np.ndarray) -> np.ndarray:
    """:func:`_key` of int16 bf16 bits, for a whole array (int32).

    Example:
        >>> import torch
        >>> bf16_keys(torch.tensor([1.0, -1.0, -0.0]).bfloat16().view(torch.int16).numpy())
        array([ 16256, -16257,     -1], dtype=int32)
    """
    w = bits.astype(np.int32)
    return w ^ ((w >> 15) & 0x7FFF)


def bf16_of_keys(keys: np.ndarray) -> np.ndarray:
    """float32 values of the bf16 order keys that :func:`select_tile` keeps from an int16
    tile (the inverse of :func:`_key`).

    Example:
        >>> bf16_of_keys(np.array([16256, -16257, 0, -1], np.int32)).tolist()
        [1.0, -1.0, 0.0, -0.0]
    """
    k = keys.astype(np.int32)
    bits = (k ^ ((k >> 15) & 0x7FFF)).astype(np.uint32) << 16  # the low 16 bits: the bf16
    return bits.view(np.float32)


@jit
def select_tile(
    a: np.ndarray,
    b: np.ndarray,
    base: int,
    col0: int,
    floor: np.ndarray,
    vals: np.ndarray,
    cols: np.ndarray,
    cnt: np.ndarray,
    keep: int,
    gmax: np.ndarray,
    kth: int,
    reach: np.ndarray,
) -> None:
    """Add the columns of a score tile that may be among each row's ``keep`` largest.

    The scores are ``a * base + b`` (int32, the int8 route's two digits), computed where they
    are read (writing them back measured slower), or ``a`` itself when ``base`` is 0 (``b``
    is not read; an int16 ``a`` holds bf16 scores, compared by :func:`_key`). Every value ``>=
    floor[r]`` is appended to row ``r``'s buffer (``vals``, ``cols``: (R, cap), ``cnt`` (R,)
    entries used); a full buffer first shrinks (:func:`_shrink`): to the entries at or above
    its ``kth`` largest minus ``reach[r]`` where that frees half of it, else to its ``keep``
    largest; the floor rises to match. So every column left out has a value ``<=`` the final
    floor, which is ``<=`` the row's ``keep``-th largest over all columns seen, or ``<`` its
    ``kth`` largest minus ``reach``.

    Args:
        a, b: (R, W) int32 C-contiguous.
        base: the first digit's weight (the sum must fit in int32: the caller's choice), or
            0: the scores are ``a``.
        col0: column index of the tile's first column.
        floor: (R,) int32 running floors, updated.
        vals, cols, cnt: the buffers, updated; ``cap = vals.shape[1] > keep``.
        keep: candidates wanted per row.
        gmax: (W // SELECT_GROUPS,) int32 scratch.
        kth, reach: the rank and the (R,) int64 distances of the first choice of
            :func:`_shrink` (``kth = keep`` and ``reach = 0``: keep the ``keep`` largest and
            their ties).
    """
    n_rows, width = a.shape
    cap = vals.shape[1]
    g = SELECT_GROUPS
    wg = width // g
    wm = wg * g
    mul = np.int32(base)
    one = mul == 0  # the scores are a itself
    hit = np.empty(wg, np.int32)  # the groups that reach the floor
    for r in range(n_rows):
        f = floor[r]
        c = cnt[r]
        ar = a[r]
        br = b[r] if not one else a[r]
        for j in range(wg):
            gmax[j] = _key(ar[j]) if one else ar[j] * mul + br[j]
        for s in range(1, g):
            off = s * wg
            for j in range(wg):
                v = _key(ar[off + j]) if one else ar[off + j] * mul + br[off + j]
                if v > gmax[j]:
                    gmax[j] = v
        # branch-free (~40 % of the groups reach the floor at k=100 with one digit): the
        # groups that do are listed; their columns written, the count rising for those kept
        n_hit = 0
        for j in range(wg):
            hit[n_hit] = j
            n_hit += gmax[j] >= f
        for h in range(n_hit):
            j = hit[h]
            if c + g <= cap and gmax[j] >= f:  # room for all: no shrink on the way
                for s in range(g):
                    i = s * wg + j
                    t = _key(ar[i]) if one else ar[i] * mul + br[i]
                    vals[r, c] = t
                    cols[r, c] = col0 + i
                    c += t >= f
                continue
            for s in range(g):
                i = s * wg + j
                t = _key(ar[i]) if one else ar[i] * mul + br[i]
                if t >= f:
                    if c == cap:  # full: shrink to the keep largest, raise the floor
                        c, f = _shrink(vals, cols, r, c, keep, kth, reach[r])
                        if t < f:
                            continue
                    vals[r, c] = t
                    cols[r, c] = col0 + i
                    c += 1
        for j in range(wm, width):  # the ragged tail
            t = _key(ar[j]) if one else ar[j] * mul + br[j]
            if t >= f:
                if c == cap:
                    c, f = _shrink(vals, cols, r, c, keep, kth, reach[r])
                    if t < f:
                        continue
                vals[r, c] = t
                cols[r, c] = col0 + j
                c += 1
        cnt[r] = c
        floor[r] = f


@jit
def _top_keys(keys: np.ndarray, c: int, keep: int) -> np.ndarray:
    """The ``min(c, keep)`` largest of the distinct ``keys[:c]`` (int64, overwritten),
    sorted descending."""
    part = keys[:c]
    if c > keep:  # distinct: exactly keep of them are >= the keep-th largest
        kth = np.partition(part, c - keep)[c - keep]
        n = 0
        for i in range(c):
            if part[i] >= kth:
                part[n] = part[i]
                n += 1
        c = keep
    return np.sort(keys[:c])[::-1]


_LOW = np.int64(0xFFFFFFFF)  # the low 32 bits of a key: 2^32 - 1 - column


@jit
def _pad_row(vals: np.ndarray, cols: np.ndarray, r: int, start: int) -> None:
    """Row ``r`` from ``start`` on: no entry (``INT32_MIN + column`` / -1; distinct values:
    numpy's partition slows ~15x on many equal keys)."""
    for i in range(start, vals.shape[1]):
        vals[r, i] = np.iinfo(np.int32).min + i
        cols[r, i] = -1


@jit
def union_rows(
    vals3: np.ndarray,
    cols3: np.ndarray,
    cnt2: np.ndarray,
    r0: int,
    r1: int,
    out_vals: np.ndarray,
    out_cols: np.ndarray,
) -> None:
    """Rows ``r0:r1``: every state's entries (as :func:`select_tile` left them), one after
    the other, then padding (``INT32_MIN + column`` / -1).

    Args:
        vals3, cols3: (S, R, cap) int32 values and int64 columns of S states.
        cnt2: (S, R) entries used.
        r0, r1: the rows to write (a worker's share).
        out_vals, out_cols: (R, W) with ``W >= cnt2[:, r].sum()``, written.
    """
    for r in range(r0, r1):
        c = 0
        for s in range(vals3.shape[0]):
            for i in range(cnt2[s, r]):
                out_vals[r, c] = vals3[s, r, i]
                out_cols[r, c] = cols3[s, r, i]
                c += 1
        _pad_row(out_vals, out_cols, r, c)


@jit
def keep_above(
    vals: np.ndarray, cols: np.ndarray, thr: np.ndarray, r0: int, r1: int, cnt: np.ndarray
) -> None:
    """Rows ``r0:r1`` of ``vals`` (R, W) int32 / ``cols`` (R, W) int64 (-1: padding): the
    entries with ``vals >= thr[r]`` moved to the front, in order, the rest of the row set to
    ``INT32_MIN + column`` / -1; ``cnt[r]`` the number kept."""
    for r in range(r0, r1):
        n = 0
        t = thr[r]
        for i in range(vals.shape[1]):  # branch-free (n <= i): about half the entries stay,
            v, c = vals[r, i], cols[r, i]  # a branch mispredicts; measured 3.7x faster
            vals[r, n] = v
            cols[r, n] = c
            n += (c >= 0) & (v >= t)
        cnt[r] = n
        _pad_row(vals, cols, r, n)


@jit
def best_pairs(
    scores: np.ndarray, cols: np.ndarray, keep: int, out_vals: np.ndarray, out_cols: np.ndarray
) -> None:
    """Per row, the ``keep`` best (score descending, then column ascending) of float32
    ``scores`` (R, C) with int64 ``cols`` (``0 <= col < 2^32``; at least ``keep`` per row):
    ``topk_engine.order_rows`` cut to ``keep``, in one pass (-0.0 ties +0.0, as there).

    Args:
        scores, cols: (R, C).
        keep: entries wanted per row.
        out_vals, out_cols: (R, keep) float32 / int64, written.
    """
    n_r, n_c = scores.shape
    keys = np.empty(n_c, np.int64)
    word = np.empty(1, np.float32)  # float32 <-> int32 bits
    bits = word.view(np.int32)
    for r in range(n_r):
        finite = 0
        for c in range(n_c):
            finite += scores[r, c] > -np.inf
        m = 0
        for c in range(n_c):
            if finite >= keep and scores[r, c] == -np.inf:  # not scored: cannot be kept
                continue
            word[0] = scores[r, c]
            b = bits[0]
            if b == np.int32(-(2**31)):  # -0.0 orders as +0.0
                b = np.int32(0)
            elif b < 0:  # negative floats: larger magnitude, smaller key
                b ^= np.int32(0x7FFFFFFF)
            keys[m] = (np.int64(b) << 32) | (_LOW - cols[r, c])
            m += 1
        best = _top_keys(keys, m, keep)
        for i in range(keep):
            col = _LOW - (best[i] & _LOW)
            out_cols[r, i] = col
            b = np.int32(best[i] >> 32)
            if b == 0:  # +0.0 or -0.0: the score as it was
                for c in range(n_c):
                    if cols[r, c] == col and scores[r, c] == 0:
                        out_vals[r, i] = scores[r, c]
                        break
                continue
            bits[0] = b ^ np.int32(0x7FFFFFFF) if b < 0 else b
            out_vals[r, i] = word[0]


@jit
def _tree_sum(p: np.ndarray) -> np.float32:
    """``topk_engine.fixed_sum`` of ``p`` (float32, overwritten): halves folded onto each
    other, ``w -> ceil(w / 2)``, one IEEE add per element per fold."""
    w = p.shape[0]
    while w > 1:
        h = (w + 1) // 2
        for j in range(w - h):
            p[j] += p[h + j]
        w = h
    return p[0]


@jit
def second_digit(
    q1: np.ndarray,
    x2: np.ndarray,
    cols: np.ndarray,
    a: np.ndarray,
    base: int,
    lo: np.ndarray,
    hi: np.ndarray,
    drop: bool,
    out: np.ndarray,
) -> None:
    """The int8 route's full int32 score ``base * a + q1[r] . x2[cols[r, c]]`` of the
    candidates with ``lo[r] <= a[r, c] < hi[r]`` (the first digit's product ``a`` already
    known): one int8 row each. With ``drop``, candidates below ``lo`` are dropped (``cols``
    set to -1).

    The pairs are taken in item order (a counting sort by buckets of :data:`ROW_BUCKET`
    rows), not query by query: the rows are then read at rising addresses, which the
    hardware prefetcher follows, and the row of the pair :data:`PREFETCH_AHEAD` ahead is
    asked for too. Both passes that sort them are branch-free. Measured on one thread, 128
    queries with ~470 pairs each over 100k items: 2.8 ms against 4.1 ms query by query.

    Args:
        q1: (Q, d) int8 queries.
        x2: (N, d) int8 second digits of the items, C-contiguous.
        cols, a: (Q, C) items (-1: none) and first-digit products.
        base: the first digit's weight.
        lo, hi: (Q,) int32 range of ``a`` to complete.
        drop: drop the candidates below ``lo``.
        out: (Q, C) int32, written for the candidates completed.
    """
    n_q, n_c = cols.shape
    d = q1.shape[1]
    n_b = (x2.shape[0] >> ROW_BUCKET_SHIFT) + 2
    at = np.zeros(n_b, np.int64)  # pairs per bucket, then each bucket's next slot
    # both passes branch-free (about a quarter of the entries are in range: a branch would
    # mispredict); an entry out of range counts 0 and writes to the spare slot m
    for r in range(n_q):
        for c in range(n_c):
            i, v = cols[r, c], a[r, c]
            if drop:
                cols[r, c] = -1 if (i >= 0) & (v < lo[r]) else i
            at[(max(i, 0) >> ROW_BUCKET_SHIFT) + 1] += (i >= 0) & (v >= lo[r]) & (v < hi[r])
    for b in range(n_b - 1):
        at[b + 1] += at[b]
    m = at[n_b - 1]
    pr, pc = np.empty(m + 1, np.int32), np.empty(m + 1, np.int32)
    pi = np.empty(m + 1, np.int64)
    for r in range(n_q):
        for c in range(n_c):
            i, v = cols[r, c], a[r, c]
            inside = (i >= 0) & (v >= lo[r]) & (v < hi[r])
            b = max(i, 0) >> ROW_BUCKET_SHIFT
            t = at[b] if inside else m
            at[b] += inside
            pr[t], pc[t], pi[t] = r, c, i
    flat = x2.reshape(-1)
    for t in range(m):
        if t + PREFETCH_AHEAD < m:  # inline: a call here measured 2x slower
            for o in range(0, d, 64):  # int8: 64 per 64-byte line
                prefetch(flat, pi[t + PREFETCH_AHEAD] * d + o)
        r = pr[t]
        row = x2[pi[t]]
        acc = np.int32(0)
        for j in range(d):
            acc += np.int32(q1[r, j]) * np.int32(row[j])
        out[r, pc[t]] = acc
    # the first digit's part in a loop of its own: in the loop above, it kept LLVM from
    # vectorising the dot product (2.3x slower, measured)
    for t in range(m):
        out[pr[t], pc[t]] += a[pr[t], pc[t]] * np.int32(base)


@jit
def canonical_pairs(
    qx: np.ndarray,
    items: np.ndarray,
    cand: np.ndarray,
    need: np.ndarray,
    metric: int,
    out: np.ndarray,
) -> None:
    """Canonical float32 scores of query ``r`` against item ``cand[r, c]`` where ``need``.

    Bit for bit :func:`~recsys_kit.topk_engine.canonical_scores`: IEEE float32 products, the
    same pairwise tree of adds (halves folded onto each other), a float64 square root rounded
    to float32 (correctly rounded) for cosine. Pairs not needed get ``-inf``. The rows are
    gathered at random addresses, so the kernel waits on memory more than it computes: it asks
    for the row of the pair :data:`PREFETCH_AHEAD` columns ahead while scoring this one.

    Args:
        qx: (Q, d) float32 queries as scored (unit rows for cosine, doubled for l2).
        items: (N, d) float32 C-contiguous.
        cand: (Q, C) int64 item indices (``>= 0`` where needed).
        need: (Q, C) bool.
        metric: a value of :data:`METRIC_CODES`.
        out: (Q, C) float32, written.
    """
    n_q, n_c = cand.shape
    d = qx.shape[1]
    p = np.empty(d, np.float32)
    eps = np.float32(1e-12)
    flat = items.reshape(-1)
    for r in range(n_q):
        q = qx[r]
        for c in range(n_c):
            ahead = c + PREFETCH_AHEAD  # inline: a call here measured 2x slower
            if ahead < n_c and need[r, ahead]:
                for o in range(0, d, 16):  # float32: 16 per 64-byte line
                    prefetch(flat, cand[r, ahead] * d + o)
            if not need[r, c]:
                out[r, c] = -np.inf
                continue
            x = items[cand[r, c]]
            for j in range(d):
                p[j] = q[j] * x[j]
            sc = _tree_sum(p)
            if metric == 0:
                out[r, c] = sc
                continue
            for j in range(d):
                p[j] = x[j] * x[j]
            sq = _tree_sum(p)
            if metric == 2:
                out[r, c] = sc - sq
            else:
                root = np.float32(np.sqrt(np.float64(sq)))
                out[r, c] = sc / max(root, eps)
