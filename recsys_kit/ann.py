"""Approximate nearest-neighbour indexes for serving: FAISS HNSW and IVF against exact search.

The training material's step 6 deploys the model "for real-time recommendation". At a million
products an exact scan still answers a batch of queries quickly (:mod:`recsys_kit.ranking`), but
a single query's latency, the memory bill and the cost of adding products decide what a shop
serves. This module wraps the indexes a shop would compare behind one small interface:

* :class:`VectorIndex`: ``kind`` ``"exact"`` (the kit's :class:`~recsys_kit.ranking.Index`),
  ``"hnsw"`` (graph; FAISS ``IndexHNSWFlat``), ``"ivf"`` (inverted lists over ``nlist`` k-means
  cells, default ``sqrt(n)``;
  ``IndexIVFFlat``), ``"ivfsq8"`` (the same with each coordinate stored in one byte: a quarter of
  the memory, ``IndexIVFScalarQuantizer``) or ``"ivfpq"`` (IVF with product-quantised codes:
  ``m`` one-byte codes per vector, a fraction of the memory). Inner product on unit vectors
  (= cosine).
  ``search`` returns product ids; ``add`` appends products without a rebuild; ``save`` /
  :meth:`VectorIndex.load` persist the index with its ids, parameters and a checksum that
  ``load`` verifies.
* :func:`synthetic_vectors`: realistic filler vectors around real catalogue vectors (same
  anisotropy and clustering), to measure at a million products what MiniShop's 5,000 cannot.
* :func:`recall_at_k`, :func:`latency_percentiles` and :func:`benchmark`: recall@k against
  exact search, single-query latency percentiles, batch throughput and memory, per setting.

The module is over 600 lines because the index kinds, their measurement and the million-vector
run are one comparison (recall against latency against memory), read together.


Example:
    >>> import numpy as np
    >>> x = synthetic_vectors(np.eye(4, dtype=np.float32), 200, seed=0)
    >>> idx = VectorIndex.build("hnsw", x, [f"p{i}" for i in range(200)])
    >>> idx.search(x[:1], k=1)[0][0][0]
    'p0'
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit.ranking import Index

__all__ = [
    "KINDS",
    "DEFAULTS",
    "SEARCH_PARAM",
    "synthetic_vectors",
    "similarity_profile",
    "VectorIndex",
    "recall_at_k",
    "latency_percentiles",
    "time_single_queries",
    "benchmark",
    "choose_index",
    "serving_dir",
    "MILLION_SETTINGS",
    "run_million",
]

KINDS = ("exact", "hnsw", "ivf", "ivfsq8", "ivfpq")
#: Default build parameters per kind (``nlist`` None: about sqrt(n) cells).
DEFAULTS: dict[str, dict[str, Any]] = {
    "exact": {},
    "hnsw": {"M": 32, "ef_construction": 80, "ef_search": 64},
    "ivf": {"nlist": None, "nprobe": 8},
    "ivfsq8": {"nlist": None, "nprobe": 8},
    "ivfpq": {"nlist": None, "nprobe": 8, "m": 48},
}
#: The search-time knob of each kind (what a latency/recall sweep varies).
SEARCH_PARAM = {"hnsw": "ef_search", "ivf": "nprobe", "ivfsq8": "nprobe", "ivfpq": "nprobe"}
_FORMAT_VERSION = 1


def _faiss():
    try:
        import faiss
    except ImportError as err:  # a clear fix, not a bare ImportError deep in a notebook
        raise ImportError(
            "approximate indexes need FAISS: run `pip install faiss-cpu` (or faiss-gpu)"
        ) from err
    return faiss


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"vectors must be 2-D (n, dim), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("vectors contain NaN or inf")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def synthetic_vectors(
    base: np.ndarray,
    n: int,
    *,
    noise: float = 0.8,
    seed: int = C.SEED,
    chunk: int = 65536,
) -> np.ndarray:
    """``n`` unit vectors that look like ``base``: each a random base vector plus noise drawn
    from the base's own covariance, renormalised.

    Real embeddings are anisotropic (a few directions carry most of the variance) and
    clustered (products of one category sit together); uniform random vectors are neither,
    which makes ANN indexes look worse (no structure to exploit) or better (no near-ties)
    than on real data. Noise shaped by the base covariance keeps both properties.

    Args:
        base: ``(n_base, dim)`` real vectors (e.g. encoded catalogue titles), ``n_base >= 2``.
        n: vectors to make.
        noise: noise scale relative to the base's spread (0 copies base vectors).
        seed: random seed.
        chunk: rows generated at a time (bounds the temporary memory).

    Returns:
        float32 ``(n, dim)`` unit rows; row ``i < n_base`` is a noisy copy of ``base[i]``.
    """
    base = _unit(base)
    if len(base) < 2:
        raise ValueError("base needs at least 2 vectors to estimate their covariance")
    if n < 0 or noise < 0:
        raise ValueError(f"n and noise must be >= 0, got n={n}, noise={noise}")
    rng = np.random.default_rng(seed)
    centred = base - base.mean(0)
    # Principal directions and spreads of the base: noise = z @ diag(s) @ Vt, i.e. N(0, cov).
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    shape = (s[:, None] / math.sqrt(max(len(base) - 1, 1)) * vt).astype(np.float32)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        rows = np.arange(start, start + m) % len(base)
        rows = np.where(np.arange(start, start + m) < len(base), rows,
                        rng.integers(len(base), size=m))  # fmt: skip
        z = rng.standard_normal((m, len(s)), dtype=np.float32)
        out[start : start + m] = base[rows] + np.float32(noise) * (z @ shape)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def similarity_profile(x: np.ndarray, sample: int = 300, seed: int = C.SEED) -> dict[str, float]:
    """Cosine statistics of a sample of vectors, to compare synthetic vectors with real ones.

    Returns:
        ``pairwise_p5``, ``pairwise_median`` (cosine of random pairs) and
        ``nearest_median`` (cosine of each vector to its nearest other vector).
    """
    x = _unit(x)
    if len(x) > sample:
        x = x[np.random.default_rng(seed).choice(len(x), sample, replace=False)]
    s = x @ x.T
    pair = s[np.triu_indices(len(x), 1)]
    np.fill_diagonal(s, -np.inf)
    return {"pairwise_p5": float(np.percentile(pair, 5)), "pairwise_median": float(np.median(pair)),
            "nearest_median": float(np.median(s.max(axis=1)))}  # fmt: skip


@dataclass
class VectorIndex:
    """One searchable index of product vectors (exact or approximate) with its product ids.

    Build with :meth:`build`; load with :meth:`load`.
    """

    kind: str
    index: Any
    ids: list[Any]
    params: dict[str, Any] = field(default_factory=dict)
    dim: int = 0
    build_seconds: float = 0.0
    #: The unit vectors of an exact index (the exact index is a scan over them).
    vectors: np.ndarray | None = None

    # -------------------------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        kind: str,
        vectors: np.ndarray,
        ids: Sequence[Any],
        *,
        seed: int = C.SEED,
        threads: int | None = None,
        device: str | None = None,
        **params: Any,
    ) -> VectorIndex:
        """Build an index over unit-normalised ``vectors``.

        Args:
            kind: one of :data:`KINDS`.
            vectors: ``(n, dim)`` float vectors (normalised here).
            ids: one product id per row.
            seed: k-means seed (IVF kinds).
            threads: FAISS threads (default: FAISS's own).
            device: ``"cuda"`` keeps an exact index on the GPU (the kit's ranker) and trains
                IVF k-means there when FAISS has GPU support (``faiss-gpu``); HNSW builds on
                the CPU. Default: CPU.
            params: overrides of :data:`DEFAULTS` (``M``, ``ef_construction``,
                ``ef_search``, ``nlist``, ``nprobe``, ``m``).

        Returns:
            The index; ``build_seconds`` holds the build (and training) time.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        unknown = set(params) - set(DEFAULTS[kind])
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)} for {kind!r}; use "
                             f"{sorted(DEFAULTS[kind])}")  # fmt: skip
        x = _unit(vectors)
        if len(ids) != len(x):
            raise ValueError(f"got {len(ids)} ids for {len(x)} vectors: pass one id per row")
        p = {**DEFAULTS[kind], **params}
        t0 = time.perf_counter()
        if kind == "exact":
            index: Any = _exact(x, device)
        else:
            faiss = _faiss()
            if threads:
                faiss.omp_set_num_threads(int(threads))
            d = x.shape[1]
            if kind == "hnsw":
                index = faiss.IndexHNSWFlat(d, int(p["M"]), faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = int(p["ef_construction"])
            else:
                if p["nlist"] is None:  # sqrt(n) cells, at least 39 training points each
                    p["nlist"] = int(max(1, min(math.sqrt(len(x)), len(x) // 39)))
                quantizer = faiss.IndexFlatIP(d)
                if kind == "ivf":
                    index = faiss.IndexIVFFlat(quantizer, d, int(p["nlist"]),
                                               faiss.METRIC_INNER_PRODUCT)  # fmt: skip
                elif kind == "ivfsq8":
                    index = faiss.IndexIVFScalarQuantizer(
                        quantizer, d, int(p["nlist"]), faiss.ScalarQuantizer.QT_8bit,
                        faiss.METRIC_INNER_PRODUCT,
                    )  # fmt: skip

                else:
                    if d % int(p["m"]):
                        raise ValueError(f"m={p['m']} must divide the dimension {d}")
                    index = faiss.IndexIVFPQ(quantizer, d, int(p["nlist"]), int(p["m"]), 8,
                                             faiss.METRIC_INNER_PRODUCT)  # fmt: skip
                index.cp.seed = seed
                train = x
                cap = max(256 * int(p["nlist"]), 39 * int(p["nlist"]))
                if len(x) > cap:  # k-means on a sample, as FAISS recommends
                    train = x[np.random.default_rng(seed).choice(len(x), cap, replace=False)]
                index = _train_ivf(faiss, index, train, device)
            index.add(x)
        out = cls(kind, index, list(ids), p, x.shape[1], time.perf_counter() - t0)
        out.vectors = x if kind == "exact" else None
        out.set_search(**{k: v for k, v in p.items() if k in ("ef_search", "nprobe")})
        return out

    def set_search(self, **params: Any) -> VectorIndex:
        """Set the search-time knob (``ef_search`` for HNSW, ``nprobe`` for IVF kinds)."""
        for name, value in params.items():
            if name == "ef_search" and self.kind == "hnsw":
                self.index.hnsw.efSearch = int(value)
            elif name == "nprobe" and self.kind in ("ivf", "ivfsq8", "ivfpq"):
                self.index.nprobe = int(min(int(value), self.params["nlist"]))
            else:
                raise ValueError(f"{name!r} is not a search parameter of a {self.kind!r} index")
            self.params[name] = int(value)
        return self

    # ------------------------------------------------------------------------------- search
    def __len__(self) -> int:
        return len(self.ids)

    def search_rows(
        self, queries: np.ndarray, k: int = C.DEFAULT_K
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, rows)`` arrays ``(n_queries, k)``; a missing result has row -1."""
        q = _unit(np.atleast_2d(queries))
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {q.shape[1]}, the index {self.dim}")
        if not 1 <= k <= len(self):
            raise ValueError(f"k must be between 1 and the index size {len(self)}, got {k}")
        if self.kind == "exact":
            s, i = self.index.search_arrays(q, k)
            return np.asarray(s, np.float32), np.asarray(i, np.int64)
        s, i = self.index.search(q, k)
        return s, i

    def search(self, queries: np.ndarray, k: int = C.DEFAULT_K) -> list[list[tuple[Any, float]]]:
        """Top-k ``(product_id, score)`` per query, best first."""
        s, rows = self.search_rows(queries, k)
        return [
            [(self.ids[j], float(v)) for v, j in zip(srow, irow) if j >= 0]
            for srow, irow in zip(s, rows)
        ]

    # -------------------------------------------------------------------------------- update
    def add(self, vectors: np.ndarray, ids: Sequence[Any]) -> VectorIndex:
        """Append products without rebuilding (HNSW links them into the graph; IVF puts them
        in their nearest existing cell, so a catalogue that drifts needs a periodic rebuild).

        Raises:
            ValueError: on a duplicate id (an update of an existing product needs a rebuild
                or a delete, which these FAISS indexes do not support cheaply).
        """
        x = _unit(vectors)
        if len(ids) != len(x):
            raise ValueError(f"got {len(ids)} ids for {len(x)} vectors: pass one id per row")
        if x.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {x.shape[1]}, the index {self.dim}")
        dup = set(self.ids) & set(ids)
        if dup or len(set(ids)) != len(ids):
            raise ValueError(f"id(s) already indexed or repeated, e.g. {sorted(dup)[:3]}: an "
                             "update needs a rebuild of the index")  # fmt: skip
        if self.kind == "exact":  # a scan has nothing to rebuild: append the rows
            self.vectors = np.vstack([self.vectors, x])
            self.index = _exact(self.vectors, str(self.index.device))  # stays where it was
        else:
            self.index.add(x)
        self.ids.extend(ids)
        return self

    # --------------------------------------------------------------------------- persistence
    def memory_bytes(self) -> int:
        """Bytes of the serialised index (vectors, graph or codes; ids not counted)."""
        if self.kind == "exact":
            return int(self.vectors.nbytes)
        return int(_faiss().serialize_index(self.index).nbytes)

    def save(self, folder: str | Path) -> Path:
        """Write ``index.bin`` (FAISS format, or ``.npy`` for exact) and ``meta.json`` (kind,
        params, ids, dim, sha256 of the index file).

        Returns:
            The folder.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "index.bin"
        tmp = path.with_suffix(".tmp")
        if self.kind == "exact":
            with open(tmp, "wb") as fh:
                np.save(fh, self.vectors)
        else:
            _faiss().write_index(self.index, str(tmp))
        tmp.replace(path)  # a crash mid-write never leaves a half index under the real name
        meta = {
            "format": _FORMAT_VERSION,
            "kind": self.kind,
            "params": self.params,
            "dim": self.dim,
            "ids": [str(i) for i in self.ids],
            "sha256": _sha256(path),
        }
        (folder / "meta.json").write_text(json.dumps(meta))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> VectorIndex:
        """Load what :meth:`save` wrote, verifying the checksum and the sizes.

        Raises:
            FileNotFoundError: a file is missing.
            ValueError: the index file does not match its metadata (corrupt or swapped).
        """
        folder = Path(folder)
        meta_path, path = folder / "meta.json", folder / "index.bin"
        for p in (meta_path, path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} is missing: save the index with VectorIndex.save")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != _FORMAT_VERSION:
            raise ValueError(f"{folder}: unknown index format {meta.get('format')!r}")
        if _sha256(path) != meta["sha256"]:
            raise ValueError(f"{path} does not match the checksum in meta.json (corrupt or "
                             "replaced): rebuild and save the index again")  # fmt: skip
        items = None
        if meta["kind"] == "exact":
            items = np.load(path)
            index: Any = _exact(items)
            n = len(items)
        else:
            index = _faiss().read_index(str(path))
            n = index.ntotal
        if n != len(meta["ids"]):
            raise ValueError(f"{path} holds {n} vectors but meta.json lists {len(meta['ids'])} ids")
        out = cls(meta["kind"], index, meta["ids"], dict(meta["params"]), int(meta["dim"]))
        out.vectors = items
        out.set_search(**{k: v for k, v in out.params.items() if k in ("ef_search", "nprobe")})
        return out


def _exact(x: np.ndarray, device: str | None = None) -> Any:
    # The kit's exact search (dot = cosine on unit rows), imported at the top so a build's
    # time never includes importing torch.
    return Index(x, list(range(len(x))), metric="dot", device=device)


def _train_ivf(faiss: Any, index: Any, train: np.ndarray, device: str | None) -> Any:
    """Train an IVF index's k-means (on the GPU when asked and FAISS can); return it (CPU)."""
    if device and str(device).startswith("cuda") and hasattr(faiss, "StandardGpuResources"):
        gpu = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        gpu.train(train)
        return faiss.index_gpu_to_cpu(gpu)
    index.train(train)
    return index


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------------
def recall_at_k(approx: np.ndarray, exact: np.ndarray, k: int | None = None) -> float:
    """Mean share of each query's exact top-k that the approximate top-k found.

    Args:
        approx, exact: ``(n_queries, >= k)`` row (or id) arrays, best first; -1 = no result.
        k: cutoff (default: the width of ``exact``).

    Example:
        >>> recall_at_k(np.array([[1, 2, 9]]), np.array([[1, 2, 3]]))
        0.6666666666666666
    """
    a, e = np.asarray(approx), np.asarray(exact)
    if a.ndim != 2 or e.ndim != 2 or len(a) != len(e):
        raise ValueError(f"approx and exact must be (n_queries, k) arrays of one length, got "
                         f"{a.shape} and {e.shape}")  # fmt: skip
    k = e.shape[1] if k is None else k
    if len(e) == 0 or k < 1 or k > min(a.shape[1], e.shape[1]):
        raise ValueError(f"k must be in [1, {min(a.shape[1], e.shape[1])}] and there must be "
                         "queries")  # fmt: skip
    hits = [len(set(ar[:k].tolist()) & set(er[:k].tolist()) - {-1}) for ar, er in zip(a, e)]
    return float(np.mean(hits) / k)


def latency_percentiles(
    seconds: Sequence[float] | np.ndarray, percentiles: Sequence[float] = (50, 99)
) -> dict[str, float]:
    """Latency percentiles in milliseconds (nearest-rank: the smallest value at or above
    which ``p`` percent of the requests finished), plus the mean.

    Example:
        >>> latency_percentiles([0.001 * i for i in range(1, 101)])["p99_ms"]
        99.0
    """
    x = np.sort(np.asarray(seconds, dtype=np.float64)) * 1000.0
    if x.size == 0:
        raise ValueError("no timings: measure at least one request")
    out = {}
    for p in percentiles:
        if not 0 < p <= 100:
            raise ValueError(f"percentiles must be in (0, 100], got {p}")
        rank = max(math.ceil(p / 100 * x.size), 1)
        out[f"p{p:g}_ms"] = float(x[rank - 1])
    out["mean_ms"] = float(x.mean())
    return out


def time_single_queries(
    index: VectorIndex, queries: np.ndarray, k: int = C.DEFAULT_K, repeat: int = 3
) -> np.ndarray:
    """Seconds of each query searched alone (the latency one shopper sees), best of ``repeat``.

    The best of a few runs removes what a busy machine adds at random (a query preempted by
    another process); what remains varies with the query itself (an HNSW walk is longer for
    some queries). Queueing under load is measured by :func:`recsys_kit.service.load_test`.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    q = np.asarray(queries, np.float32)
    out = np.full(len(q), np.inf)
    for _ in range(repeat):
        for i, row in enumerate(q):
            t0 = time.perf_counter()
            index.search_rows(row[None, :], k)
            out[i] = min(out[i], time.perf_counter() - t0)
    return out


def benchmark(
    vectors: np.ndarray,
    queries: np.ndarray,
    *,
    settings: Sequence[tuple[str, dict[str, Any]]] | None = None,
    k: int = C.DEFAULT_K,
    n_latency: int = 200,
    threads: int | None = None,
    seed: int = C.SEED,
    device: str | None = None,
) -> pd.DataFrame:
    """Recall@k against exact search, latency, throughput, memory and build time per setting.

    Each index kind (with its build parameters) is built once, and released before the next;
    its search knob is swept over the settings that name it. Rows come grouped by build.

    Args:
        vectors: ``(n, dim)`` product vectors.
        queries: ``(n_queries, dim)`` query vectors.
        settings: ``(kind, params)`` pairs; default: exact, HNSW ef_search 16-128, IVF
            nprobe 1-32, IVF-PQ nprobe 8-32.
        k: recall cutoff.
        n_latency: queries timed one at a time, best of 3 runs each (the rest only in the
            batch).
        threads: FAISS threads.
        seed: k-means seed (IVF kinds).
        device: passed to :meth:`VectorIndex.build` for every index: ``"cuda"`` keeps the
            exact index on the GPU and trains IVF k-means there, but only when FAISS was
            installed with GPU support (``faiss-gpu``, not a dependency of the kit; with
            ``faiss-cpu`` IVF trains on the CPU). HNSW always builds on the CPU; searches run
            where each index lives. Default: CPU.

    Returns:
        One row per setting: ``kind``, ``param``, ``value``, ``recall``, ``p50_ms``,
        ``p99_ms`` (single queries), ``batch_qps`` (all queries in one call),
        ``memory_mb``, ``build_s``.
    """
    if settings is None:
        settings = [("exact", {})]
        settings += [("hnsw", {"ef_search": e}) for e in (16, 32, 64, 128)]
        settings += [("ivf", {"nprobe": p}) for p in (1, 4, 8, 32)]
        settings += [("ivfpq", {"nprobe": p}) for p in (8, 32)]
    ids = list(range(len(vectors)))
    exact: VectorIndex | None = VectorIndex.build("exact", vectors, ids, device=device)
    _, truth = exact.search_rows(queries, k)
    # One build per kind and build parameters; each is released before the next is built
    # (a million 384-d vectors take 1.5 GB per copy).
    by_build: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for kind, params in settings:
        search_keys = {SEARCH_PARAM.get(kind)}
        build = sorted((n, v) for n, v in params.items() if n not in search_keys)
        by_build.setdefault(f"{kind}{build}", []).append((kind, params))
    rows = []
    for group in by_build.values():
        kind = group[0][0]
        first = {n: v for n, v in group[0][1].items() if n != SEARCH_PARAM.get(kind)}
        idx = exact if kind == "exact" and exact is not None else VectorIndex.build(
            kind, vectors, ids, seed=seed, threads=threads, device=device, **first
        )  # fmt: skip
        for _, params in group:
            search = {n: v for n, v in params.items() if n == SEARCH_PARAM.get(kind)}
            if search:
                idx.set_search(**search)
            t0 = time.perf_counter()
            _, found = idx.search_rows(queries, k)
            batch = time.perf_counter() - t0
            lat = latency_percentiles(time_single_queries(idx, queries[:n_latency], k))
            param = SEARCH_PARAM.get(kind, "")
            rows.append({
                "kind": kind, "param": param, "value": idx.params.get(param, np.nan),
                "recall": recall_at_k(found, truth, k), "p50_ms": lat["p50_ms"],
                "p99_ms": lat["p99_ms"], "batch_qps": len(queries) / batch,
                "memory_mb": idx.memory_bytes() / 2**20, "build_s": idx.build_seconds,
            })  # fmt: skip
        del idx
        if kind == "exact":
            exact = None  # its truth is kept; the 2 copies of the vectors are not
    return pd.DataFrame(rows)


def choose_index(
    table: pd.DataFrame, *, min_recall: float, max_p99_ms: float, max_memory_mb: float
) -> dict[str, Any] | None:
    """The cheapest setting (least memory, then lowest p99) that meets every budget, or None.

    Args:
        table: from :func:`benchmark`.
        min_recall, max_p99_ms, max_memory_mb: the budget.

    Returns:
        The chosen row as a dict, or None when no setting fits.
    """
    ok = table[(table["recall"] >= min_recall) & (table["p99_ms"] <= max_p99_ms)
               & (table["memory_mb"] <= max_memory_mb)]  # fmt: skip
    if ok.empty:
        return None
    best = ok.sort_values(["memory_mb", "p99_ms", "recall"], ascending=[True, True, False])
    return best.iloc[0].to_dict()


def serving_dir() -> Path:
    """Folder of the committed serving results (``datasets/serving``)."""
    from recsys_kit import paths

    return paths.data_dir() / "serving"


MILLION_SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("exact", {}),
    *[("hnsw", {"M": 16, "ef_construction": 40, "ef_search": e}) for e in (64, 128, 256, 512)],
    *[("ivf", {"nprobe": p}) for p in (4, 16, 64)],
    *[("ivfsq8", {"nprobe": p}) for p in (4, 16, 64)],
]


def run_million(
    out_dir: str | Path | None = None,
    n: int = 1_000_000,
    *,
    settings: Sequence[tuple[str, dict[str, Any]]] = MILLION_SETTINGS,
    threads: int | None = None,
    seed: int = C.SEED,
    base: np.ndarray | None = None,
    device: str | None = None,
) -> pd.DataFrame:
    """Reproduce the serving module's million-vector benchmark in one call.

    The 5,000 MiniShop titles are encoded with the multilingual encoder (cached on disk),
    padded with :func:`synthetic_vectors` to ``n`` vectors, and :func:`benchmark` runs every
    setting with MiniShop's 462 queries.

    Args:
        out_dir: where to write ``million.csv`` and ``million.json`` (default
            :func:`serving_dir`; ``""`` writes nothing).
        n: total vectors.
        settings: ``(kind, params)`` pairs.
        threads: FAISS threads.
        seed: seed of the synthetic vectors and of k-means.
        base: real vectors to pad (default: the encoded MiniShop titles).
        device: where to build the indexes (``"cuda"``: the exact index on the GPU, IVF
            k-means trained there only with ``faiss-gpu``, which the kit does not install);
            see :func:`benchmark`. Recorded in ``million.json``.

    Returns:
        The benchmark table.
    """
    import os
    import platform

    import faiss

    from recsys_kit.datasets import load_catalog, load_queries
    from recsys_kit.encoders import TextEncoder
    from recsys_kit.shipped_vectors import encode_shipped

    catalog, queries = load_catalog(), load_queries()
    if base is None:  # encoded in chunks: each is cached on disk, so a stopped run resumes
        enc, titles = TextEncoder("multilingual"), list(catalog[C.COL_TITLE_EN])
        base = np.vstack([enc.encode(titles[i : i + 500]) for i in range(0, len(titles), 500)])
    qv = encode_shipped("queries", list(queries[C.COL_QUERY]), kind="query")
    x = np.vstack([_unit(base), synthetic_vectors(base, max(n - len(base), 0), seed=seed)])
    t0 = time.perf_counter()
    table = benchmark(x, qv, settings=settings, threads=threads, seed=seed, device=device)
    info = {
        "n": int(len(x)), "dim": int(x.shape[1]), "queries": int(len(qv)), "k": C.DEFAULT_K,
        "base": f"{len(base):,} real vectors (default: the MiniShop English titles, "
        "multilingual-e5-small) + synthetic ones",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s)",
        "load_average": [round(v, 1) for v in os.getloadavg()],
        "faiss": faiss.__version__, "threads": threads, "device": device or "cpu",
        "faiss_gpu": hasattr(faiss, "StandardGpuResources"),
        "seconds": round(time.perf_counter() - t0),
    }  # fmt: skip
    if out_dir != "":
        folder = Path(out_dir) if out_dir is not None else serving_dir()
        folder.mkdir(parents=True, exist_ok=True)
        table.round(4).to_csv(folder / "million.csv", index=False)
        (folder / "million.json").write_text(json.dumps(info, indent=1) + "\n")
    return table


def _main(argv: Sequence[str] | None = None) -> None:
    """``python -m recsys_kit.ann [n] [threads] [--device cuda]``: the million-vector run."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m recsys_kit.ann",
        description="The million-vector index benchmark (see run_million).",
    )
    parser.add_argument("n", nargs="?", type=int, default=1_000_000, help="total vectors")
    parser.add_argument("threads", nargs="?", type=int, default=None, help="FAISS threads")
    parser.add_argument(
        "--device", default=None, help='"cuda": exact index on the GPU, IVF k-means with faiss-gpu'
    )
    args = parser.parse_args(argv)
    print(run_million(n=args.n, threads=args.threads, device=args.device).round(3))


if __name__ == "__main__":  # python -m recsys_kit.ann [n] [threads] [--device cuda]
    _main()
