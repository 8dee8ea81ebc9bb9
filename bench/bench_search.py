"""Benchmark the search core against peers measured in the same run.

Usage::

    python bench/bench_search.py [--quick] [--only topk,metrics] [--out bench/RESULTS.md]

Sections (``--only``): ``topk`` (ranking.topk vs FAISS IndexFlatIP and numpy argpartition,
plus fractions of the measured GEMM and memory-bandwidth ceilings) and ``metrics``
(metrics.evaluate vs ranx and pytrec_eval). An ``encode`` section can be added by registering
a function in :data:`SECTIONS`. Timings are the median of repeats after one warm-up call.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout

from recsys_kit.metrics import evaluate  # noqa: E402
from recsys_kit.ranking import topk  # noqa: E402

D = 384


def timeit(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time in seconds of ``fn()`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> str:
    """CPU model and core count (lscpu), plus library versions."""
    model = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import faiss
    import torch

    return (
        f"{model}, {os.cpu_count()} logical cores; Python {platform.python_version()}, "
        f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"faiss {faiss.__version__}"
    )


def ceilings() -> tuple[float, float, float]:
    """fp32 GEMM GFLOP/s (torch.matmul), copy GB/s (numpy, read+write), read GB/s (sdot)."""
    import torch

    a = torch.randn(256, D)
    b = torch.randn(D, 65536)
    t = timeit(lambda: a @ b, repeat=5)
    gflops = 2 * 256 * D * 65536 / t / 1e9
    src = np.random.default_rng(0).random(64 * 2**20 // 8)  # 64 MiB, well beyond the caches
    dst = np.empty_like(src)
    t = timeit(lambda: np.copyto(dst, src), repeat=5)
    gbs = 2 * src.nbytes / t / 1e9  # read + write
    big = np.ones(256 * 2**20 // 4, dtype=np.float32)  # 256 MiB, read-only stream (BLAS sdot)
    t = timeit(lambda: np.dot(big, big), repeat=5)
    return gflops, gbs, big.nbytes / t / 1e9


def numpy_topk(q: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The plain numpy way: full score matrix, argpartition, sort the k survivors."""
    s = q @ x.T
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    ps = np.take_along_axis(s, part, 1)
    order = np.argsort(-ps, axis=1)
    return np.take_along_axis(ps, order, 1), np.take_along_axis(part, order, 1)


