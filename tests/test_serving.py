"""Serving: ANN indexes against exact search, persistence, updates, the HTTP service under load,
monitoring."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recsys_kit import ann, monitoring, service
from recsys_kit import constants as C

pytest.importorskip("faiss")
DIM = 32


@pytest.fixture(scope="session")
def vectors():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(60, DIM)).astype(np.float32) * np.linspace(
        3, 0.2, DIM, dtype=np.float32
    )
    return ann.synthetic_vectors(base, 3000, seed=1), ann.synthetic_vectors(base, 50, seed=2)


@pytest.fixture(scope="session")
def ids():
    return [f"P{i:05d}" for i in range(3000)]


def _exact_top(x, q, k):
    s = q @ x.T
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


# --- synthetic vectors -------------------------------------------------------------------------
def test_synthetic_vectors_are_unit_clustered_and_anisotropic(vectors):
    x, _ = vectors
    assert x.dtype == np.float32 and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    var = np.sort(np.var(x - x.mean(0), axis=0))[::-1]
    assert var[0] > 5 * var[-1]  # anisotropic, like real embeddings
    again = ann.synthetic_vectors(np.eye(4, dtype=np.float32), 10, seed=3)
    assert np.array_equal(again, ann.synthetic_vectors(np.eye(4, dtype=np.float32), 10, seed=3))
    with pytest.raises(ValueError, match="at least 2"):
        ann.synthetic_vectors(np.eye(1, 4, dtype=np.float32), 5)


# --- indexes against exact search --------------------------------------------------------------
@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf", "ivfsq8", "ivfpq"])
def test_index_recall_against_exact(vectors, ids, kind):
    x, q = vectors
    params = {"ivf": {"nprobe": 16}, "ivfsq8": {"nprobe": 16}, "ivfpq": {"nprobe": 16, "m": 8}}
    idx = ann.VectorIndex.build(kind, x, ids, **params.get(kind, {}))
    _, rows = idx.search_rows(q, 10)
    r = ann.recall_at_k(rows, _exact_top(x, q, 10))
    floor = {"exact": 1.0, "ivfpq": 0.3}.get(kind, 0.9)  # PQ: 8 bytes for 32 floats
    assert r >= floor, (kind, r)
    hits = idx.search(q[:2], 3)
    assert len(hits) == 2 and all(len(h) == 3 for h in hits) and hits[0][0][0] in set(ids)


def test_recall_knob_trades_recall(vectors, ids):
    x, q = vectors
    idx = ann.VectorIndex.build("ivf", x, ids, nlist=64)
    truth = _exact_top(x, q, 10)
    low = ann.recall_at_k(idx.set_search(nprobe=1).search_rows(q, 10)[1], truth)
    high = ann.recall_at_k(idx.set_search(nprobe=64).search_rows(q, 10)[1], truth)
    assert low < high and high == pytest.approx(1.0)
    with pytest.raises(ValueError, match="search parameter"):
        idx.set_search(ef_search=10)
    with pytest.raises(ValueError, match="unknown parameter"):
        ann.VectorIndex.build("hnsw", x, ids, nprobe=3)


def test_recall_and_percentiles_against_references():
    assert ann.recall_at_k(np.array([[1, 2, 3], [4, 5, -1]]), np.array([[3, 2, 9], [4, 5, 6]])) == (
        pytest.approx((2 / 3 + 2 / 3) / 2)
    )
    t = np.random.default_rng(0).exponential(0.01, size=1001)
    p = ann.latency_percentiles(t, (50, 90, 99))
    for q in (50, 90, 99):  # nearest rank = numpy's "inverted_cdf"
        assert p[f"p{q}_ms"] == pytest.approx(1000 * np.percentile(t, q, method="inverted_cdf"))
    with pytest.raises(ValueError, match="no timings"):
        ann.latency_percentiles([])


# --- persistence and updates -------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_save_load_verify_and_add(vectors, ids, kind, tmp_path):
    x, q = vectors
    idx = ann.VectorIndex.build(kind, x[:2000], ids[:2000])
    before = idx.search(q, 5)
    idx.save(tmp_path)
    loaded = ann.VectorIndex.load(tmp_path)
    assert loaded.kind == kind and loaded.ids == ids[:2000] and loaded.params == idx.params
    assert loaded.search(q, 5) == before
    # add products without a rebuild: each new product finds itself
    loaded.add(x[2000:2100], ids[2000:2100])
    assert len(loaded) == 2100
    top = [h[0][0] for h in loaded.search(x[2000:2100], 1)]
    assert np.mean([t == i for t, i in zip(top, ids[2000:2100])]) > 0.95
    with pytest.raises(ValueError, match="already indexed"):
        loaded.add(x[:1], ids[:1])
    # a corrupt or swapped file is refused, and nothing is loaded half-way
    (tmp_path / "index.bin").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="checksum"):
        ann.VectorIndex.load(tmp_path)
    (tmp_path / "meta.json").unlink()
    with pytest.raises(FileNotFoundError, match="meta.json"):
        ann.VectorIndex.load(tmp_path)


def test_benchmark_and_choice(vectors):
    x, q = vectors
    table = ann.benchmark(
        x,
        q,
        settings=[
            ("exact", {}),
            ("hnsw", {"ef_search": 8}),
            ("hnsw", {"ef_search": 64}),
            ("ivf", {"nprobe": 4}),
        ],
        n_latency=10,
    )
    assert list(table["kind"]) == ["exact", "hnsw", "hnsw", "ivf"]
    assert table.loc[0, "recall"] == 1.0 and (table["recall"] > 0).all()
    assert table.loc[2, "recall"] >= table.loc[1, "recall"]
    assert (table[["p50_ms", "p99_ms", "batch_qps", "memory_mb"]] > 0).all().all()
    assert (table["p99_ms"] >= table["p50_ms"]).all()
    best = ann.choose_index(table, min_recall=0.0, max_p99_ms=1e9, max_memory_mb=1e9)
    assert best["memory_mb"] == table["memory_mb"].min()
    assert ann.choose_index(table, min_recall=1.1, max_p99_ms=1e9, max_memory_mb=1e9) is None


# --- the HTTP service and its load test --------------------------------------------------------
def _encoder(texts):
    # A deterministic stand-in for a text encoder: the same text, the same vector.
    return np.stack([np.random.default_rng(sum(map(ord, t))).normal(size=DIM) for t in texts])


@pytest.fixture(scope="module")
def server(vectors, ids):
    x, _ = vectors
    idx = ann.VectorIndex.build("hnsw", x, ids)
    app = service.create_app(idx, _encoder, titles={i: f"title {i}" for i in ids}, min_score=0.2)
    with service.SearchServer(app) as s:
        yield s, app


def test_service_answers_searches(server):
    s, _ = server
    assert s.url.startswith("http://127.0.0.1:")
    http = s.client()
    assert http.get("/health").json()["products"] == 3000
    body = http.get("/search", params={"q": "red dress", "k": 3}).json()
    assert len(body["results"]) <= 3 and body["took_ms"] > 0
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True) and all(v >= 0.2 for v in scores)
    assert all(r["title"] == f"title {r['product_id']}" for r in body["results"])
    for params in ({"q": "x", "k": 0}, {"q": "x", "k": 101}, {"q": "   "}, {}):
        assert http.get("/search", params=params).status_code == 422


def test_load_test_is_bounded_and_reports(server):
    s, app = server
    queries = [f"query {i}" for i in range(20)]
    # A generous cap: on a busy shared machine 80 requests can take tens of seconds.
    curve = service.load_curve(s.url, queries, (1, 4), n_requests=40, max_seconds=300)
    assert list(curve["concurrency"]) == [1, 4]
    assert (curve["requests"] == 40).all() and (curve["errors"] == 0).all()
    assert (curve["p99_ms"] >= curve["p50_ms"]).all() and (curve["throughput_rps"] > 0).all()
    capped = service.load_test(s.url, queries, concurrency=2, n_requests=10**6, max_seconds=1.0,
                               timeout=5.0)  # fmt: skip
    # Stops by itself: the deadline, plus at most one request in flight per thread (its timeout),
    # plus slack for starting the clients on a loaded machine.
    assert capped["seconds"] < 1.0 + 5.0 + 10.0 and 0 < capped["requests"] < 10**6
    stats = s.client().get("/stats").json()
    assert stats["requests"] >= 80 and 0 <= stats["zero_result_rate"] <= 1
    assert json.dumps(stats)


def test_server_stops_and_errors_are_counted(vectors, ids):
    x, _ = vectors
    idx = ann.VectorIndex.build("exact", x[:100], ids[:100])
    with service.SearchServer(service.create_app(idx, _encoder)) as s:
        url = s.url
    res = service.load_test(url, ["a"], concurrency=1, n_requests=3, max_seconds=5, timeout=1)
    assert res["errors"] == 3 and res["requests"] == 0  # nothing listens any more


# --- monitoring --------------------------------------------------------------------------------
def test_search_log_and_drift():
    log = monitoring.SearchLog(maxlen=3)
    for i in range(4):
        log.record(f"q{i}", ["P1"] if i % 2 else [], [0.9] if i % 2 else [], 0.01 * (i + 1))
    summary = log.summary()
    assert summary["requests"] == 3 and summary["zero_result_rate"] == pytest.approx(1 / 3)
    assert summary["p99_ms"] == pytest.approx(40.0)
    ref = np.eye(4, dtype=np.float32)
    assert monitoring.query_drift(ref, ref) == {
        "centroid_shift": pytest.approx(0.0, abs=1e-6),
        "novel_share": 0.0,
    }
    moved = monitoring.query_drift(ref, np.array([[1, 1, 0, 0], [0, 0, 1, -1]], np.float32))
    assert moved["novel_share"] == 1.0 and moved["centroid_shift"] > 0


def test_simulated_days_and_dashboard():
    qs = pd.DataFrame(
        {
            C.COL_QUERY_ID: ["a", "b", "c", "d"],
            C.COL_LANGUAGE: ["en", "zh", "en", "zh"],
            C.COL_QUERY_KIND: ["exact", "vague", "vague", "exact"],
        }
    )
    good = pd.DataFrame(
        {
            C.COL_QUERY_ID: list("abcd"),
            "n_results": [10] * 4,
            "top_grade": [3, 3, 2, 3],
            "latency_ms": [5.0] * 4,
        }
    )
    broken = good.assign(n_results=0, top_grade=0)
    schedule = [{"system": "good"}] * 3 + [
        {"system": "good", "zh_share": 0.9},
        {"system": "broken"},
    ]
    events = monitoring.simulate_days(qs, {"good": good, "broken": broken}, schedule, per_day=500)
    daily = monitoring.daily_metrics(events)
    assert list(daily.index) == [0, 1, 2, 3, 4] and (daily["requests"] == 500).all()
    assert daily.loc[3, "zh_share"] > 0.8 and daily.loc[0, "zh_share"] < 0.65
    assert daily.loc[4, "zero_result_rate"] == 1.0 and daily.loc[4, "ctr"] == 0.0
    assert daily.loc[0, "ctr"] > 0.3
    fig = monitoring.dashboard(daily, {"zero_result_rate": ("above", 0.1)})
    assert len(fig.axes) == 4
    with pytest.raises(KeyError, match="unknown system"):
        monitoring.simulate_days(qs, {"good": good}, [{"system": "other"}])


def test_device_reaches_every_index_build(vectors, monkeypatch):
    x, q = vectors
    seen = []
    build = ann.VectorIndex.build.__func__

    def spy(cls, kind, *args, device=None, **kw):
        seen.append((kind, device))
        return build(cls, kind, *args, device=device, **kw)

    monkeypatch.setattr(ann.VectorIndex, "build", classmethod(spy))
    settings = [("exact", {}), ("hnsw", {"ef_search": 16}), ("ivf", {"nprobe": 2})]
    table = ann.benchmark(x[:500], q[:5], settings=settings, n_latency=2, device="cpu")
    assert seen == [("exact", "cpu"), ("hnsw", "cpu"), ("ivf", "cpu")] and len(table) == 3
    # the command line hands --device to run_million
    calls = []
    monkeypatch.setattr(ann, "run_million", lambda **kw: calls.append(kw) or pd.DataFrame())
    ann._main(["2000", "1", "--device", "cpu"])
    assert calls == [{"n": 2000, "threads": 1, "device": "cpu"}]


@pytest.mark.gpu
def test_exact_index_and_ivf_build_on_cuda(vectors, ids, monkeypatch):
    import faiss
    import torch

    x, q = vectors
    gpu = ann.VectorIndex.build("exact", x, ids, device="cuda")
    assert gpu.index.device.type == "cuda" and isinstance(gpu.index.items, torch.Tensor)
    assert gpu.index.items.is_cuda, "the exact index's vectors must live on the GPU"
    cpu = ann.VectorIndex.build("exact", x, ids)
    assert [h[0][0] for h in gpu.search(q, 1)] == [h[0][0] for h in cpu.search(q, 1)]
    gpu.add(x[:3] + 0.01, ["new0", "new1", "new2"])
    assert gpu.index.device.type == "cuda", "add keeps the exact index on the GPU"
    if not hasattr(faiss, "StandardGpuResources"):
        pytest.skip("faiss-cpu: IVF k-means trains on the CPU (install faiss-gpu for the GPU)")
    moved = []
    to_gpu = faiss.index_cpu_to_gpu
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", lambda *a: moved.append(1) or to_gpu(*a))
    ivf = ann.VectorIndex.build("ivf", x, ids, device="cuda", nprobe=16)
    assert moved, "IVF k-means was not trained on the GPU"
    _, rows = ivf.search_rows(q, 10)
    assert ann.recall_at_k(rows, _exact_top(x, q, 10)) > 0.9


@pytest.mark.slow
def test_run_million_writes_its_table(vectors, tmp_path):
    x, _ = vectors
    base = np.random.default_rng(0).normal(size=(50, 384)).astype(np.float32)
    table = ann.run_million(
        tmp_path, n=2000, base=base, settings=[("exact", {}), ("ivf", {"nprobe": 2})]
    )
    saved = pd.read_csv(tmp_path / "million.csv")
    assert list(saved["kind"]) == ["exact", "ivf"] and len(table) == 2
    info = json.loads((tmp_path / "million.json").read_text())
    assert info["n"] == 2000 and info["queries"] == 462


def test_search_outcomes_grade_the_first_result():
    x = np.eye(4, dtype=np.float32)
    idx = ann.VectorIndex.build("exact", x, ["p0", "p1", "p2", "p3"])
    qrels = pd.DataFrame(
        {C.COL_QUERY_ID: ["q0", "q1"], C.COL_PRODUCT_ID: ["p0", "p3"], C.COL_GRADE: [3, 1]}
    )
    qv = np.array([[1, 0.1, 0, 0], [0, 0, 0, 1], [0.5, 0.5, 0.5, 0.5]], np.float32)
    out = monitoring.search_outcomes(idx, qv, ["q0", "q1", "q2"], qrels, min_score=0.6)
    assert list(out["top_grade"]) == [3, 1, 0]  # q2: unjudged, and below min_score
    assert list(out["n_results"]) == [1, 1, 0]
    assert (out["latency_ms"] >= 0).all()


def test_quantised_indexes_take_less_memory(vectors, ids):
    x, _ = vectors
    flat = ann.VectorIndex.build("ivf", x, ids).memory_bytes()
    sq8 = ann.VectorIndex.build("ivfsq8", x, ids).memory_bytes()
    pq = ann.VectorIndex.build("ivfpq", x, ids, m=8).memory_bytes()
    assert pq < sq8 < 0.4 * flat
