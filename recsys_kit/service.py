"""A real search service: FastAPI + uvicorn with the kit behind it, and a bounded load test.

* :func:`create_app` builds the HTTP API over a :class:`~recsys_kit.ann.VectorIndex` and a
  query encoder: ``GET /search?q=...&k=10`` returns product ids, scores and titles;
  ``GET /health``; ``GET /stats`` (requests, zero-result rate, latency percentiles from the
  service's own :class:`~recsys_kit.monitoring.SearchLog`). ``min_score`` turns weak matches
  into "no result" (what a zero-result rate counts for a dense retriever).
* :class:`SearchServer` runs uvicorn in a background thread on ``127.0.0.1`` and a free port,
  as a context manager (started and stopped with the block; nothing outlives it).
* :func:`load_test` sends a fixed number of requests over loopback from ``concurrency``
  client threads and stops by itself (request count and a wall-clock cap), reporting p50/p99
  latency and throughput; :func:`load_curve` repeats it at several concurrencies.

Example:
    >>> with SearchServer(create_app(index, encoder)) as server:          # doctest: +SKIP
    ...     load_test(server.url, ["red dress", "美妆推荐"], concurrency=4, n_requests=100)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit.ann import VectorIndex, latency_percentiles
from recsys_kit.monitoring import SearchLog

__all__ = [
    "MAX_K",
    "create_app",
    "SearchServer",
    "load_test",
    "load_curve",
]

#: Largest k a client may ask for (a cheap guard against expensive requests).
MAX_K = 100


def create_app(
    index: VectorIndex,
    encode_query: Callable[[list[str]], np.ndarray],
    *,
    titles: Mapping[Any, str] | None = None,
    min_score: float = 0.0,
    log: SearchLog | None = None,
    faq: Callable[[str], dict[str, Any]] | None = None,
):
    """The search API.

    Args:
        index: the product index (ids are product ids).
        encode_query: texts -> ``(n, dim)`` query vectors (e.g.
            ``lambda t: TextEncoder("multilingual", cache=False).encode(t, kind="query")``).
        titles: optional ``{product_id: title}`` returned with the results.
        min_score: results scoring below it are dropped (0 results = a "zero-result" query).
        log: where requests are recorded (default: a new :class:`SearchLog`).
        faq: optional customer-service answerer ``question -> dict`` for ``GET /faq``.

    Returns:
        A FastAPI application; ``app.state.log`` is its :class:`SearchLog`.
    """
    from fastapi import FastAPI, HTTPException, Query

    app = FastAPI(title="MiniShop search", version="1.0")
    app.state.log = log if log is not None else SearchLog()
    lock = threading.Lock()  # encoders and FAISS indexes are not promised thread-safe

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "products": len(index), "kind": index.kind}

    @app.get("/search")
    def search(q: str = Query(..., min_length=1, max_length=500), k: int = C.DEFAULT_K) -> dict:
        if not q.strip():
            raise HTTPException(status_code=422, detail="q must contain a non-space character")
        top = min(MAX_K, len(index))
        if not 1 <= k <= top:
            raise HTTPException(status_code=422, detail=f"k must be between 1 and {top}")
        t0 = time.perf_counter()
        with lock:
            vec = np.asarray(encode_query([q]), dtype=np.float32)
            hits = index.search(vec, k)[0]
        hits = [(pid, s) for pid, s in hits if s >= min_score]
        took = time.perf_counter() - t0
        app.state.log.record(q, [pid for pid, _ in hits], [s for _, s in hits], took)
        results = [
            {"product_id": str(pid), "score": round(s, 5),
             **({"title": titles.get(pid, "")} if titles is not None else {})}
            for pid, s in hits
        ]  # fmt: skip
        return {"query": q, "results": results, "took_ms": round(took * 1000, 3)}

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        return app.state.log.summary()

    if faq is not None:

        @app.get("/faq")
        def answer(q: str = Query(..., min_length=1, max_length=500)) -> dict[str, Any]:
            with lock:
                return faq(q)

    return app


class SearchServer:
    """Run an ASGI app with uvicorn in a background thread on loopback, as a context manager.

    Args:
        app: the application (:func:`create_app`).
        host: interface (loopback by default: nothing outside the machine can connect).
        port: 0 picks a free port.
        start_timeout: seconds to wait for the server to accept connections.

    Example:
        >>> with SearchServer(app) as server:                                # doctest: +SKIP
        ...     server.client().get("/health").json()
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 30.0
    ) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                lifespan="off")  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="search-server", daemon=True)
        self._timeout = start_timeout
        self.url = ""

    def start(self) -> SearchServer:
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                raise RuntimeError("the search server did not start (port in use?)")
            time.sleep(0.02)
        sock = self._server.servers[0].sockets[0].getsockname()
        self.url = f"http://{sock[0]}:{sock[1]}"
        return self

    def client(self, timeout: float = 10.0):
        """An ``httpx.Client`` for this server that ignores proxy settings (loopback only)."""
        import httpx

        return httpx.Client(base_url=self.url, timeout=timeout, trust_env=False)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> SearchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load_test(
    url: str,
    queries: Sequence[str],
    *,
    concurrency: int = 4,
    n_requests: int = 200,
    max_seconds: float = 60.0,
    k: int = C.DEFAULT_K,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Send ``n_requests`` searches from ``concurrency`` client threads; stop by itself.

    Each thread keeps one HTTP connection and sends its requests back to back (a closed
    loop: a new request leaves when the previous answer arrived), cycling over ``queries``.
    The test ends after ``n_requests`` or ``max_seconds``, whichever comes first.

    Args:
        url: the server's base URL (``SearchServer.url``).
        queries: query texts to cycle through.
        concurrency: client threads (simultaneous requests).
        n_requests: total requests.
        max_seconds: wall-clock cap.
        k: results per request.
        timeout: per-request timeout (a timed-out request counts as an error).

    Returns:
        ``concurrency``, ``requests`` (completed), ``errors``, ``seconds``, ``throughput_rps``,
        ``p50_ms``, ``p99_ms``, ``mean_ms`` and ``latencies_s`` (one per completed request).
    """
    import httpx

    if not queries:
        raise ValueError("pass at least one query")
    if concurrency < 1 or n_requests < 1 or max_seconds <= 0:
        raise ValueError("concurrency and n_requests must be >= 1 and max_seconds > 0")
    counter = iter(range(n_requests))
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    latencies: list[float] = []
    errors = [0]

    def worker() -> None:
        # trust_env=False: a proxy configured for the internet must not see loopback traffic
        with httpx.Client(base_url=url, timeout=timeout, trust_env=False) as client:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                try:
                    r = client.get("/search", params={"q": queries[i % len(queries)], "k": k})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                dt = time.perf_counter() - t0
                with lock:
                    if ok:
                        latencies.append(dt)
                    else:
                        errors[0] += 1

    t_start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for f in [pool.submit(worker) for _ in range(concurrency)]:
            f.result()
    seconds = time.perf_counter() - t_start
    out: dict[str, Any] = {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors[0],
        "seconds": seconds,
        "throughput_rps": len(latencies) / seconds if seconds > 0 else 0.0,
    }
    if latencies:
        out.update(latency_percentiles(latencies))
    else:
        out.update({"p50_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")})
    out["latencies_s"] = latencies
    return out


def load_curve(
    url: str,
    queries: Sequence[str],
    concurrencies: Sequence[int] = (1, 4, 16),
    *,
    n_requests: int = 200,
    max_seconds: float = 30.0,
    k: int = C.DEFAULT_K,
) -> pd.DataFrame:
    """:func:`load_test` at each concurrency: one row each (without the raw latencies)."""
    rows = []
    for c in concurrencies:
        res = load_test(url, queries, concurrency=c, n_requests=n_requests,
                        max_seconds=max_seconds, k=k)  # fmt: skip
        res.pop("latencies_s")
        rows.append(res)
    return pd.DataFrame(rows)
