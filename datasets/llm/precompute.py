"""Precompute the Module 8 LLM generations (deterministic; run once, commit the outputs).

Runs the shipped Gemma 3 270M base model (``recsys_kit.llm.LanguageModel()``, greedy decoding,
transformers backend on CPU) over small, seeded samples of MiniShop and writes, next to this
file:

* ``attributes.csv``: constrained attribute extraction for 49 products (7 per department).
* ``free_generations.csv``: the raw, unconstrained output of the few-shot extraction prompt
  for 7 of those products (one per department) (what a parser has to cope with).
* ``rewrites.csv``: rewrites of the 72 vague queries plus 20 others (4 per other kind, half
  English, half Chinese).
* ``intent_scores.csv``: log-likelihood of each department name after 60 queries (12 per
  query kind), plus the content-free ``"N/A"`` query used for calibration.
* ``descriptions.csv``: short generated descriptions for 14 products (2 per department).
* ``timings.json``: seconds, prompts and generated tokens per task (for the cost exercise).

Usage (from the repository root)::

    .venv/bin/python datasets/llm/precompute.py

About 10-15 minutes on 2 busy CPU cores (seconds when the generation cache is warm).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit.datasets import load_catalog, load_qrels, load_queries
from recsys_kit.llm import LanguageModel, catalog_schema, extract_attributes, rewrite_query
from recsys_kit.llm.extract import DEFAULT_FIELDS, build_prompt, pick_examples
from recsys_kit.llm.tasks import generate_descriptions

OUT = Path(__file__).resolve().parent
SEED = 7
N_PER_DEPT = 7
N_FREE = 7
N_DESC_PER_DEPT = 2
N_INTENT_PER_KIND = 12
N_OTHER_REWRITE_PER_KIND = 4
INTENT_TEMPLATE = "Search query: {query}\nDepartment:"
NA_QUERY = "N/A"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sample_products(catalog: pd.DataFrame, n_per_dept: int, seed: int) -> pd.DataFrame:
    parts = [
        catalog[catalog[C.COL_DEPARTMENT] == d].sample(n_per_dept, random_state=seed)
        for d in C.DEPARTMENTS
    ]
    return pd.concat(parts).sort_values(C.COL_PRODUCT_ID).reset_index(drop=True)


def query_departments(catalog: pd.DataFrame, qrels: pd.DataFrame) -> pd.DataFrame:
    """Each query's department: the one holding most of its relevance (sum of grades)."""
    dept = catalog.set_index(C.COL_PRODUCT_ID)[C.COL_DEPARTMENT]
    q = qrels[qrels[C.COL_GRADE] > 0].assign(department=lambda d: d[C.COL_PRODUCT_ID].map(dept))
    g = q.groupby([C.COL_QUERY_ID, "department"])[C.COL_GRADE].sum().reset_index()
    g = g.sort_values([C.COL_QUERY_ID, C.COL_GRADE, "department"], ascending=[True, False, True])
    total = g.groupby(C.COL_QUERY_ID)[C.COL_GRADE].transform("sum")
    g["share"] = g[C.COL_GRADE] / total
    top = g.drop_duplicates(C.COL_QUERY_ID)
    return top.set_index(C.COL_QUERY_ID)[["department", "share"]]


