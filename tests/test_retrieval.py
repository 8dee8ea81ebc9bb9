"""The notebooks' shared setup as kit functions: the mini-shop, first-stage runs, the prior."""

import numpy as np
import pandas as pd
import pytest

from recsys_kit import constants as C
from recsys_kit import datasets as D
from recsys_kit.hybrid import with_prior
from recsys_kit.lexical import BM25Index
from recsys_kit.ranking import topk
from recsys_kit.retrieval import bm25_run, dense_run, runs_by_target
from recsys_kit.runs import to_run
from recsys_kit.scoring import pair_features, quality_prior


@pytest.fixture(scope="module")
def minishop():
    return D.load_catalog(), D.load_queries(), D.load_qrels()


def test_minishop_sample_answers_its_queries_and_nests(minishop):
    catalog, queries, qrels = minishop
    big = D.minishop_sample(catalog, queries, qrels, n_products=120, per_cell=3)
    small = D.minishop_sample(catalog, queries, qrels, n_products=60, per_cell=3)
    assert set(small.products[C.COL_PRODUCT_ID]) <= set(big.products[C.COL_PRODUCT_ID])
    assert big.products[C.COL_PRODUCT_ID].is_monotonic_increasing
    ids = set(big.products[C.COL_PRODUCT_ID])
    for qid in big.queries[C.COL_QUERY_ID]:  # every query has an exact product in the shop
        exact = qrels[(qrels[C.COL_QUERY_ID] == qid) & (qrels[C.COL_LABEL] == "E")]
        assert set(exact[C.COL_PRODUCT_ID]) & ids
        assert set(big.qrels[qid]) <= ids
    cells = big.queries.groupby([C.COL_LANGUAGE, C.COL_QUERY_KIND]).size()
    assert cells.max() <= 3
    cross = big.queries[C.COL_QUERY_KIND] == "cross_lingual"
    assert (big.queries.loc[cross, "target"] != big.queries.loc[cross, C.COL_LANGUAGE]).all()
    assert (big.queries.loc[~cross, "target"] == big.queries.loc[~cross, C.COL_LANGUAGE]).all()
    with pytest.raises(ValueError, match="n_products"):
        D.minishop_sample(catalog, queries, qrels, n_products=301)
    with pytest.raises(ValueError, match="lacks column"):
        D.minishop_sample(catalog, queries.drop(columns=[C.COL_QUERY_KIND]), qrels)


def test_bm25_run_is_the_index_top_k_without_zero_scores():
    docs = ["red cotton dress", "blue denim jeans", "red wool coat", "green hat"]
    ids = ["a", "b", "c", "d"]
    qs = ["red dress", "umbrella"]
    run = bm25_run(["q1", "q2"], qs, docs, ids, k=10)  # k above the corpus size is clipped
    s, i = BM25Index(docs, ids).search(qs, k=4)
    full = to_run(["q1", "q2"], s, i, ids)
    assert run["q1"] == {d: v for d, v in full["q1"].items() if v > 0}
    assert set(run["q1"]) == {"a", "c"} and run["q2"] == {}
    with pytest.raises(ValueError, match="query ids"):
        bm25_run(["q1"], qs, docs, ids)


def test_runs_by_target_searches_each_querys_language():
    rng = np.random.default_rng(1)
    texts = {
        "en": ["red dress", "blue jeans", "wool coat"],
        "zh": ["红色连衣裙", "蓝色牛仔裤", "羊毛大衣"],
    }
    vecs = {lang: rng.normal(size=(3, 8)).astype(np.float32) for lang in texts}
    queries = pd.DataFrame({C.COL_QUERY_ID: ["q1", "q2", "q3"],
                            C.COL_QUERY: ["red dress", "连衣裙", "jeans"],
                            "target": ["en", "zh", "zh"]})  # fmt: skip
    qv = rng.normal(size=(3, 8)).astype(np.float32)
    lexical, semantic = runs_by_target(queries, qv, texts, vecs, ["a", "b", "c"], k=2, device="cpu")
    assert list(lexical["q1"]) == ["a"] and list(lexical["q2"]) == ["a"]
    assert lexical["q3"] == {}  # an English word against Chinese titles: no match
    s, i = topk(qv[[1, 2]], vecs["zh"], k=2, metric="dot", device="cpu")
    assert semantic["q2"] == to_run(["q2", "q3"], s, i, ["a", "b", "c"])["q2"]
    assert semantic == dense_run(["q1"], qv[:1], vecs["en"], ["a", "b", "c"], 2, device="cpu") | {
        q: semantic[q] for q in ("q2", "q3")
    }
    with pytest.raises(KeyError, match="target"):
        runs_by_target(queries.drop(columns="target"), qv, texts, vecs, ["a", "b", "c"])
    with pytest.raises(KeyError, match="every target language"):
        runs_by_target(queries, qv, {"en": texts["en"]}, {"en": vecs["en"]}, ["a", "b", "c"])


def test_quality_prior_is_the_query_independent_half_of_pair_features(minishop):
    catalog = minishop[0].head(40)
    prior = quality_prior(catalog)
    assert prior.index.tolist() == catalog[C.COL_PRODUCT_ID].tolist()
    assert prior.between(0, 1).all()
    q = pd.DataFrame({C.COL_QUERY_ID: ["q"], C.COL_QUERY: ["anything"]})
    pairs = pd.DataFrame({C.COL_QUERY_ID: "q", C.COL_PRODUCT_ID: catalog[C.COL_PRODUCT_ID]})
    feats = pair_features(q, catalog, pairs, np.ones((1, 2)), np.ones((len(catalog), 2)))
    np.testing.assert_allclose(prior.to_numpy(), 0.5 * feats["rating"] + 0.5 * feats["popularity"])
    np.testing.assert_allclose(quality_prior(catalog, 1.0).to_numpy(), feats["rating"])
    run = {"q": dict.fromkeys(catalog[C.COL_PRODUCT_ID].head(5), 1.0)}  # relevance ties
    best = max(with_prior(run, prior, 0.5)["q"].items(), key=lambda kv: kv[1])[0]
    assert best == prior.head(5).idxmax()
    with pytest.raises(KeyError, match="review_count"):
        quality_prior(catalog.drop(columns=[C.COL_REVIEW_COUNT]))


def test_old_import_paths_still_work():
    from recsys_kit.cf import leave_last_out, load_amazon_sequences
    from recsys_kit.cf.interactions import SPLIT_TEST, split_frames
    from recsys_kit.cf.sequences import amazon_fixture_path
    from recsys_kit.explorer import stratified_subset
    from recsys_kit.fusion import cpu_threads_for as fusion_threads
    from recsys_kit.scoring import cpu_threads_for, scores_to_run, train_test_queries

    assert leave_last_out is D.leave_last_out and split_frames is D.split_frames
    assert load_amazon_sequences is D.load_amazon_sequences and SPLIT_TEST == "test"
    assert amazon_fixture_path is D.amazon_fixture_path
    assert stratified_subset is D.stratified_subset
    assert train_test_queries is D.train_test_queries and fusion_threads is cpu_threads_for
    assert callable(scores_to_run)
