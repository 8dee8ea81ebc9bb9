"""Benchmark the kit's collaborative filtering against the ``implicit`` library, in one run.

Usage::

    python bench/bench_cf.py [--quick] [--only als,recommend,bpr,memory] [--repeat 3]

Data: a synthetic user x item matrix of the shape and sparsity of the Amazon "Beauty" 5-core
file of SASRec / S3-Rec (22,363 users, 12,101 items, 198,502 interactions, 0/1 feedback),
generated here (:func:`beauty_like`: no download): every user has at least 5 items, item
popularity follows a power law and users prefer one of 40 taste groups, so factor models have
something to learn. One item per user is held out (leave-one-out) to check that the kit and
``implicit`` reach the same quality, not only the same speed.

Sections (``--only``), each a ratio against ``implicit`` measured in the same run, contenders
interleaved (best of ``--repeat``), **one thread each** (``recsys_kit.threads.thread_limit(1)``
and ``num_threads=1`` for ``implicit``):

* ``als``: ALS (conjugate gradient, 3 steps, factors 64) seconds per iteration, and the
  training loss / HR@10 both reach;
* ``recommend``: top-10 unseen items for every user from the same factors (the kit's blocked
  GEMM + batched top-k with per-row ties vs ``implicit``'s ``recommend``), the popularity
  baseline (ties everywhere) through the same path, and whether the lists agree;
* ``bpr``: BPR seconds per epoch (factors 64) of the kit's default engine (the compiled numba
  loop when numba is installed), its torch engine and ``implicit``, numba's compilation
  warmed first; then ``BPR()`` and ``implicit`` trained to their defaults: HR@10 and catalogue
  coverage@10 of the lists;
* ``memory``: peak extra resident memory of fitting ALS and recommending for all users, each in
  a fresh forked process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a plain checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import cpu_flags, interleaved_best, load_average  # noqa: E402

from recsys_kit.cf import ALS, BPR, PopularityRecommender  # noqa: E402
from recsys_kit.threads import thread_limit  # noqa: E402

#: Amazon Beauty 5-core (SASRec / S3-Rec preprocessing).
N_USERS, N_ITEMS, N_INTERACTIONS = 22_363, 12_101, 198_502
FACTORS = 64
K = 10


def beauty_like(
    seed: int = 0,
    n_users: int = N_USERS,
    n_items: int = N_ITEMS,
    n_interactions: int = N_INTERACTIONS,
    n_groups: int = 40,
    in_group: float = 0.7,
) -> sp.csr_matrix:
    """A 0/1 user x item CSR matrix with exactly ``n_interactions`` cells, >= 5 per user.

    User lengths: 5 + a Pareto tail (like review counts); item popularity: Zipf-like; each user
    draws ``in_group`` of their items from the popularity-weighted items of their taste group
    and the rest from the whole catalogue, without repeats.
    """
    rng = np.random.default_rng(seed)
    tail = rng.pareto(1.6, n_users)
    tail = tail / tail.sum() * (n_interactions - 5 * n_users)
    lengths = np.minimum(5 + np.floor(tail).astype(np.int64), n_items // 8)
    while (short := n_interactions - int(lengths.sum())) > 0:  # floor/cap lost a few: hand out
        grow = rng.choice(np.flatnonzero(lengths < n_items // 8), short, replace=False)
        lengths[grow] += 1
    pop = 1.0 / (np.arange(n_items) + 20.0) ** 0.8
    pop = pop[rng.permutation(n_items)]
    user_group = rng.integers(0, n_groups, n_users)
    item_group = rng.integers(0, n_groups, n_items)
    rows = np.repeat(np.arange(n_users), 3 * lengths + 10)  # oversample, then drop repeats
    cand = rng.choice(n_items, len(rows), p=pop / pop.sum())
    local = rng.random(len(rows)) < in_group
    for g in range(n_groups):
        members = np.flatnonzero(item_group == g)
        pick = local & (user_group[rows] == g)
        p = pop[members] / pop[members].sum()
        cand[pick] = members[rng.choice(len(members), int(pick.sum()), p=p)]
    _, first = np.unique(rows * n_items + cand, return_index=True)
    first.sort()  # keep draw order: the first distinct items of each user
    rows, cand = rows[first], cand[first]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = rank < lengths[rows]
    rows, cand = rows[keep], cand[keep]
    missing = lengths - np.bincount(rows, minlength=n_users)
    if missing.any():
        raise RuntimeError("oversampling too small for the requested lengths; raise it")
    return sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cand)), shape=(n_users, n_items)
    )


def hold_out_one(matrix: sp.csr_matrix, seed: int = 1) -> tuple[sp.csr_matrix, np.ndarray]:
    """Leave-one-out: one random item per user moves to the test set."""
    rng = np.random.default_rng(seed)
    counts = np.diff(matrix.indptr)
    pick = matrix.indptr[:-1] + (rng.random(len(counts)) * counts).astype(np.int64)
    test = matrix.indices[pick].astype(np.int64)
    keep = np.ones(matrix.nnz, dtype=bool)
    keep[pick] = False
    rows = np.repeat(np.arange(matrix.shape[0]), counts)[keep]
    train = sp.csr_matrix(
        (matrix.data[keep], (rows, matrix.indices[keep])), shape=matrix.shape, dtype=np.float32
    )
    return train, test


def hit_rate(lists: np.ndarray, test: np.ndarray) -> float:
    return float((lists == test[:, None]).any(axis=1).mean())


def coverage(lists: np.ndarray, n_items: int) -> float:
    return len(np.unique(lists)) / n_items


def implicit_recommend(user_factors: np.ndarray, item_factors: np.ndarray, train: sp.csr_matrix):
    """``implicit``'s top-N for every user from given factors (its ``recommend`` path)."""
    from implicit.cpu.als import AlternatingLeastSquares

    with warnings.catch_warnings():  # its BLAS check reads the environment, not threadpoolctl
        warnings.simplefilter("ignore", RuntimeWarning)
        model = AlternatingLeastSquares(factors=user_factors.shape[1], num_threads=1)
    model.user_factors, model.item_factors = user_factors, item_factors
    users = np.arange(train.shape[0])
    return model.recommend(users, train, N=K, filter_already_liked_items=True)