def main() -> None:
    t_start = time.perf_counter()
    catalog = load_catalog()
    queries = load_queries()
    qrels = load_qrels()
    timings: dict[str, dict] = {}

    log("loading the model")
    t0 = time.perf_counter()
    lm = LanguageModel(backend="transformers", batch_size=8)  # 8 for scoring
    timings["load"] = {"seconds": round(time.perf_counter() - t0, 1)}
    log(f"loaded {lm!r} in {timings['load']['seconds']} s")

    def timed(name: str, n: int, fn):
        before = dict(lm.stats)
        t = time.perf_counter()
        result = fn()
        sec = time.perf_counter() - t
        timings[name] = {
            "seconds": round(sec, 1),
            "n": n,
            "seconds_per_item": round(sec / max(n, 1), 2),
            "generated_tokens": int(lm.stats["generated_tokens"] - before["generated_tokens"]),
            "generate_seconds": round(lm.stats["generate_seconds"] - before["generate_seconds"], 1),
        }
        log(f"{name}: {timings[name]}")
        (OUT / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
        return result

    # (c) intent: log-likelihood of each department after the query (cheap, first).
    depts = query_departments(catalog, qrels)
    pool = queries[queries[C.COL_QUERY_ID].isin(depts.index)]
    intent_q = (
        pool.groupby(C.COL_QUERY_KIND)
        .sample(N_INTENT_PER_KIND, random_state=SEED)
        .sort_values(C.COL_QUERY_ID)
        .reset_index(drop=True)
    )
    labels = list(C.DEPARTMENTS)
    items = [*intent_q[C.COL_QUERY], NA_QUERY]
    prompts = [INTENT_TEMPLATE.format(query=q) for q in items for _ in labels]
    conts = [f" {lab}" for _ in items for lab in labels]
    scores = timed("intent", len(intent_q), lambda: lm.loglikelihood(prompts, conts))
    scores = np.asarray(scores).reshape(len(items), len(labels))
    lm.batch_size = 16  # generation: a bigger batch costs little more per step
    intent = pd.DataFrame(
        {
            C.COL_QUERY_ID: [*intent_q[C.COL_QUERY_ID], "NA"],
            C.COL_QUERY: items,
            C.COL_LANGUAGE: [*intent_q[C.COL_LANGUAGE], ""],
            C.COL_QUERY_KIND: [*intent_q[C.COL_QUERY_KIND], "content_free"],
            "department": [*depts.loc[intent_q[C.COL_QUERY_ID], "department"], ""],
            "department_share": [*depts.loc[intent_q[C.COL_QUERY_ID], "share"].round(3), np.nan],
        }
    )
    for j, lab in enumerate(labels):
        intent[f"ll_{lab}"] = scores[:, j].round(4)
    intent.to_csv(OUT / "intent_scores.csv", index=False)

    # (a) constrained attribute extraction.
    schema = catalog_schema(catalog)
    sample = sample_products(catalog, N_PER_DEPT, SEED)
    attrs = timed(
        "extraction",
        len(sample),
        lambda: extract_attributes(
            list(sample[C.COL_TITLE_EN]),
            lm,
            schema,
            examples=catalog,
            ids=list(sample[C.COL_PRODUCT_ID]),
            n_shots=3,
            method="constrained",
        ),
    )
    attrs.insert(2, C.COL_DEPARTMENT, list(sample[C.COL_DEPARTMENT]))
    attrs = attrs.drop(columns=["errors", "attempts"]).sort_values(C.COL_PRODUCT_ID)
    attrs.to_csv(OUT / "attributes.csv", index=False)

    # (a') raw free generations of the same prompt, for the parsing exercise.
    free = sample.groupby(C.COL_DEPARTMENT, group_keys=False).head(1).head(N_FREE)
    fields = list(DEFAULT_FIELDS)
    shots = pick_examples(catalog, 3, exclude=list(sample[C.COL_PRODUCT_ID]), seed=C.SEED)
    free_prompts = [build_prompt(t, shots, fields) for t in free[C.COL_TITLE_EN]]
    texts = timed(
        "free_generation",
        len(free),
        lambda: lm.generate(free_prompts, max_new_tokens=48, stop=["\n\n", "Product:"]),
    )
    pd.DataFrame(
        {
            C.COL_PRODUCT_ID: list(free[C.COL_PRODUCT_ID]),
            "title": list(free[C.COL_TITLE_EN]),
            "raw_output": texts,
        }
    ).sort_values(C.COL_PRODUCT_ID).to_csv(OUT / "free_generations.csv", index=False)

    # (b) query rewriting: every vague query, plus a few of each other kind.
    vague = queries[queries[C.COL_QUERY_KIND] == "vague"]
    others = (
        queries[queries[C.COL_QUERY_KIND] != "vague"]
        .groupby([C.COL_QUERY_KIND, C.COL_LANGUAGE])
        .sample(N_OTHER_REWRITE_PER_KIND // 2, random_state=SEED)
    )
    rq = pd.concat([vague, others]).sort_values(C.COL_QUERY_ID).reset_index(drop=True)
    rewrites = timed("rewrite", len(rq), lambda: rewrite_query(list(rq[C.COL_QUERY]), lm))
    rq = rq.assign(rewrite=rewrites)
    rq.to_csv(OUT / "rewrites.csv", index=False)

    # (d) descriptions for a few products of the extraction sample.
    dsample = sample.groupby(C.COL_DEPARTMENT, group_keys=False).head(N_DESC_PER_DEPT)
    descs = timed(
        "descriptions",
        len(dsample),
        lambda: generate_descriptions(dsample, lm, examples=catalog, n_shots=2, max_new_tokens=40),
    )
    pd.DataFrame(
        {
            C.COL_PRODUCT_ID: list(dsample[C.COL_PRODUCT_ID]),
            C.COL_DEPARTMENT: list(dsample[C.COL_DEPARTMENT]),
            "title": list(dsample[C.COL_TITLE_EN]),
            "generated_description": descs,
            "catalog_description": list(dsample[C.COL_DESCRIPTION_EN]),
        }
    ).sort_values(C.COL_PRODUCT_ID).to_csv(OUT / "descriptions.csv", index=False)

    timings["total"] = {"seconds": round(time.perf_counter() - t_start, 1)}
    timings["model"] = {"name": lm.model_name, "backend": lm.backend, "device": str(lm.device)}
    (OUT / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    log(f"done in {timings['total']['seconds']} s")


if __name__ == "__main__":
    main()
