"""What to watch after a search launch: a request log, query drift, daily online metrics.

Offline metrics (nDCG on labelled queries) say a model *was* good; once live, a shop watches
the traffic itself:

* :class:`SearchLog`: every request's query, number of results, top score and latency
  (thread-safe, bounded), summarised as the zero-result rate and latency percentiles.
* :func:`query_drift`: how far today's queries moved from the queries the model was
  evaluated on: the shift of the mean query vector and the share of *novel* queries (no
  reference query within a cosine threshold).
* :func:`search_outcomes`, :func:`simulate_days` and :func:`daily_metrics`: days of traffic
  with a changing query mix and a (possibly broken) system, and the dashboard numbers per
  day: requests, zero-result rate, click-through rate, p99 latency, share of Chinese
  queries; :func:`dashboard` plots them with alert thresholds.

Example:
    >>> log = SearchLog()
    >>> log.record("red dress", ["P1"], [0.8], 0.012); log.record("xyz", [], [], 0.010)
    >>> log.summary()["zero_result_rate"]
    0.5
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys_kit import constants as C

__all__ = [
    "CLICK_BY_GRADE",
    "SearchLog",
    "query_drift",
    "search_outcomes",
    "simulate_days",
    "daily_metrics",
    "DASHBOARD_COLUMNS",
    "dashboard",
]

#: Click probability of the top result by its relevance grade (0-3), a simple user model.
CLICK_BY_GRADE = {0: 0.02, 1: 0.08, 2: 0.25, 3: 0.45}


class SearchLog:
    """A bounded, thread-safe log of search requests.

    Args:
        maxlen: requests kept (the oldest are dropped first).
    """

    def __init__(self, maxlen: int = 100_000) -> None:
        self._rows: deque[tuple[float, str, int, float, float]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def record(
        self,
        query: str,
        product_ids: Sequence[Any],
        scores: Sequence[float],
        seconds: float,
        ts: float | None = None,
    ) -> None:
        """Add one request (``ts`` defaults to now)."""
        top = float(scores[0]) if len(scores) else float("nan")
        row = (time.time() if ts is None else ts, query, len(product_ids), top, seconds * 1000)
        with self._lock:
            self._rows.append(row)

    def frame(self) -> pd.DataFrame:
        """``ts``, ``query``, ``n_results``, ``top_score``, ``latency_ms``."""
        with self._lock:
            rows = list(self._rows)
        return pd.DataFrame(rows, columns=["ts", "query", "n_results", "top_score", "latency_ms"])

    def summary(self) -> dict[str, Any]:
        """``requests``, ``zero_result_rate``, ``p50_ms``, ``p99_ms`` (NaN when empty)."""
        df = self.frame()
        if df.empty:
            return {"requests": 0, "zero_result_rate": float("nan"), "p50_ms": float("nan"),
                    "p99_ms": float("nan")}  # fmt: skip
        lat = np.sort(df["latency_ms"].to_numpy())
        pct = {p: float(lat[max(int(np.ceil(p / 100 * len(lat))), 1) - 1]) for p in (50, 99)}
        return {
            "requests": len(df),
            "zero_result_rate": float((df["n_results"] == 0).mean()),
            "p50_ms": pct[50],
            "p99_ms": pct[99],
        }


def query_drift(
    reference: np.ndarray, current: np.ndarray, threshold: float = 0.85
) -> dict[str, float]:
    """How far ``current`` query vectors moved from ``reference`` ones.

    Args:
        reference: ``(n_ref, dim)`` vectors of the queries the system was evaluated on.
        current: ``(n_cur, dim)`` vectors of today's queries.
        threshold: a current query with no reference query at cosine >= threshold is novel.

    Returns:
        ``centroid_shift`` (1 - cosine of the two mean vectors; 0 = same centre) and
        ``novel_share`` (share of novel current queries).
    """
    ref = np.asarray(reference, np.float32)
    cur = np.asarray(current, np.float32)
    if (
        ref.ndim != 2
        or cur.ndim != 2
        or ref.shape[1] != cur.shape[1]
        or not len(ref)
        or not len(cur)
    ):
        raise ValueError(f"pass two non-empty (n, dim) arrays, got {ref.shape}, {cur.shape}")

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    ref, cur = unit(ref), unit(cur)
    shift = 1.0 - float(unit(ref.mean(0)) @ unit(cur.mean(0)))
    best = (cur @ ref.T).max(axis=1)
    return {"centroid_shift": shift, "novel_share": float((best < threshold).mean())}


def search_outcomes(
    index: Any,
    query_vectors: np.ndarray,
    query_ids: Sequence[str],
    qrels: pd.DataFrame,
    *,
    min_score: float = 0.0,
    k: int = C.DEFAULT_K,
) -> pd.DataFrame:
    """What a system answers to each query: results kept, grade of the first, latency.

    Args:
        index: a :class:`~recsys_kit.ann.VectorIndex` (or anything with ``search``).
        query_vectors: one row per query.
        query_ids: their ids (to look up grades in ``qrels``; unjudged products grade 0).
        min_score: results below it are dropped (a query may get none).

    Returns:
        ``query_id``, ``n_results``, ``top_grade``, ``latency_ms`` (each query searched alone).
    """
    grade = {(q, p): g for q, p, g in zip(qrels[C.COL_QUERY_ID], qrels[C.COL_PRODUCT_ID],
                                          qrels[C.COL_GRADE])}  # fmt: skip
    rows = []
    for qid, vec in zip(query_ids, np.asarray(query_vectors, np.float32)):
        t0 = time.perf_counter()
        hits = index.search(vec[None, :], min(k, len(index)))[0]
        hits = [(p, s) for p, s in hits if s >= min_score]
        ms = (time.perf_counter() - t0) * 1000
        top = grade.get((qid, hits[0][0]), 0) if hits else 0
        rows.append({C.COL_QUERY_ID: qid, "n_results": len(hits), "top_grade": int(top),
                     "latency_ms": ms})  # fmt: skip
    return pd.DataFrame(rows)


def simulate_days(
    queries: pd.DataFrame,
    outcomes: Mapping[str, pd.DataFrame],
    schedule: Sequence[Mapping[str, Any]],
    *,
    per_day: int = 400,
    seed: int = C.SEED,
) -> pd.DataFrame:
    """Days of search traffic: sampled queries, the system's real results, simulated clicks.

    Args:
        queries: ``query_id``, ``language``, ``kind``.
        outcomes: per system name, one row per query: ``query_id``, ``n_results``,
            ``top_grade`` (relevance grade of the first result, 0 when none) and
            ``latency_ms`` (measured when the system answered it).
        schedule: one dict per day: ``system`` (a key of ``outcomes``) and optional
            ``pool`` (the query ids shoppers send that day; default all), ``zh_share`` /
            ``vague_share`` (the query mix that day; default: as sampled).
        per_day: requests per day.

    Returns:
        One row per request: ``day``, ``query_id``, ``language``, ``kind``, ``system``,
        ``n_results``, ``top_grade``, ``latency_ms``, ``clicked``.
    """
    rng = np.random.default_rng(seed)
    lang = queries[C.COL_LANGUAGE].to_numpy()
    vague = (queries[C.COL_QUERY_KIND] == "vague").to_numpy()
    rows = []
    for day, plan in enumerate(schedule):
        if plan["system"] not in outcomes:
            raise KeyError(f"day {day}: unknown system {plan['system']!r}; use {list(outcomes)}")
        w = np.ones(len(queries))
        if plan.get("pool") is not None:  # the queries shoppers send that day
            w = queries[C.COL_QUERY_ID].isin(set(plan["pool"])).to_numpy().astype(float)
            if not w.any():
                raise ValueError(f"day {day}: no query of the pool is in queries")
        for share, mask in ((plan.get("zh_share"), lang == "zh"), (plan.get("vague_share"), vague)):
            if share is not None and 0 < w[mask].sum() < w.sum():
                w = np.where(mask, w * share / (w[mask].sum() / w.sum()),
                             w * (1 - share) / (w[~mask].sum() / w.sum()))  # fmt: skip
        pick = rng.choice(len(queries), size=per_day, p=w / w.sum())
        out = outcomes[plan["system"]].set_index(C.COL_QUERY_ID)
        sample = queries.iloc[pick]
        res = out.loc[sample[C.COL_QUERY_ID]]
        grade = res["top_grade"].to_numpy().astype(int)
        p_click = np.where(res["n_results"].to_numpy() > 0,
                           np.vectorize(CLICK_BY_GRADE.get)(grade), 0.0)  # fmt: skip
        rows.append(pd.DataFrame({
            "day": day, C.COL_QUERY_ID: sample[C.COL_QUERY_ID].to_numpy(),
            C.COL_LANGUAGE: sample[C.COL_LANGUAGE].to_numpy(),
            C.COL_QUERY_KIND: sample[C.COL_QUERY_KIND].to_numpy(), "system": plan["system"],
            "n_results": res["n_results"].to_numpy(), "top_grade": grade,
            "latency_ms": res["latency_ms"].to_numpy(),
            "clicked": rng.random(per_day) < p_click,
        }))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def daily_metrics(events: pd.DataFrame) -> pd.DataFrame:
    """The dashboard's numbers per day.

    Returns:
        Index ``day``; ``requests``, ``zero_result_rate``, ``ctr`` (clicks per request),
        ``p99_ms`` (nearest rank) and ``zh_share``.
    """

    def p99(x: pd.Series) -> float:
        v = np.sort(x.to_numpy())
        return float(v[max(int(np.ceil(0.99 * len(v))), 1) - 1])

    g = events.groupby("day")
    return pd.DataFrame({
        "requests": g.size(),
        "zero_result_rate": g["n_results"].apply(lambda s: float((s == 0).mean())),
        "ctr": g["clicked"].mean(),
        "p99_ms": g["latency_ms"].apply(p99),
        "zh_share": g[C.COL_LANGUAGE].apply(lambda s: float((s == "zh").mean())),
    })  # fmt: skip


DASHBOARD_COLUMNS = ("zero_result_rate", "ctr", "p99_ms", "novel_share", "zh_share")


def dashboard(
    daily: pd.DataFrame,
    alerts: Mapping[str, tuple[str, float]] | None = None,
    columns: Sequence[str] | None = None,
):
    """A 2 x 2 dashboard of :func:`daily_metrics` (plus drift columns) with alert thresholds.

    Args:
        daily: from :func:`daily_metrics`, optionally joined with :func:`query_drift` columns.
        alerts: ``{column: ("above" | "below", threshold)}``; days breaking one are marked.
        columns: up to four columns (default: the first four of :data:`DASHBOARD_COLUMNS`
            present).

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    alerts = alerts or {}
    cols = list(columns or [c for c in DASHBOARD_COLUMNS if c in daily.columns][:4])
    missing = [c for c in cols if c not in daily.columns]
    if missing or not 1 <= len(cols) <= 4:
        raise ValueError(f"pick 1 to 4 columns of daily; missing {missing}")
    fig, axes = plt.subplots(2, 2, figsize=(9, 5), sharex=True)
    for ax in axes.ravel()[len(cols) :]:
        ax.set_visible(False)
    for ax, col in zip(axes.ravel(), cols):
        ax.plot(daily.index, daily[col], marker="o", ms=3)
        ax.set_title(col)
        if col in alerts:
            side, thr = alerts[col]
            ax.axhline(thr, color="red", ls="--", lw=1)
            bad = daily[col] > thr if side == "above" else daily[col] < thr
            ax.plot(daily.index[bad], daily[col][bad], "rx", ms=8)
    for ax in axes[-1]:
        ax.set_xlabel("day")
    fig.tight_layout()
    return fig
