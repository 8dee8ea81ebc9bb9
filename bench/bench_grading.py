"""Benchmark: what the trusted judge costs per submission, against the grader it replaced.

The grader before the split (the ``recsys_kit.course`` package of ``--baseline-ref``, default
the last commit whose autograde ran every test inside the student's kernel) is checked out into
a temporary copy of today's tree, so that both graders run today's notebooks on today's kit, and
run on the same machine, alternately with the current one, on the same submissions (each row
prints both graders' scores: they must agree):

* the 8 sample submissions of Module 0 (``grading/samples/``: one judge build for the batch);
* each module's solution, submitted as a student would (one submission per module: the worst
  case for the judge, whose reference namespace is built once per assignment);
* then a late student of the same module graded alone (``autograde --student``), as after a
  class's grading: the judge loads the reference namespace it kept the first time
  (:mod:`recsys_grader.judgecache`) instead of building it. ``validate``, which an instructor
  runs before releasing, keeps it too, so this is also what the first submission pays then.

It prints seconds per submission for both graders and the ratio (target: at most 1.5x).

With ``--cluster`` it measures instead how grading scales on Dask (``autograde --cluster``):
the same ``--copies`` submissions of Module 0's solution are graded on a LocalCluster of 1 and
then of 2 worker processes (``--workers`` sandboxes per worker, default 1), alternately
``--repeats`` times, and it prints submissions per minute for both and their ratio (ideal 2x;
the cluster's start-up is not counted, the judges' reference builds are).

Usage:
    python bench/bench_grading.py [--modules 00_orientation 02_similarity_ranking ...]
        [--baseline-ref 6685dcf] [--workers 2] [--repeats 1]
    python bench/bench_grading.py --cluster [--copies 8] [--workers 1] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recsys_grader.layout import RUNTIME_STATE

REPO = Path(__file__).resolve().parent.parent
STATE = RUNTIME_STATE
DEFAULT_BASELINE = "6685dcf"  # the last commit that graded inside the student's kernel

# Runs one grader on one prepared course copy; prints the wall time of autograde alone.
_RUNNER = r"""
import json, sys, time
from pathlib import Path
root, package = sys.argv[1], sys.argv[2]
mod = __import__(package + ".autograde", fromlist=["autograde"])
rel = __import__(package + ".release", fromlist=["release"])
lim = __import__(package + ".sandbox", fromlist=["Limits"])
rel.release(root=root)
kwargs = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
with __import__("contextlib").ExitStack() as stack:
    if kwargs.get("cluster"):  # start the workers first: grading alone is timed
        from recsys_kit.cluster import connect
        kwargs["cluster"] = stack.enter_context(connect(kwargs["cluster"]))
    start = time.perf_counter()
    results = mod.autograde(limits=lim.Limits(), workers=int(sys.argv[3]), root=root,
                            log=lambda line: None, **kwargs)
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "n": len([r for r in results if r.status != "missing"]),
                  "scores": {r.student: r.score for r in results}}))