def bench_topk(quick: bool) -> list[str]:
    import faiss

    gflops, gbs, read_gbs = ceilings()
    lines = [
        "### Exact top-k (d=384, float32, inner product on normalised vectors)",
        "",
        f"Ceilings measured here: fp32 GEMM {gflops:.0f} GFLOP/s (torch.matmul 256x384x65536), "
        f"memory bandwidth {gbs:.1f} GB/s (numpy copy, read+write), {read_gbs:.1f} GB/s read "
        "(sdot over 256 MiB; the Q=1 ceiling).",
        "",
        "| N | Q | k | topk ms | FAISS ms (blas_thr=1 / default 20) | numpy ms | "
        "vs best FAISS | vs numpy | % of ceiling | agree w/ FAISS |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rng = np.random.default_rng(0)
    for n in (100_000,) if quick else (100_000, 1_000_000):
        x = rng.standard_normal((n, D), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        index = faiss.IndexFlatIP(D)
        index.add(x)
        for nq in (1, 256):
            q = rng.standard_normal((nq, D), dtype=np.float32)
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            for k in (10, 100):
                rep = 3 if n >= 1_000_000 else 5
                t_ours = timeit(
                    lambda q=q, x=x, k=k: topk(q, x, k, metric="dot", device="cpu"), rep
                )
                faiss_t = []
                for thr in (1, 20):  # 1: BLAS even for one query; 20: FAISS's default
                    faiss.cvar.distance_compute_blas_threshold = thr
                    faiss_t.append(timeit(lambda q=q, k=k, ix=index: ix.search(q, k), rep))
                faiss.cvar.distance_compute_blas_threshold = 20
                t_np = timeit(lambda q=q, x=x, k=k: numpy_topk(q, x, k), rep)
                _, i_ours = topk(q, x, k, metric="dot", device="cpu")
                _, i_f = index.search(q, k)
                agree = np.mean([len(set(a) & set(b)) / k for a, b in zip(i_ours, i_f)])
                if nq == 1:
                    frac = f"{x.nbytes / t_ours / 1e9 / read_gbs:.0%} of read BW"
                else:
                    frac = f"{2 * nq * n * D / t_ours / 1e9 / gflops:.0%} of GEMM"
                best_f = min(faiss_t)
                lines.append(
                    f"| {n:,} | {nq} | {k} | {t_ours * 1e3:.2f} | {faiss_t[0] * 1e3:.2f} / "
                    f"{faiss_t[1] * 1e3:.2f} | {t_np * 1e3:.2f} | {best_f / t_ours:.2f}x | "
                    f"{t_np / t_ours:.2f}x | {frac} | {agree:.4f} |"
                )
                print(lines[-1], flush=True)
        del index, x
    return lines


def _random_eval_case(n_q: int, depth: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    qrels, run = {}, {}
    for q in range(n_q):
        qid = f"q{q}"
        judged = rng.choice(5 * depth, size=30, replace=False)
        qrels[qid] = {f"d{d}": int(g) for d, g in zip(judged, rng.integers(0, 4, 30))}
        docs = rng.choice(5 * depth, size=depth, replace=False)
        # distinct scores, exactly representable in float32 (trec_eval stores float32)
        scores = rng.permutation(depth) * 0.5 + 1.0
        run[qid] = {f"d{d}": float(s) for d, s in zip(docs, scores)}
    return qrels, run


def bench_metrics(quick: bool) -> list[str]:
    import pytrec_eval
    import ranx

    n_q, depth = (1000, 100) if quick else (5000, 100)
    qrels, run = _random_eval_case(n_q, depth)
    ours_names = ["ndcg@10", "map@100", "mrr@10", "recall@100", "precision@10"]
    ranx_names = ours_names
    trec_map = {"ndcg_cut_10": "ndcg@10", "recall_100": "recall@100", "P_10": "precision@10"}

    def run_ranx():
        return ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), ranx_names)

    def run_trec():
        return pytrec_eval.RelevanceEvaluator(qrels, set(trec_map)).evaluate(run)

    t_ours = timeit(lambda: evaluate(qrels, run, ours_names), 5)
    t_ranx = timeit(run_ranx, 5, warmup=2)  # warm: numba compiled
    t_trec = timeit(run_trec, 5)
    ours = evaluate(qrels, run, ours_names)
    rx = run_ranx()
    ours_pq = evaluate(qrels, run, list(trec_map.values()), per_query=True)
    tr = run_trec()
    d_ranx = max(abs(ours[m] - float(rx[m])) for m in ours_names)
    d_trec = max(
        abs(ours_pq[name][q] - tr.get(q, {}).get(meas, 0.0))
        for meas, name in trec_map.items()
        for q in qrels
    )
    lines = [
        f"### metrics.evaluate ({n_q} queries x {depth} docs, dict inputs, "
        f"{', '.join(ours_names)})",
        "",
        "| tool | ms | ours is faster by | max abs diff vs ours |",
        "|---|---|---|---|",
        f"| recsys_kit.metrics.evaluate | {t_ours * 1e3:.1f} | 1.00x | - |",
        f"| ranx.evaluate (Qrels/Run from dicts, warm) | {t_ranx * 1e3:.1f} | "
        f"{t_ranx / t_ours:.2f}x | {d_ranx:.1e} |",
        f"| pytrec_eval (evaluator build + evaluate; ndcg_cut_10, recall_100, P_10 only) | "
        f"{t_trec * 1e3:.1f} | {t_trec / t_ours:.2f}x | {d_trec:.1e} |",
    ]
    for line in lines[-3:]:
        print(line, flush=True)
    return lines


SECTIONS: dict[str, Callable[[bool], list[str]]] = {"topk": bench_topk, "metrics": bench_metrics}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="N=100k only, smaller metric sets")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {list(SECTIONS)}")
    ap.add_argument("--out", type=Path, help="also write the report (markdown) to this file")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch and FAISS threads")
    args = ap.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s) {sorted(unknown)}; choose from {list(SECTIONS)}")
    import faiss
    import torch

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    title = "## bench_search" + (" --quick" if args.quick else "") + f" --threads {args.threads}"
    report = [title, "", f"Machine: {machine()}"]
    print(report[-1], flush=True)
    for name in chosen:
        report += ["", *SECTIONS[name](args.quick)]
    if args.out:
        args.out.write_text("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
