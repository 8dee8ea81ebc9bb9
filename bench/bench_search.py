"""Benchmark the search core against peers measured in the same run.

Usage::

    python bench/bench_search.py [--quick] [--only topk,metrics] [--out bench/RESULTS.md]

Sections (``--only``): ``topk`` (ranking.topk and Index, float32 and bf16 candidate routes, vs
FAISS IndexFlatIP and numpy argpartition, plus fractions of the measured GEMM and
memory-bandwidth ceilings; N=100k, and N=1M unless ``--quick``; then a "shared machine" row,
Q=256 at N=100k with a busy-loop process started and stopped by the bench, against FAISS at its
best under the same load; then one row per emulated CPU kind, each measured in a child process
whose kernels are forced by ``recsys_kit.device.cpu_kind_env``), ``metrics``
(metrics.evaluate vs ranx and pytrec_eval), ``encode`` (bench/bench_encode.py's main with
small defaults) and ``cuda`` (top-k over 1M items and encoding on a CUDA GPU, against the plain
torch way; skipped without one). The top-k contenders run interleaved (one call each in
turn, best of N) so a shared machine's background load hits them alike; the load average is
printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _openblas_core() -> str | None:
    """The OpenBLAS kernel this CPU supports best. FAISS's wheel bundles OpenBLAS 0.3.15,
    which does not know recent CPUs (the test machine's Xeon, model 207) and falls back to its
    generic SSE kernel (4x slower on one thread, measured): FAISS gets its best kernel,
    as a fair peer should."""
    try:
        line = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("flags"))  # fmt: skip
    except (OSError, StopIteration):
        return None
    flags = set(line.split(":", 1)[1].split())
    return "SkylakeX" if "avx512f" in flags else ("Haswell" if "avx2" in flags else None)


if "OPENBLAS_CORETYPE" not in os.environ and _openblas_core():  # before numpy/faiss load it
    os.environ["OPENBLAS_CORETYPE"] = str(_openblas_core())

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout

from recsys_kit import ranking  # noqa: E402
from recsys_kit.device import (  # noqa: E402
    CPU_KINDS,
    bf16_matmul_speedup,
    compute_threads,
    cpu_kind_env,
)
from recsys_kit.metrics import evaluate  # noqa: E402
from recsys_kit.ranking import Index, topk, topk_with_stats  # noqa: E402

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


def interleaved_best(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best wall time (s) of each function over ``repeat`` rounds, contenders run in turn.

    Why: on a shared machine the background load drifts; alternating the contenders and
    keeping each one's best run compares them under the same conditions.
    """
    for fn in fns.values():  # warm-up: allocations, kernel selection, OpenMP pools
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def load_average() -> str:
    """The 1/5/15-minute load averages, as a string (other jobs on the same cores)."""
    try:
        return "/".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def cpu_flags() -> str:
    """Which of the CPU flags that matter here are present (/proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "n/a"
    flags = next(
        (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []
    )
    want = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return ", ".join(f"{f}={'yes' if f in flags else 'no'}" for f in want)


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
        f"faiss {faiss.__version__}; flags: {cpu_flags()}; OPENBLAS_CORETYPE="
        f"{os.environ.get('OPENBLAS_CORETYPE', '(auto)')}"
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
    import torch

    gflops, gbs, read_gbs = ceilings()
    a = torch.randn(256, D).bfloat16()
    b = torch.randn(D, 65536).bfloat16()
    bf16_gflops = 2 * 256 * D * 65536 / timeit(lambda: a @ b, repeat=5) / 1e9
    lines = [
        "### Exact top-k (d=384, float32, inner product on normalised vectors)",
        "",
        f"Ceilings measured here: fp32 GEMM {gflops:.0f} GFLOP/s (torch.matmul 256x384x65536), "
        f"bf16 GEMM {bf16_gflops:.0f} GFLOP/s (same shape), memory bandwidth {gbs:.1f} GB/s "
        f"(numpy copy, read+write), {read_gbs:.1f} GB/s read (sdot over 256 MiB; the Q=1 "
        f"ceiling). Load average at start: {load_average()}.",
        "",
        "Contenders run interleaved, best of N. `ours auto` is `topk(...)` as shipped "
        "(float32 candidates for raw arrays on a CPU, see ranking.BF16_AUTO_CPU; the scan "
        "route for Q=1); `ours bf16` forces `precision='bf16'` (threshold passes in "
        "brackets). `ours Index` is `Index(x, ids).search_arrays(q, k)`: it takes bf16 "
        "candidates over a bf16 copy it keeps (as FAISS keeps its own copy) where a bf16 GEMM "
        f"measures >= {ranking.BF16_MIN_SPEEDUP}x float32 (here: "
        f"{bf16_matmul_speedup('cpu'):.2f}x), else int8 candidates over two int8 digits per "
        "item where int8 products are exact and measure >= "
        f"{ranking.INT8_MIN_SPEEDUP}x float32 (`ranking.INT8_MAX_K`); in brackets its route, "
        "queries that took the "
        "threshold pass, and worker threads (`Index.last_stats`). Every route returns the "
        "same answer (the `identical` columns check it). "
        "FAISS: IndexFlatIP, best of "
        "`distance_compute_blas_threshold` 1 and 20 (default) x all threads and 1 (its OpenMP "
        "and its OpenBLAS alike). `% of ceiling`: of the fp32 "
        "GEMM ceiling (Q=256, for the FLOPs of the full score matrix) or of read bandwidth (Q=1).",
        "",
        "| N | Q | k | auto route | ours auto ms | ours bf16 ms (fallbacks) "
        "| ours Index ms (route, threshold passes, threads) "
        "| FAISS ms (thr 1 / 20; all threads, then 1) | numpy ms | auto vs best FAISS "
        "| bf16 vs best FAISS "
        "| Index vs best FAISS "
        "| auto vs numpy | % of ceiling | "
        "bf16 identical to fp32 | Index identical to fp32 | "
        "agree w/ FAISS | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rng = np.random.default_rng(0)
    n_thr = os.cpu_count() or 1
    for n in (100_000,) if quick else (100_000, 1_000_000):
        x = rng.standard_normal((n, D), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        index = faiss.IndexFlatIP(D)
        index.add(x)
        # ours as an index too: like FAISS's add(), it keeps what it needs (a bf16 copy for the
        # exact candidate route on AMX/AVX512-BF16 CPUs), made on its first large batch
        ours = Index(x, range(n), metric="dot")
        for nq in (1, 256):
            q = rng.standard_normal((nq, D), dtype=np.float32)
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            for k in (10, 100):
                rep = 3 if n >= 1_000_000 else 5

                def faiss_search(thr: int, threads: int, q=q, k=k, ix=index) -> object:
                    faiss.omp_set_num_threads(threads)
                    faiss.cvar.distance_compute_blas_threshold = thr
                    try:  # its OpenBLAS on as many threads as its OpenMP
                        with threadpool_limits(limits=threads, user_api="blas"):
                            return ix.search(q, k)
                    finally:
                        faiss.cvar.distance_compute_blas_threshold = 20
                        faiss.omp_set_num_threads(n_thr)

                fns = {
                    "auto": lambda q=q, x=x, k=k: topk(q, x, k, metric="dot", device="cpu"),
                    "bf16": lambda q=q, x=x, k=k: topk(
                        q, x, k, metric="dot", device="cpu", precision="bf16"
                    ),
                    "index": lambda q=q, k=k, ix=ours: ix.search_arrays(q, k),
                    "faiss1": lambda: faiss_search(1, n_thr),
                    "faiss20": lambda: faiss_search(20, n_thr),
                    "faiss1_1": lambda: faiss_search(1, 1),
                    "faiss20_1": lambda: faiss_search(20, 1),
                    "numpy": lambda q=q, x=x, k=k: numpy_topk(q, x, k),
                }
                t = interleaved_best(fns, rep)
                _, i_auto, st = topk_with_stats(q, x, k, metric="dot", device="cpu")
                s_bf, i_bf, st_bf = topk_with_stats(
                    q, x, k, metric="dot", device="cpu", precision="bf16"
                )
                s_fp32, i_fp32 = topk(q, x, k, metric="dot", device="cpu", precision="fp32")
                _, i_f = index.search(q, k)
                s_ix, i_ix = ours.search_arrays(q, k)
                st_ix = ours.last_stats
                ix_note = f"{st_ix.route}, {st_ix.n_fallback}, {st_ix.threads} thr"
                ix_same = _identical(s_ix, i_ix, s_fp32, i_fp32)
                agree = np.mean([len(set(a) & set(b)) / k for a, b in zip(i_auto, i_f)])
                same = _identical(s_bf, i_bf, s_fp32, i_fp32)
                if nq == 1:
                    frac = f"{x.nbytes / t['auto'] / 1e9 / read_gbs:.0%} of read BW"
                else:
                    frac = f"{2 * nq * n * D / t['auto'] / 1e9 / gflops:.0%} of fp32 GEMM"
                best_f = min(v for name, v in t.items() if name.startswith("faiss"))
                lines.append(
                    f"| {n:,} | {nq} | {k} | {st.route} | {t['auto'] * 1e3:.2f} | "
                    f"{t['bf16'] * 1e3:.2f} ({st_bf.n_fallback}) | {t['index'] * 1e3:.2f} "
                    f"({ix_note}) | "
                    f"{t['faiss1'] * 1e3:.2f} / {t['faiss20'] * 1e3:.2f}; "
                    f"{t['faiss1_1'] * 1e3:.2f} / {t['faiss20_1'] * 1e3:.2f} | "
                    f"{t['numpy'] * 1e3:.2f} | {best_f / t['auto']:.2f}x | "
                    f"{best_f / t['bf16']:.2f}x | {best_f / t['index']:.2f}x | "
                    f"{t['numpy'] / t['auto']:.2f}x | {frac} | {same} | {ix_same} | {agree:.4f} | "
                    f"{load_average()} |"
                )
                print(lines[-1], flush=True)
        del index, ours, x
    lines += ["", *bench_shared_machine(quick), "", *bench_cpu_kinds(quick)]
    return lines


def _identical(s1: np.ndarray, i1: np.ndarray, s0: np.ndarray, i0: np.ndarray) -> str:
    """'yes' when both results are the same bits, else how many rows differ."""
    if np.array_equal(i1, i0) and np.array_equal(s1, s0):
        return "yes"
    return f"no: {int(((i1 != i0) | (s1 != s0)).any(axis=1).sum())} rows differ"


def _unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, D), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def core_times(n: int, ks: tuple[int, ...], repeat: int) -> dict[str, float | str]:
    """Index vs FAISS IndexFlatIP at its best (1 and all threads, BLAS threshold 1 and 20) at
    Q=256 over ``n`` unit vectors, for each k; interleaved, best of ``repeat``. Also Index on as
    many workers as cores left free by other processes (the fair share), for comparison."""
    import faiss
    import torch

    rng = np.random.default_rng(0)
    x, q = _unit_rows(rng, n), _unit_rows(rng, 256)
    index = faiss.IndexFlatIP(D)
    index.add(x)
    ours = Index(x, range(n), metric="dot")
    n_thr = os.cpu_count() or 1
    out: dict[str, float | str] = {"load": load_average(), "speedup": bf16_matmul_speedup("cpu")}

    def faiss_search(thr: int, threads: int, k: int) -> object:
        faiss.omp_set_num_threads(threads)
        faiss.cvar.distance_compute_blas_threshold = thr
        try:  # its BLAS on as many threads (else OpenBLAS's own threads spin against them)
            with threadpool_limits(limits=threads, user_api="blas"):
                return index.search(q, k)
        finally:
            faiss.cvar.distance_compute_blas_threshold = 20
            faiss.omp_set_num_threads(n_thr)

    def fair_share(k: int) -> object:  # as many workers as cores left free by the others
        torch.set_num_threads(compute_threads())
        try:
            return ours.search_arrays(q, k)
        finally:
            torch.set_num_threads(n_thr)

    for k in ks:
        fns: dict[str, Callable[[], object]] = {
            "index": lambda k=k: ours.search_arrays(q, k),
            "index_fair": lambda k=k: fair_share(k),
        }
        for thr in (1, 20):
            for threads in sorted({1, n_thr}):
                name = f"faiss_{thr}_{threads}"
                fns[name] = lambda t=thr, th=threads, k=k: faiss_search(t, th, k)
        t = interleaved_best(fns, repeat)
        ours.search_arrays(q, k)
        st = ours.last_stats
        best = min((v, name) for name, v in t.items() if name.startswith("faiss"))
        out.update({
            f"index_{k}": t["index"], f"index_fair_{k}": t["index_fair"], f"faiss_{k}": best[0],
            f"faiss_cfg_{k}": best[1], f"route_{k}": st.route, f"threads_{k}": st.threads,
            f"thresh_{k}": st.n_fallback,
        })  # fmt: skip
    out["load_end"] = load_average()
    return out


def _core_cells(r: dict[str, float | str], k: int) -> str:
    thr, threads = str(r[f"faiss_cfg_{k}"]).split("_")[1:]
    return (
        f"{float(r[f'index_{k}']) * 1e3:.1f} ({r[f'route_{k}']}, {r[f'threads_{k}']} thr, "
        f"{r[f'thresh_{k}']}) | {float(r[f'index_fair_{k}']) * 1e3:.1f} | "
        f"{float(r[f'faiss_{k}']) * 1e3:.1f} (thr {thr}, {threads} thr) | "
        f"**{float(r[f'faiss_{k}']) / float(r[f'index_{k}']):.2f}x**"
    )


_CORE_HEAD = (
    "| k=10: Index ms (route, threads, threshold passes) | Index, fair-share threads ms "
    "| best FAISS ms (BLAS threshold, threads) | Index vs best FAISS "
    "| k=100: Index ms (route, threads, threshold passes) | Index, fair-share threads ms "
    "| best FAISS ms (BLAS threshold, threads) | Index vs best FAISS |"
)


def bench_shared_machine(quick: bool) -> list[str]:
    """Q=256, N=100k while one busy-loop process (started here, bounded, stopped here) holds
    a core: the everyday case of a second notebook on a shared JupyterHub server."""
    limit_s = 600
    busy = subprocess.Popen(
        [sys.executable, "-c",
         f"import time\nend = time.monotonic() + {limit_s}\nwhile time.monotonic() < end: pass"]
    )  # fmt: skip
    try:
        time.sleep(1.0)  # let it take its core (and the load measurement see it)
        r = core_times(100_000, (10, 100), 3 if quick else 5)
    finally:
        busy.terminate()
        busy.wait()
    lines = [
        "### Shared machine (one competing CPU-bound process)",
        "",
        "Q=256, N=100k, d=384, while a busy-loop process started by the bench (at most "
        f"{limit_s} s, stopped after the row) holds one core. FAISS at its best under the same "
        "load: the fastest of BLAS threshold 1 / 20 x 1 / all threads (OpenMP and its "
        "OpenBLAS limited alike). `Index` as shipped runs all its workers, with smaller blocks "
        "when `recsys_kit.device.busy_cores` sees other processes; `Index, fair-share threads` "
        "runs only as many workers as cores left free (`compute_threads`), for comparison. "
        "Interleaved, best of N; load "
        f"average {r['load']} at start, {r['load_end']} at the end.",
        "",
        "| case " + _CORE_HEAD,
        "|---|---|---|---|---|---|---|---|---|",
        f"| one busy process | {_core_cells(r, 10)} | {_core_cells(r, 100)} |",
    ]
    print(lines[-1], flush=True)
    return lines


def bench_cpu_kinds(quick: bool) -> list[str]:
    """One row per emulated CPU kind: the same measurement in a child process whose kernels
    are forced by ``cpu_kind_env`` (FAISS's bundled OpenBLAS follows OPENBLAS_CORETYPE too)."""
    lines = [
        "### Emulated CPU kinds",
        "",
        "Q=256, N=100k, each row measured in a child process started with the variables of "
        '`recsys_kit.device.cpu_kind_env(kind)` (README, "CPU variety"); `bf16 speedup` is what '
        "`bf16_matmul_speedup` measured there, which decides the `Index` route.",
        "",
        "| CPU kind | variables | bf16 speedup " + _CORE_HEAD,
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in ["host", *CPU_KINDS]:
        env = {} if kind == "host" else cpu_kind_env(kind)
        cmd = [sys.executable, __file__, "--only", "core", *(["--quick"] if quick else [])]
        out = subprocess.run(
            cmd, env={**os.environ, **env}, capture_output=True, text=True, check=False
        )
        rec = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode or not rec:
            lines.append(f"| {kind} | failed: {out.stderr.strip()[-300:]} |")
            continue
        r = json.loads(rec[-1])
        desc = " ".join(f"{k}={v}" for k, v in env.items()) or "(none)"
        lines.append(
            f"| {kind} | {desc} | {float(r['speedup']):.2f}x | {_core_cells(r, 10)} "
            f"| {_core_cells(r, 100)} |"
        )
        print(lines[-1], flush=True)
    return lines


def bench_core(quick: bool) -> list[str]:
    """The measurement of one emulated-kind row, printed as JSON (run by bench_cpu_kinds)."""
    print(json.dumps(core_times(100_000, (10, 100), 3 if quick else 5)), flush=True)
    return []


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


def bench_encode(quick: bool, device: str = "cpu") -> list[str]:
    """Run bench/bench_encode.py's main with small defaults; its printout goes in the report."""
    import contextlib
    import io

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_encode

    args = ["--n", "200" if quick else "1000", "--repeats", "1" if quick else "2"]
    args += ["--device", device]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        bench_encode.main(args)
    out = buf.getvalue().rstrip().splitlines()
    print("\n".join(out), flush=True)
    cmd = " ".join(args)
    return [
        f"### encode (`bench/bench_encode.py {cmd}`, load {load_average()})",
        "",
        "```",
        *out,
        "```",
    ]


def bench_cuda(quick: bool) -> list[str]:
    """Top-k and encoding on a CUDA GPU (N=1M, or 100k with --quick), when there is one.

    Peers measured in the same run: the plain torch way (full score matrix + ``torch.topk``,
    float32 with TF32 off) and our float32 route; ceilings: fp32 and bf16 GEMM, and device
    memory bandwidth (a copy). FAISS here is the CPU build, so it is not a GPU peer.
    """
    import torch

    if not torch.cuda.is_available():
        msg = "skipped: no CUDA device on this machine (run the same command on a GPU host)."
        print(f"cuda: {msg}", flush=True)
        return ["### CUDA (rank 1M items, encode)", "", msg]
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False  # exact float32 peers

    def sync(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            out = fn()
            torch.cuda.synchronize()
            return out

        return run

    a32, b32 = torch.randn(256, D, device=dev), torch.randn(D, 65536, device=dev)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    flop = 2 * 256 * D * 65536
    g32 = flop / timeit(sync(lambda: a32 @ b32), repeat=20) / 1e9
    g16 = flop / timeit(sync(lambda: a16 @ b16), repeat=20) / 1e9
    big = torch.empty(256 * 2**20, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(big)
    bw = 2 * big.numel() / timeit(sync(lambda: dst.copy_(big)), repeat=10) / 1e9
    n = 100_000 if quick else 1_000_000
    gen = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(n, D, device=dev, generator=gen)
    x /= x.norm(dim=1, keepdim=True)
    props = torch.cuda.get_device_properties(dev)
    lines = [
        "### CUDA (rank 1M items, encode)",
        "",
        f"Device: {props.name}, {props.total_memory / 2**30:.0f} GiB, compute "
        f"{props.major}.{props.minor}; torch {torch.__version__}, CUDA {torch.version.cuda}. "
        f"Ceilings: fp32 GEMM {g32:.0f} GFLOP/s, bf16 GEMM {g16:.0f} GFLOP/s (256x384x65536), "
        f"copy {bw:.0f} GB/s (read+write). Inputs are torch tensors already on the GPU; "
        "best of 10, synchronised.",
        "",
        "| N | Q | k | ours auto ms (route, retried/fallback) | ours fp32 ms "
        "| torch matmul+topk ms | auto vs torch | auto vs ours fp32 | % of ceiling "
        "| idx identical to fp32 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for nq in (1, 256):
        q = torch.randn(nq, D, device=dev, generator=gen)
        q /= q.norm(dim=1, keepdim=True)
        for k in (10, 100):
            fns = {
                "auto": sync(lambda q=q, k=k, x=x: topk(q, x, k, metric="dot")),
                "fp32": sync(lambda q=q, k=k, x=x: topk(q, x, k, "dot", precision="fp32")),
                "torch": sync(lambda q=q, k=k, x=x: torch.topk(q @ x.T, k, dim=1)),
            }
            t = interleaved_best(fns, 10)
            _, i_auto, st = topk_with_stats(q, x, k, metric="dot")
            _, i_fp32 = topk(q, x, k, metric="dot", precision="fp32")
            same = bool(torch.equal(i_auto, i_fp32))
            if nq == 1:
                frac = f"{x.numel() * 4 / t['auto'] / 1e9 / (bw / 2):.0%} of read BW"
            else:
                ceiling = g16 if st.route == "bf16" else g32
                frac = f"{2 * nq * n * D / t['auto'] / 1e9 / ceiling:.0%} of {st.route} GEMM"
            lines.append(
                f"| {n:,} | {nq} | {k} | {t['auto'] * 1e3:.2f} ({st.route}, "
                f"{st.n_retried}/{st.n_fallback}) | {t['fp32'] * 1e3:.2f} | "
                f"{t['torch'] * 1e3:.2f} | {t['torch'] / t['auto']:.2f}x | "
                f"{t['fp32'] / t['auto']:.2f}x | {frac} | {'yes' if same else 'no'} |"
            )
            print(lines[-1], flush=True)
    del x
    torch.cuda.empty_cache()
    lines += ["", *bench_encode(quick, device="cuda")]
    return lines


SECTIONS: dict[str, Callable[[bool], list[str]]] = {
    "topk": bench_topk,
    "shared": bench_shared_machine,
    "kinds": bench_cpu_kinds,
    "core": bench_core,
    "metrics": bench_metrics,
    "encode": bench_encode,
    "cuda": bench_cuda,
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="N=100k only, smaller metric sets")
    default = "topk,metrics,encode,cuda"  # topk includes the shared and kinds rows
    ap.add_argument("--only", default=default, help=f"comma list of {list(SECTIONS)}")
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