"""


def _baseline_tree(baseline: Path, ref: str) -> None:
    """Today's tree (kit, notebooks, data) with the old grader package of ``ref`` in it.

    Both graders must run the same notebooks on the same kit: the old tree's own kit lacks
    functions today's notebooks call, and its kernel then fails fast on them (Module 2
    measured 5.1 s and 12/20 that way, against 6.9 s and 20/20 with today's kit).
    """
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), "HEAD"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["git", "-C", str(baseline), "checkout", ref, "--", "recsys_kit/course"],
        check=True,
        capture_output=True,
    )


def _course_copy(repo: Path, base: Path, assignments: list[str]) -> Path:
    shutil.copytree(repo / "grading", base / "grading", ignore=shutil.ignore_patterns(*STATE))
    for a in assignments:
        shutil.copytree(repo / "solutions" / a, base / "solutions" / a)
        shutil.copytree(repo / "course" / a, base / "course" / a)
    roster = base / "grading" / "roster.csv"
    roster.write_text("student_id\n")  # nobody is "missing"
    return base / "grading"


def _solution_submission(assignment: str) -> str:
    """The release with the solutions filled in (the current grader's own helper)."""
    sys.path.insert(0, str(REPO))
    from recsys_grader import notebooks as nbs
    from recsys_grader.validate import solution_submission

    source = nbs.read_notebook(REPO / "solutions" / assignment / f"{assignment}.ipynb")
    return nbs.dumps(solution_submission(source, nbs.reference(source)))


def _run(
    code_root: Path,
    package: str,
    course_root: Path,
    workers: int,
    cluster: str | None = None,
    students: list[str] | None = None,
) -> dict:
    # both graders read the same (warm) embedding cache
    cache = os.environ.get("RECSYS_CACHE_DIR", str(REPO / ".cache"))
    env = {**os.environ, "PYTHONPATH": str(code_root), "RECSYS_CACHE_DIR": cache}
    options = {k: v for k, v in (("cluster", cluster), ("students", students)) if v}
    extra = [json.dumps(options)] if options else []
    out = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(course_root), package, str(workers), *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=code_root,
        timeout=3600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{package} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _prepare(repo: Path, tmp: Path, name: str, assignment: str, samples: bool) -> Path:
    root = _course_copy(repo, tmp / name, [assignment])
    submitted = root / "submitted"
    if samples:
        shutil.copytree(root / "samples", submitted, ignore=shutil.ignore_patterns("*.csv"))
    else:
        folder = submitted / "solution" / assignment
        folder.mkdir(parents=True)
        (folder / f"{assignment}.ipynb").write_text(_solution_submission(assignment))
    return root


def _cluster_scaling(copies: int, workers: int, repeats: int) -> None:
    """Grading throughput on a LocalCluster of 1 and 2 worker processes, measured alternately."""
    assignment = "00_orientation"
    text = _solution_submission(assignment)
    print(
        f"{'cluster':10} {'seconds':>8} {'sub/min':>8}   ({copies} copies of {assignment}'s "
        f"solution, {workers} sandbox(es) per worker)"
    )
    per_min: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp_name:
        for r in range(repeats):
            for n in (1, 2):
                root = _course_copy(REPO, Path(tmp_name) / f"r{r}w{n}", [assignment])
                for i in range(copies):
                    folder = root / "submitted" / f"s{i:03d}" / assignment
                    folder.mkdir(parents=True)
                    (folder / f"{assignment}.ipynb").write_text(text)
                run = _run(REPO, "recsys_grader", root, workers, f"local:{n}")
                scores = set(run["scores"].values())
                rate = 60 * run["n"] / run["seconds"]
                per_min[n].append(rate)
                print(
                    f"local:{n:<4} {run['seconds']:8.1f} {rate:8.2f}   scores {sorted(scores)}; "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    best = {n: max(v) for n, v in per_min.items()}
    print(
        f"throughput 2 workers / 1 worker: {best[2] / best[1]:.2f}x (ideal 2.00x; best of "
        f"{repeats}); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modules", nargs="*", default=None, help="solution runs (default all)")
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE)
    parser.add_argument("--workers", type=int, default=None, help="default 2 (1 with --cluster)")
    parser.add_argument("--skip-samples", action="store_true")
    parser.add_argument("--repeats", type=int, default=1, help="--cluster: alternate runs")
    parser.add_argument("--cluster", action="store_true", help="1 vs 2 Dask workers instead")
    parser.add_argument("--copies", type=int, default=8, help="--cluster: submissions graded")
    args = parser.parse_args(argv)
    if args.cluster:
        print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at start")
        _cluster_scaling(args.copies, args.workers or 1, args.repeats)
        return
    args.workers = args.workers or 2
    modules = args.modules or sorted(
        p.name for p in (REPO / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file()
    )
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp_name:
        tmp = Path(tmp_name)
        baseline = tmp / "baseline"
        _baseline_tree(baseline, args.baseline_ref)
        try:
            cases = [] if args.skip_samples else [("8 samples (Module 0)", "00_orientation", True)]
            cases += [(f"solution of {m}", m, False) for m in modules]
            print(f"{'submissions':34} {'old s/sub':>10} {'new s/sub':>10} {'ratio':>7}")
            ratios, loaded = [], []
            for i, (label, assignment, samples) in enumerate(cases):
                old_root = _prepare(baseline, tmp, f"old{i}", assignment, samples)
                new_root = _prepare(REPO, tmp, f"new{i}", assignment, samples)
                start = time.perf_counter()
                old = _run(baseline, "recsys_kit.course", old_root, args.workers)
                new = _run(REPO, "recsys_grader", new_root, args.workers)
                old_per, new_per = old["seconds"] / old["n"], new["seconds"] / new["n"]
                ratios.append(new_per / old_per)
                print(
                    f"{label:34} {old_per:10.1f} {new_per:10.1f} {new_per / old_per:6.2f}x"
                    f"   (scores old {old['scores']} new {new['scores']}; "
                    f"{time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
                if samples:
                    continue
                # a late student, graded alone after the class: the new judge loads the
                # reference namespace it kept from the first grading instead of building it
                for root in (old_root, new_root):
                    late = root / "submitted" / "late" / assignment
                    late.mkdir(parents=True)
                    first = root / "submitted" / "solution" / assignment / f"{assignment}.ipynb"
                    shutil.copy(first, late)
                old = _run(baseline, "recsys_kit.course", old_root, args.workers, None, ["late"])
                new = _run(REPO, "recsys_grader", new_root, args.workers, None, ["late"])
                old_per, new_per = old["seconds"] / old["n"], new["seconds"] / new["n"]
                ratios.append(new_per / old_per)
                loaded.append(new_per / old_per)
                label = f"late submission of {assignment}"
                print(
                    f"{label:34} {old_per:10.1f} {new_per:10.1f} {new_per / old_per:6.2f}x"
                    f"   (scores old {old['scores']} new {new['scores']})",
                    flush=True,
                )
            print(f"worst ratio {max(ratios):.2f}x (target <= 1.5x); load {os.getloadavg()[0]:.1f}")
            if loaded:  # what every grading after `validate` (or a first grading) pays
                print(f"worst ratio with the namespace loaded (late rows) {max(loaded):.2f}x")
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)],
                capture_output=True,
            )


if __name__ == "__main__":
    main()