def _peak_child(fn: Callable[[], object], queue) -> None:
    def rss(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
        return 0

    start = rss("VmRSS:")
    fn()
    queue.put(rss("VmHWM:") - start)


def peak_extra_memory(fn: Callable[[], object]) -> float:
    """Peak resident memory (bytes) ``fn`` adds, measured in a fresh forked process."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_child, args=(fn, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return float(value)


def section_als(train, test, repeat: int, iterations: int) -> list[str]:
    from implicit.cpu.als import AlternatingLeastSquares

    def ours() -> ALS:
        return ALS(factors=FACTORS, regularization=0.05, alpha=10.0, iterations=iterations).fit(
            train
        )

    def theirs():
        m = AlternatingLeastSquares(
            factors=FACTORS,
            regularization=0.05,
            alpha=10.0,
            iterations=iterations,
            num_threads=1,
            random_state=0,
        )
        m.fit(train, show_progress=False)
        return m

    best = interleaved_best({"ours": ours, "implicit": theirs}, repeat)
    kit, lib = ours(), theirs()
    kit_hr = hit_rate(kit.recommend(np.arange(train.shape[0]), K)[1], test)
    lib_hr = hit_rate(implicit_recommend(lib.user_factors, lib.item_factors, train)[0], test)
    per_it = {k: v / iterations for k, v in best.items()}
    return [
        "### ALS (conjugate gradient, 3 steps, factors 64, one thread)",
        "",
        "| contender | s per iteration | HR@10 (leave-one-out) |",
        "|---|---|---|",
        f"| kit `ALS` | {per_it['ours']:.3f} | {kit_hr:.4f} |",
        f"| implicit | {per_it['implicit']:.3f} | {lib_hr:.4f} |",
        "",
        f"**ALS time per iteration, kit / implicit: {per_it['ours'] / per_it['implicit']:.2f}x** "
        f"(target <= 1.5x; {iterations} iterations per fit)",
        "",
    ]


def section_recommend(train, test, repeat: int) -> list[str]:
    kit = ALS(factors=FACTORS, regularization=0.05, iterations=3).fit(train)
    users = np.arange(train.shape[0])
    pop = PopularityRecommender().fit(train)
    best = interleaved_best(
        {
            "ours": lambda: kit.recommend(users, K),
            "implicit": lambda: implicit_recommend(kit.user_factors, kit.item_factors, train),
            "popularity": lambda: pop.recommend(users, K),
        },
        repeat,
    )
    ours = kit.recommend(users, K)[1]
    theirs = implicit_recommend(kit.user_factors, kit.item_factors, train)[0]
    same_rows = float((ours == theirs).all(axis=1).mean())
    same_sets = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(ours, theirs)]))
    pop_lists = pop.recommend(users, K)[1]
    scores = np.broadcast_to(pop.item_popularity, (len(users), train.shape[1])).copy()
    seen_rows = np.repeat(users, np.diff(train.indptr))
    scores[seen_rows, train.indices] = -np.inf
    ref = np.argsort(-scores, axis=1, kind="stable")[:, :K]  # the exact order, ties by column
    return [
        "### Top-10 unseen items for every user (same factors; popularity: ties everywhere)",
        "",
        "| contender | seconds (22,363 users) |",
        "|---|---|",
        f"| kit `ALS.recommend` | {best['ours']:.3f} |",
        f"| implicit `recommend` | {best['implicit']:.3f} |",
        f"| kit `PopularityRecommender.recommend` | {best['popularity']:.3f} |",
        "",
        f"**recommend-all, kit / implicit: {best['ours'] / best['implicit']:.2f}x** (target "
        f"<= 1.0x); popularity / implicit ALS: {best['popularity'] / best['implicit']:.2f}x. "
        f"Lists identical to implicit's: {same_rows:.1%} of users (set overlap "
        f"{same_sets:.4f}; the rest are float32 near-ties summed in another order). "
        f"Popularity lists equal to a full stable sort: {bool((pop_lists == ref).all())}.",
        "",
    ]


def section_bpr(train, test, repeat: int, epochs: int, quality: bool) -> list[str]:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    from recsys_kit.cf.bpr_sgd import numba_available

    def ours(engine: str, n: int = epochs) -> BPR:
        return BPR(factors=FACTORS, epochs=n, device="cpu", engine=engine).fit(train)

    def theirs(n: int = epochs):
        m = BayesianPersonalizedRanking(
            factors=FACTORS, iterations=n, num_threads=1, random_state=0
        )
        m.fit(train, show_progress=False)
        return m

    default = "numba" if numba_available() else "torch"  # what BPR() runs on the CPU
    fns = {"torch": lambda: ours("torch"), "implicit": theirs}
    if numba_available():
        t0 = time.perf_counter()
        ours("numba", 1)  # the first fit of a process compiles (or loads the disk cache)
        compile_s = time.perf_counter() - t0
        fns = {"numba": lambda: ours("numba"), **fns}
    best = interleaved_best(fns, repeat)
    per_epoch = {k: v / epochs for k, v in best.items()}
    lib = per_epoch["implicit"]
    timings = ", ".join(f"kit {k} {v:.3f}" for k, v in per_epoch.items() if k != "implicit")
    lines = [
        "### BPR (factors 64, one thread)",
        "",
        f"Seconds per epoch (a fit of {epochs} epochs / {epochs}; compile warmed): {timings}, "
        f"implicit {lib:.3f}. "
        f"**BPR per epoch, kit (`BPR()`, engine {default}) / implicit: "
        f"{per_epoch[default] / lib:.2f}x** (target <= 1.5x); kit torch engine / implicit: "
        f"{per_epoch['torch'] / lib:.2f}x.",
        "",
    ]
    if "numba" in per_epoch:
        lines += [f"(numba's first fit in this process, 1 epoch, compile or cache load "
                  f"included: {compile_s:.2f} s)", ""]  # fmt: skip
    if not quality:
        return lines
    return lines + _bpr_quality(train, test, default)


def _bpr_quality(train, test, engine: str) -> list[str]:
    """Both trained to their defaults: time, HR@10, coverage@10 (and popularity's)."""
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    users = np.arange(train.shape[0])
    t0 = time.perf_counter()
    kit = BPR(factors=FACTORS, device="cpu").fit(train)  # the kit's defaults
    t_kit = time.perf_counter() - t0
    t0 = time.perf_counter()
    lib = BayesianPersonalizedRanking(factors=FACTORS, num_threads=1, random_state=0)
    lib.fit(train, show_progress=False)  # implicit's defaults (100 iterations)
    t_lib = time.perf_counter() - t0
    kit_lists = kit.recommend(users, K)[1]
    # implicit's BPR folds the bias into the factors: its own recommend scores with it.
    lib_lists = implicit_recommend(lib.user_factors, lib.item_factors, train)[0]
    pop_lists = PopularityRecommender().fit(train).recommend(users, K)[1]
    n_items = train.shape[1]
    return [
        f"Both at their defaults: kit `BPR()` = engine {kit.engine_used}, {kit.epochs} epochs, "
        f"lr {kit.lr}, regularization {kit.regularization}; implicit = 100 iterations, "
        "learning rate 0.01, regularization 0.01.",
        "",
        "| model | fit seconds | HR@10 | coverage@10 |",
        "|---|---|---|---|",
        f"| kit `BPR()` ({engine}) | {t_kit:.1f} | {hit_rate(kit_lists, test):.4f} | "
        f"{coverage(kit_lists, n_items):.3f} |",
        f"| implicit BPR | {t_lib:.1f} | {hit_rate(lib_lists, test):.4f} | "
        f"{coverage(lib_lists, n_items):.3f} |",
        f"| popularity | - | {hit_rate(pop_lists, test):.4f} | "
        f"{coverage(pop_lists, n_items):.3f} |",
        "",
        f"**coverage@10, kit / implicit: "
        f"{coverage(kit_lists, n_items) / coverage(lib_lists, n_items):.2f}x** "
        f"(loss {kit.loss_history[0]:.3f} -> {kit.loss_history[-1]:.3f} over the epochs)",
        "",
    ]


def section_memory(train) -> list[str]:
    from implicit.cpu.als import AlternatingLeastSquares

    users = np.arange(train.shape[0])
    kit = ALS(factors=FACTORS, iterations=2).fit(train)

    def lib_fit():
        m = AlternatingLeastSquares(factors=FACTORS, iterations=2, num_threads=1, random_state=0)
        m.fit(train, show_progress=False)

    mib = 2.0**20
    rows = {
        "ALS fit (2 iterations)": (
            peak_extra_memory(lambda: ALS(factors=FACTORS, iterations=2).fit(train)),
            peak_extra_memory(lib_fit),
        ),
        "recommend all users, k=10": (
            peak_extra_memory(lambda: kit.recommend(users, K)),
            peak_extra_memory(
                lambda: implicit_recommend(kit.user_factors, kit.item_factors, train)
            ),
        ),
    }
    lines = [
        "### Memory (peak extra resident memory, each step in a fresh forked process)",
        "",
        "| step | kit MiB | implicit MiB | kit / implicit |",
        "|---|---|---|---|",
    ]
    for name, (a, b) in rows.items():
        lines.append(f"| {name} | {a / mib:.0f} | {b / mib:.0f} | {a / max(b, 1.0):.2f}x |")
    dense = train.shape[0] * train.shape[1] * 4 / mib
    lines += ["", f"(A dense float32 score matrix for all users would be {dense:.0f} MiB.)", ""]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no BPR quality run")
    parser.add_argument("--only", default="als,recommend,bpr,memory")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        import implicit  # noqa: F401
    except ImportError:
        sys.exit("bench_cf needs the peer: pip install implicit==0.7.3")
    only = set(args.only.split(","))
    repeat = 1 if args.quick else args.repeat
    import torch

    from recsys_kit import progress

    progress.set_enabled(False)  # the report is the output; no bars in it

    t0 = time.perf_counter()
    matrix = beauty_like()
    train, test = hold_out_one(matrix)
    cpu = platform.processor() or platform.machine()
    print(
        "# CF benchmark: kit vs implicit\n\nData: synthetic Beauty-shaped matrix "
        f"{matrix.shape[0]:,} x {matrix.shape[1]:,}, {matrix.nnz:,} interactions (generated in "
        f"{time.perf_counter() - t0:.1f} s), one held out per user. Machine: {cpu}, "
        f"{multiprocessing.cpu_count()} logical cores, {cpu_flags()}; numpy {np.__version__}, "
        f"torch {torch.__version__}; every contender on one thread. Load average at start: "
        f"{load_average()}.\n",
        flush=True,
    )
    with thread_limit(1):
        if "als" in only:
            print("\n".join(section_als(train, test, repeat, iterations=5)), flush=True)
        if "recommend" in only:
            print("\n".join(section_recommend(train, test, repeat)), flush=True)
        if "bpr" in only:
            print("\n".join(section_bpr(train, test, repeat, 5, not args.quick)), flush=True)
        if "memory" in only:
            print("\n".join(section_memory(train)), flush=True)
    print(f"Load average at the end: {load_average()}.")


if __name__ == "__main__":
    main()
