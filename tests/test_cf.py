"""Tests of recsys_kit.cf: matrix building, baselines, ItemKNN, ALS/BPR, profiles, hybrid,
evaluation and the Amazon 5-core sequence loader. Tiny synthetic data, plus MiniShop where cheap.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_kit import cf
from recsys_kit.cf import (
    ALS,
    BPR,
    HybridRecommender,
    ImplicitALS,
    ItemKNN,
    PopularityRecommender,
)


# --------------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------------
def log(rows: list[tuple]) -> pd.DataFrame:
    cols = ["user_id", "product_id", "event", "timestamp", "split"][: len(rows[0])]
    return pd.DataFrame(rows, columns=cols)


@pytest.fixture(scope="module")
def low_rank() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users and items in 6 taste groups: users mostly buy within their group (rank ~6)."""
    rng = np.random.default_rng(0)
    n_users, n_items, groups = 300, 120, 6
    ug, ig = rng.integers(0, groups, n_users), np.arange(n_items) % groups
    p = np.where(ug[:, None] == ig[None, :], 0.25, 0.01)
    u, i = np.nonzero(rng.random((n_users, n_items)) < p)
    df = pd.DataFrame(
        {"user_id": u, "product_id": i, "event": "purchase", "timestamp": rng.random(len(u))}
    )
    df = cf.leave_last_out(df, n_test=2)
    return df[df.split == "train"], df[df.split == "test"]


class HashEncoder:
    """Deterministic bag-of-words encoder (stand-in for TextEncoder in unit tests)."""

    dim = 16

    def encode(self, texts, kind="passage"):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, t in enumerate(texts):
            for w in t.lower().split():
                out[r, zlib.crc32(w.encode()) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------------------------
# interaction matrix
# --------------------------------------------------------------------------------------------
def test_build_matrix_sums_event_weights_and_sorts_ids():
    df = log(
        [("u2", "b", "view"), ("u1", "a", "view"), ("u1", "a", "purchase"), ("u2", "a", "cart")]
    )
    X, users, items = cf.build_matrix(df)
    assert list(users) == ["u1", "u2"] and list(items) == ["a", "b"]
    assert X.dtype == np.float32 and sp.isspmatrix_csr(X)
    np.testing.assert_array_equal(X.toarray(), [[6.0, 0.0], [3.0, 1.0]])
    np.testing.assert_array_equal(
        cf.build_matrix(df, aggregate="max")[0].toarray(), [[5, 0], [3, 1]]
    )
    np.testing.assert_array_equal(cf.build_matrix(df, weights=None)[0].toarray(), [[2, 0], [1, 1]])


def test_build_matrix_respects_the_split_and_explicit_items():
    df = log([("u1", "a", "view", 0, "train"), ("u1", "b", "purchase", 5, "test")])
    X, users, items = cf.build_matrix(df, items=["a", "b", "c"])
    np.testing.assert_array_equal(X.toarray(), [[1.0, 0.0, 0.0]])  # the test purchase is unseen
    assert list(items) == ["a", "b", "c"]
    assert cf.build_matrix(df, split=None)[0].sum() == 6.0
    with pytest.raises(ValueError, match="no rows with split == 'valid'"):
        cf.build_matrix(df, split="valid")


def test_build_matrix_errors_name_the_problem():
    df = log([("u1", "a", "like")])
    with pytest.raises(ValueError, match=r"events \['like'\] have no weight"):
        cf.build_matrix(df)
    with pytest.raises(ValueError, match="lacks column"):
        cf.build_matrix(df.drop(columns="product_id"))
    ok = log([("u1", "a", "view"), ("u1", "z", "view")])
    with pytest.raises(ValueError, match="unknown='drop'"):
        cf.build_matrix(ok, items=["a"])
    assert cf.build_matrix(ok, items=["a"], unknown="drop")[0].nnz == 1
    with pytest.raises(ValueError, match="duplicate"):
        cf.build_matrix(ok, items=["a", "a", "z"])


def test_leave_last_out_by_time_and_short_users_stay_in_train():
    df = pd.DataFrame(
        {"user_id": ["a", "a", "a", "b"], "product_id": [1, 2, 3, 4], "timestamp": [5, 1, 3, 0]}
    )
    out = cf.leave_last_out(df)
    assert out["split"].tolist() == ["test", "train", "train", "train"]
    assert "split" not in df.columns  # a copy
    with pytest.raises(ValueError, match="n_test"):
        cf.leave_last_out(df, n_test=0)


def test_topk_rows_matches_a_stable_sort_with_ties():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, size=(50, 30)).astype(np.float32)  # many ties
    for k in (1, 5, 30):
        s, i = cf.topk_rows(scores, k)
        ref = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(i, ref)
        np.testing.assert_array_equal(s, np.take_along_axis(scores, ref, axis=1))


# --------------------------------------------------------------------------------------------
# baselines and ItemKNN
# --------------------------------------------------------------------------------------------
def test_popularity_and_exclude_seen():
    X = sp.csr_matrix([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0], [1.0, 0, 1.0, 0]])
    pop = PopularityRecommender().fit(X)
    s, i = pop.recommend([0, 1], k=2)
    np.testing.assert_array_equal(i, [[1, 2], [2, 3]])  # ties -> lower column
    np.testing.assert_array_equal(s, [[1, 1], [1, 0]])
    s, i = pop.recommend([1], k=4)  # more than the unseen items: padded with -inf
    assert np.isinf(s[0, -2:]).all() and set(i[0, -2:]) == {0, 1}
    with pytest.raises(ValueError, match="k must be"):
        pop.recommend([0], k=5)
    with pytest.raises(IndexError, match="cold start"):
        pop.recommend([-1], k=1)
    with pytest.raises(RuntimeError, match="not fitted"):
        PopularityRecommender().recommend([0])
    with pytest.raises(TypeError, match="dense numpy"):
        PopularityRecommender().fit(np.eye(3))


def test_item_knn_hand_made_example():
    # items: a=[1,1,0], b=[1,1,1], c=[0,0,1] (columns over 3 users)
    X = sp.csr_matrix([[1.0, 1.0, 0], [1.0, 1.0, 0], [0, 1.0, 1.0]])
    knn = ItemKNN(k_neighbors=2).fit(X)
    S = knn.similarity.toarray()
    ab, bc = 2 / math.sqrt(6), 1 / math.sqrt(3)
    np.testing.assert_allclose(S, [[0, ab, 0], [ab, 0, bc], [0, bc, 0]], rtol=1e-6)
    s, i = knn.recommend([2], k=1)  # user 2 has b and c: a is a neighbour of b
    assert i.tolist() == [[0]] and s[0, 0] == pytest.approx(ab)
    shrunk = ItemKNN(k_neighbors=2, shrinkage=1.0).fit(X).similarity.toarray()
    assert shrunk[0, 1] == pytest.approx(2 / (math.sqrt(6) + 1))
    one = ItemKNN(k_neighbors=1).fit(X).similarity.toarray()
    np.testing.assert_allclose(one[1], [ab, 0, 0], rtol=1e-6)  # b keeps only its best neighbour
    sims, items = knn.similar_items(1, k=2)
    assert items.tolist() == [0, 2]


def test_item_knn_matches_dense_reference():
    rng = np.random.default_rng(3)
    dense = (rng.random((40, 25)) < 0.2) * rng.integers(1, 6, (40, 25))
    knn = ItemKNN(k_neighbors=25, shrinkage=2.0).fit(sp.csr_matrix(dense.astype(float)))
    norms = np.linalg.norm(dense, axis=0)
    ref = dense.T @ dense / (norms[:, None] * norms[None, :] + 2.0)
    np.fill_diagonal(ref, 0)
    np.testing.assert_allclose(knn.similarity.toarray(), ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(knn.score(np.arange(40)), dense @ ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="k_neighbors"):
        ItemKNN(k_neighbors=0)


# --------------------------------------------------------------------------------------------
# matrix factorisation
# --------------------------------------------------------------------------------------------
def test_als_and_bpr_beat_popularity_on_low_rank_data(low_rank):
    train, test = low_rank
    pop = cf.evaluate_recommender(PopularityRecommender(), train, test, k=10)
    als = cf.evaluate_recommender(ALS(factors=8, iterations=8, seed=0), train, test, k=10)
    bpr = cf.evaluate_recommender(BPR(factors=8, epochs=30, lr=0.1, seed=0), train, test, k=10)
    for res in (als, bpr):
        assert res["hit_rate@10"] > pop["hit_rate@10"] + 0.2
        assert res["ndcg@10"] > pop["ndcg@10"] + 0.1


def test_als_is_deterministic_and_solvers_agree(low_rank):
    X, _, _ = cf.build_matrix(low_rank[0])
    a, b = ALS(factors=6, iterations=4, seed=7).fit(X), ALS(factors=6, iterations=4, seed=7).fit(X)
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    c = ALS(factors=6, iterations=4, seed=8).fit(X)
    assert not np.allclose(a.user_factors, c.user_factors)
    exact = ALS(factors=6, iterations=6, seed=7, solver="exact").fit(X)
    assert all(np.diff(exact.loss_history) <= 1e-6 * exact.loss_history[0])  # monotone
    cg = ALS(factors=6, iterations=6, seed=7, solver="cg", cg_steps=6).fit(X)
    assert cg.loss_history[-1] == pytest.approx(exact.loss_history[-1], rel=1e-3)
    assert a.user_factors.shape == (X.shape[0], 6) and a.item_factors.dtype == np.float32


def test_als_exact_solve_is_the_normal_equation():
    rng = np.random.default_rng(0)
    conf = sp.csr_matrix((rng.random((6, 5)) < 0.5) * (1 + 3 * rng.random((6, 5))))
    y, lam = rng.standard_normal((5, 3)), 0.1
    x = cf.mf.als_solve_exact(conf, y, lam)
    for u in range(6):
        c = conf[u].toarray().ravel()
        cu = np.where(c > 0, c, 1.0)  # confidence 1 on the unobserved cells
        p = (c > 0).astype(float)
        a = y.T @ (cu[:, None] * y) + lam * np.eye(3)
        np.testing.assert_allclose(x[u], np.linalg.solve(a, y.T @ (cu * p)), rtol=1e-8)


@pytest.mark.skipif(not cf.implicit_available(), reason="optional `implicit` not installed")
def test_numpy_als_matches_the_implicit_library(low_rank):
    X, _, _ = cf.build_matrix(low_rank[0])
    ref = ALS(factors=6, iterations=3, seed=1, solver="exact").fit(X)
    lib = ImplicitALS(factors=6, iterations=3, seed=1, use_cg=False).fit(X)
    np.testing.assert_allclose(lib.user_factors, ref.user_factors, atol=1e-3)
    assert (lib.recommend(np.arange(20), 5)[1] == ref.recommend(np.arange(20), 5)[1]).mean() > 0.95


def test_bpr_is_deterministic_and_learns(low_rank):
    X, _, _ = cf.build_matrix(low_rank[0])
    a = BPR(factors=4, epochs=3, seed=3, device="cpu", engine="torch").fit(X)
    b = BPR(factors=4, epochs=3, seed=3, device="cpu", engine="torch").fit(X)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    np.testing.assert_array_equal(a.item_bias, b.item_bias)
    assert a.loss_history[-1] < a.loss_history[0] < math.log(2) + 0.05
    keys = np.array([0 * 10 + 1, 0 * 10 + 2])  # user 0 owns items 1 and 2
    neg = BPR.sample_negatives(np.zeros(500, dtype=np.int64), keys, 10, np.random.default_rng(0))
    assert not np.isin(neg, [1, 2]).any()


# --------------------------------------------------------------------------------------------
# profiles
# --------------------------------------------------------------------------------------------
def test_behaviour_profiles_weights_decay_and_shapes():
    vecs = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 2.0]], dtype=np.float32)
    df = log([("u", "p0", "view", 0), ("u", "p1", "purchase", 10), ("v", "p2", "click", 3)])
    ids = ["p0", "p1", "p2"]
    prof, users = cf.behaviour_profiles(df, vecs, ids)
    assert prof.shape == (2, 3) and list(users) == ["u", "v"]
    np.testing.assert_allclose(np.linalg.norm(prof, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(prof[0], np.array([1, 5, 0]) / math.sqrt(26), rtol=1e-6)
    decayed = cf.behaviour_profile("u", df, vecs, ids, half_life=10)  # the view is 10 old
    np.testing.assert_allclose(decayed, np.array([0.5, 5, 0]) / math.sqrt(25.25), rtol=1e-6)
    frame = pd.DataFrame(vecs, index=ids)
    np.testing.assert_allclose(cf.behaviour_profile("v", df, frame), [0, 0, 1])
    with pytest.raises(KeyError, match="cold-start"):
        cf.behaviour_profile("nobody", df, vecs, ids)
    with pytest.raises(ValueError, match="item_ids"):
        cf.behaviour_profiles(df, vecs)  # ids are strings, rows are numbered


def test_decay_with_datetimes_is_in_days():
    df = pd.DataFrame(
        {"user_id": [1, 1], "timestamp": pd.to_datetime(["2025-01-01", "2025-01-08"])}
    )
    np.testing.assert_allclose(cf.decay_factors(df, half_life=7), [0.5, 1.0])


def test_preference_profile_shares():
    catalog = pd.DataFrame(
        {
            "product_id": ["a", "b", "c", "d"],
            "category": ["shoes", "shoes", "bags", "bags"],
            "color": ["black", "red", "black", "black"],
            "price": [10.0, 20.0, 30.0, 40.0],
        }
    )
    df = log([("u", "a", "purchase"), ("u", "c", "view"), ("v", "d", "view")])
    prefs = cf.preference_profile(df, catalog)
    assert list(prefs.index) == ["u", "v"]
    assert prefs.loc["u", ("category", "shoes")] == pytest.approx(5 / 6)
    for aspect in ("category", "price_band", "color"):
        np.testing.assert_allclose(prefs[aspect].sum(axis=1), 1.0)
    assert prefs.loc["v", ("price_band", "premium")] == 1.0
    assert prefs.loc["u", ("stats", "mean_price")] == pytest.approx((5 * 10 + 30) / 6)
    assert prefs["category"].idxmax(axis=1).tolist() == ["shoes", "bags"]
    with pytest.raises(ValueError, match="missing from the catalog"):
        cf.preference_profile(log([("u", "zz", "view")]), catalog)


def test_text_profile_unit_vector_and_errors():
    enc = HashEncoder()
    v = cf.text_profile("I like minimalist black leather things", enc)
    assert v.shape == (16,) and np.linalg.norm(v) == pytest.approx(1.0)
    both = cf.text_profile(["black leather", "black leather"], enc)
    np.testing.assert_allclose(both, enc.encode(["black leather"])[0], rtol=1e-6)
    with pytest.raises(ValueError, match="non-empty"):
        cf.text_profile(["  "], enc)


# --------------------------------------------------------------------------------------------
# hybrid and personalised re-ranking
# --------------------------------------------------------------------------------------------
def test_hybrid_scores_cold_products_through_content():
    # users 0-1 like items 0-1 (direction e0), users 2-3 like items 2-3 (e1); item 4 is new
    X = sp.csr_matrix([[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 1, 1, 0.0]])
    text = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1], [1, 0.05]], dtype=np.float32)
    images = np.zeros((5, 3), dtype=np.float32)
    images[[0, 4], 0] = 1.0  # only items 0 and 4 have a picture
    hyb = HybridRecommender(ALS(factors=2, iterations=5, seed=0), text, 0.5, images).fit(X)
    assert hyb.cold_items.tolist() == [False, False, False, False, True]
    scores = hyb.score(np.arange(4))
    assert np.isfinite(scores).all()
    # the new item looks like group 0: above group 1's items for user 0, below them for user 2
    assert scores[0, 4] > scores[0, [2, 3]].max() and scores[2, 4] < scores[2, [2, 3]].min()
    new = hyb.score_new_items([0, 2], np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert np.isfinite(new).all() and new[0, 0] > new[0, 1] and new[1, 1] > new[1, 0]
    pure_cf = HybridRecommender(ALS(factors=2, iterations=5, seed=0), text, 1.0).fit(X)
    assert (pure_cf.score(np.arange(4))[:, 4] == 0).all()  # neutral, finite
    with pytest.raises(ValueError, match="rows but the matrix has"):
        HybridRecommender(PopularityRecommender(), text[:3]).fit(X)


def test_personalised_rerank():
    run = {"q1": {"a": 3.0, "b": 2.0, "c": 1.0}, "q2": {"c": 5.0}}
    vecs = np.array([[1.0, 0], [0.7, 0.7], [0, 1.0]])
    ids = ["a", "b", "c"]
    profile = np.array([0.0, 1.0])
    same = cf.personalised_rerank(run, profile, vecs, beta=0.0, item_ids=ids)
    assert sorted(same["q1"], key=same["q1"].get, reverse=True) == ["a", "b", "c"]
    flipped = cf.personalised_rerank(run, profile, vecs, beta=1.0, item_ids=ids)
    assert sorted(flipped["q1"], key=flipped["q1"].get, reverse=True) == ["c", "b", "a"]
    mixed = cf.personalised_rerank(run, profile, vecs, beta=0.5, item_ids=ids)
    assert mixed["q1"]["b"] == pytest.approx(0.5 * 0.5 + 0.5 * math.sqrt(0.5))
    assert mixed["q2"]["c"] == pytest.approx(1.0)
    with pytest.raises(KeyError, match="no vector"):
        cf.personalised_rerank({"q": {"zz": 1.0}}, profile, vecs, item_ids=ids)


# --------------------------------------------------------------------------------------------
# evaluation (numbers computed by hand in the comments)
# --------------------------------------------------------------------------------------------
@pytest.fixture()
def toy_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    train = log([("u1", "a", "view"), ("u1", "b", "view"), ("u2", "a", "view"),
                 ("u2", "c", "view"), ("u3", "a", "view")])  # fmt: skip
    test = log([("u1", "c", "view"), ("u1", "d", "purchase"), ("u2", "d", "view"),
                ("u3", "a", "view"), ("u4", "a", "view")])  # fmt: skip
    return train, test


def test_evaluate_recommender_by_hand(toy_split):
    train, test = toy_split
    items = ["a", "b", "c", "d"]  # popularity a=3, b=1, c=1, d=0 (distinct users)
    # k=2 lists (seen items excluded): u1 -> [c, d], u2 -> [b, d]. u3's only test item was
    # seen in train (skipped), u4 is a cold user (skipped).
    res = cf.evaluate_recommender(PopularityRecommender(), train, test, k=2, items=items)
    assert res["hit_rate@2"] == 1.0
    assert res["recall@2"] == 1.0
    assert res["ndcg@2"] == pytest.approx((1.0 + 1 / math.log2(3)) / 2)  # u1 1, u2 1/log2(3)
    assert res["coverage@2"] == pytest.approx(3 / 4)  # {b, c, d}
    assert res["novelty@2"] == pytest.approx(math.log2(3))  # b, c: 1 of 3 users; d: count -> 1
    assert (res["n_users"], res["n_cold_users"], res["n_users_no_new_items"]) == (2, 1, 1)
    # graded: u1's d is a purchase (5), c a view (1): DCG 1 + 5/log2(3), ideal 5 + 1/log2(3)
    graded = cf.evaluate_recommender(
        PopularityRecommender(), train, test, k=2, items=items, grade="weight"
    )
    u1 = (1 + 5 / math.log2(3)) / (5 + 1 / math.log2(3))
    assert graded["ndcg@2"] == pytest.approx((u1 + 1 / math.log2(3)) / 2)
    # k=1: u1 -> [c] (hit, 1 of 2 relevant), u2 -> [b] (miss)
    one = cf.evaluate_recommender(PopularityRecommender(), train, test, k=1, items=items)
    assert (one["hit_rate@1"], one["recall@1"], one["ndcg@1"]) == (0.5, 0.25, 0.5)
    emb = np.array([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0]])
    div = cf.evaluate_recommender(
        PopularityRecommender(), train, test, k=2, items=items, item_embeddings=emb
    )
    assert div["diversity@2"] == pytest.approx(0.5)  # [c, d] distance 0, [b, d] distance 1


def test_evaluate_recommender_guards_against_leakage(toy_split):
    train, test = toy_split
    both = pd.concat([train.assign(split="train"), test.assign(split="test")])
    with pytest.raises(ValueError, match="train contains rows with split"):
        cf.evaluate_recommender(PopularityRecommender(), both, test)
    with pytest.raises(ValueError, match="fit=False"):
        cf.evaluate_recommender(PopularityRecommender(), train, test, fit=False)


def test_minishop_als_beats_popularity():
    datasets = pytest.importorskip("recsys_kit.datasets")
    try:
        inter = datasets.load_interactions()
    except FileNotFoundError:
        pytest.skip("MiniShop is not generated")
    train, test = datasets.train_test_split(inter)
    pop = cf.evaluate_recommender(PopularityRecommender(), train, test, k=10)
    als = cf.evaluate_recommender(
        ALS(factors=32, regularization=0.1, alpha=5.0, iterations=8), train, test, k=10
    )
    assert als["ndcg@10"] > pop["ndcg@10"]
    assert als["coverage@10"] > 5 * pop["coverage@10"]


# --------------------------------------------------------------------------------------------
# Amazon 5-core sequence loader
# --------------------------------------------------------------------------------------------
def test_load_amazon_sequences_fixture():
    df = cf.load_amazon_sequences(cf.amazon_fixture_path())
    lines = cf.amazon_fixture_path().read_text().split("\n")
    n_items = sum(len(line.split()) - 1 for line in lines if line.strip())
    assert len(df) == n_items and df["user_id"].nunique() == 5
    assert set(df["event"]) == {"review"}
    first = df[df["user_id"] == "A1QXWZ0H3C8N"]
    assert first["timestamp"].tolist() == list(range(6))
    assert first["split"].tolist() == ["train"] * 5 + ["test"]
    assert (df.groupby("user_id")["split"].apply(lambda s: (s == "test").sum()) == 1).all()
    assert first["product_id"].iloc[-1] == "B0009RF9DW"
    X, users, items = cf.build_matrix(df)  # train rows only, every item of the file a column
    assert X.shape == (5, df["product_id"].nunique())
    assert set(X.data) == {1.0}, "0/1 implicit feedback by default (no purchase weight 5)"
    weighted = cf.load_amazon_sequences(cf.amazon_fixture_path(), event="purchase")
    assert set(cf.build_matrix(weighted)[0].data) == {5.0}, "event weights when asked for"
    assert "split" not in cf.load_amazon_sequences(cf.amazon_fixture_path(), n_test=None)
    three = cf.load_amazon_sequences(cf.amazon_fixture_path(), n_valid=1)
    assert three.loc[three.user_id == "A1QXWZ0H3C8N", "split"].tolist() == ["train"] * 4 + [
        "validation",
        "test",
    ]
    with pytest.raises(ValueError, match="no weight"):
        cf.load_amazon_sequences(cf.amazon_fixture_path(), event="like")


def test_items_seen_only_in_test_are_candidates(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("A1 B1 B2 B3\nA2 B2 B1 B9\nA3 B3 B1 B2\n")  # B9: A2's last item only
    df = cf.load_amazon_sequences(path)
    X, users, items = cf.build_matrix(df)
    assert "B9" in set(items) and X[:, items.get_loc("B9")].nnz == 0
    train, test = df[df.split == "train"], df[df.split == "test"]
    # popularity B1 3, B2 2, B3 1, B9 0; k=2 lists of unseen items: A1 [B3, B9], A2 [B3, B9],
    # A3 [B2, B9]: every test item is found, B9 included (all-item ranking by default)
    res = cf.evaluate_recommender(PopularityRecommender(), train, test, k=2)
    assert res["hit_rate@2"] == 1.0 and res["n_users"] == 3
    # with train-only candidates A2's B9 cannot be recommended
    only_train = ["B1", "B2", "B3"]
    res = cf.evaluate_recommender(PopularityRecommender(), train, test, k=2, items=only_train)
    assert res["hit_rate@2"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("A1 B1 B2\nA2\n", r"line 2: user 'A2' has no items"),
        ("A1,B1,B2\n", "comma-separated"),
        ("A1 B1 B2\n\nA1 B3\n", "line 3: user 'A1' already appeared on line 1"),
        ("user_id:token item_id_list:token_seq\n", "RecBole"),
        ("\n\n", "no data lines"),
    ],
)
def test_load_amazon_sequences_errors(tmp_path, content, message):
    path = tmp_path / "seq.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        cf.load_amazon_sequences(path)


def test_load_amazon_sequences_missing_file_and_min_items(tmp_path):
    with pytest.raises(FileNotFoundError, match="one user per line"):
        cf.load_amazon_sequences(tmp_path / "nope.txt")
    path = tmp_path / "seq.txt"
    path.write_text("A1 B1 B2 B3\n")
    with pytest.raises(ValueError, match="fewer than min_items=5"):
        cf.load_amazon_sequences(path, min_items=5)


def test_item_knn_accepts_numpy_integers():
    from recsys_kit.cf import ItemKNN

    assert ItemKNN(k_neighbors=np.int64(3)).k_neighbors == 3
    with pytest.raises(ValueError, match="positive int"):
        ItemKNN(k_neighbors=np.int64(0))


# --------------------------------------------------------------------------------------------
# real size: ties per row, bounded blocks, threads, three-way split, regularised BPR biases
# --------------------------------------------------------------------------------------------
def test_topk_rows_ties_and_excluded_entries_per_row():
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((300, 2000)).astype(np.float32)
    scores[7] = np.round(scores[7])  # one row full of ties (at the k-th place too)
    scores[8, :] = 1.0  # a constant row: the lowest columns win
    scores[9, 5:] = -np.inf  # excluded entries: fewer finite ones than k
    scores[10] = rng.integers(0, 3, 2000)  # three values only
    for k in (1, 10, 100):
        s, i = cf.topk_rows(scores, k)
        ref = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(i, ref)
        np.testing.assert_array_equal(s, np.take_along_axis(scores, ref, axis=1))
    s64, i64 = cf.topk_rows(scores.astype(np.float64), 10)
    assert (
        s64.dtype == np.float64
        and (i64 == np.argsort(-scores, axis=1, kind="stable")[:, :10]).all()
    )
    with pytest.raises(ValueError, match="k must be"):
        cf.topk_rows(scores, 0)


def test_recommend_scores_users_in_bounded_blocks(monkeypatch, low_rank):
    X, _, _ = cf.build_matrix(low_rank[0])
    model = ALS(factors=6, iterations=3, seed=0).fit(X)
    users = np.arange(X.shape[0])
    full = model.recommend(users, k=10)
    sizes = []
    real_score = model._score
    monkeypatch.setattr(model, "_score", lambda u: sizes.append(len(u)) or real_score(u))
    monkeypatch.setattr(cf.base, "SCORE_BLOCK_BYTES", 4 * X.shape[1] * 7)  # 7 users per block
    blocked = model.recommend(users, k=10)
    assert max(sizes) == 7 and sum(sizes) == len(users)
    np.testing.assert_array_equal(blocked[1], full[1])
    pop = PopularityRecommender().fit(X)  # ties everywhere: still the stable order
    s, i = pop.recommend(users, k=10)
    ref = np.broadcast_to(pop.item_popularity, X.shape).copy()
    ref[X.nonzero()] = -np.inf
    np.testing.assert_array_equal(i, np.argsort(-ref, axis=1, kind="stable")[:, :10])


def test_item_knn_blocks_equal_one_block(monkeypatch):
    rng = np.random.default_rng(4)
    X = sp.csr_matrix((rng.random((60, 45)) < 0.15) * 1.0)
    whole = ItemKNN(k_neighbors=7, shrinkage=1.0).fit(X).similarity
    monkeypatch.setattr(cf.item_knn, "SIMILARITY_BLOCK_NNZ", 20)
    assert cf.item_knn.item_block_rows(X) < 5
    blocked = ItemKNN(k_neighbors=7, shrinkage=1.0).fit(X).similarity
    assert (abs(blocked - whole) > 1e-7).nnz == 0 and blocked.nnz == whole.nnz


def test_thread_limit_restores_and_models_take_num_threads(low_rank):
    import torch

    from recsys_kit.threads import thread_limit

    before = torch.get_num_threads()
    with thread_limit(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    X, _, _ = cf.build_matrix(low_rank[0])
    seen = []

    class Spy(ALS):
        def _sweeps(self, *args):
            seen.append(torch.get_num_threads())
            super()._sweeps(*args)

    Spy(factors=4, iterations=1, num_threads=1).fit(X)
    assert seen == [1] and torch.get_num_threads() == before
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="num_threads"):
            ALS(num_threads=bad)
    with pytest.raises(ValueError, match="num_threads"):
        BPR(num_threads=0)


@pytest.mark.skipif(not cf.implicit_available(), reason="optional `implicit` not installed")
def test_implicit_als_takes_a_thread_count(low_rank):
    X, _, _ = cf.build_matrix(low_rank[0])
    one = ImplicitALS(factors=4, iterations=2, seed=1, num_threads=1).fit(X)
    two = ImplicitALS(factors=4, iterations=2, seed=1, num_threads=2).fit(X)
    np.testing.assert_allclose(one.user_factors, two.user_factors, atol=1e-4)


def test_cg_solver_reaches_the_exact_loss_in_float32(low_rank):
    X, _, _ = cf.build_matrix(low_rank[0])
    exact = ALS(factors=8, iterations=8, seed=2, solver="exact").fit(X)
    cg = ALS(factors=8, iterations=8, seed=2).fit(X)
    assert cg.user_factors.dtype == np.float32
    assert cg.loss_history[-1] == pytest.approx(exact.loss_history[-1], rel=5e-3)
    ref = cf.mf.als_loss(
        cg.confidence(X), cg.user_factors.astype(float), cg.item_factors.astype(float), 0.01
    )
    assert cg.loss_history[-1] == pytest.approx(ref, rel=1e-4)  # the torch loss is the loss


def test_leave_last_out_three_way_split_and_leakage_guard():
    df = pd.DataFrame(
        {
            "user_id": ["a"] * 4 + ["b"] * 2,
            "product_id": list("wxyzwx"),
            "timestamp": [3, 0, 1, 2, 0, 1],
        }
    )
    out = cf.leave_last_out(df, n_valid=1)
    assert out["split"].tolist() == ["test", "train", "train", "validation", "train", "train"]
    train, valid, test = cf.split_frames(out)
    assert (len(train), len(valid), len(test)) == (4, 1, 1)
    with pytest.raises(ValueError, match="n_valid"):
        cf.leave_last_out(df, n_valid=-1)
    with pytest.raises(ValueError, match="leave_last_out"):
        cf.split_frames(out.assign(split="dev"))
    log_ = out.assign(event="view")
    train, valid, test = cf.split_frames(log_)
    res = cf.evaluate_recommender(PopularityRecommender(), pd.concat([train, valid]), test, k=2)
    assert res["n_users"] == 1  # fit on train + validation, score test: allowed
    with pytest.raises(ValueError, match="leak"):
        cf.evaluate_recommender(PopularityRecommender(), pd.concat([train, valid]), valid, k=2)
    with pytest.raises(ValueError, match="leak"):
        cf.evaluate_recommender(PopularityRecommender(), log_, test, k=2)


def test_bpr_step_is_rendles_update_with_regularised_biases():
    import torch

    from recsys_kit.cf.mf import _BPRBuffers

    rng = np.random.default_rng(0)
    table = torch.tensor(rng.standard_normal((5, 3)), dtype=torch.float32)  # 2 users, 3 items
    bias = torch.tensor([0.5, -0.2, 0.3])
    before, b0 = table.clone().double(), bias.clone().double()
    idx = torch.tensor([[1], [2 + 0], [2 + 2]])  # user 1, positive item 0, negative item 2
    lr, reg = 0.1, 0.05
    loss = _BPRBuffers(1, 3, torch.device("cpu")).step(table, bias, idx, 2, lr, lr * reg)
    x, yi, yj = before[1], before[2], before[4]
    diff = float(x @ (yi - yj) + b0[0] - b0[2])
    g = 1 / (1 + math.exp(diff))  # sigmoid(-diff)
    assert float(loss) == pytest.approx(math.log1p(math.exp(-diff)), rel=1e-5)
    np.testing.assert_allclose(table[1], x + lr * (g * (yi - yj) - reg * x), rtol=1e-5)
    np.testing.assert_allclose(table[2], yi + lr * (g * x - reg * yi), rtol=1e-5)
    np.testing.assert_allclose(table[4], yj + lr * (-g * x - reg * yj), rtol=1e-5)
    expected_bias = [b0[0] + lr * (g - reg * b0[0]), b0[1], b0[2] + lr * (-g - reg * b0[2])]
    np.testing.assert_allclose(bias, expected_bias, rtol=1e-5)  # the biases decay too
    np.testing.assert_array_equal(table[[0, 3]], before[[0, 3]].float())  # untouched rows


@pytest.mark.parametrize("engine", ["torch", "numba"])
def test_bpr_defaults_beat_popularity(low_rank, engine):
    if engine == "numba":
        pytest.importorskip("numba")
    train, test = low_rank
    pop = cf.evaluate_recommender(PopularityRecommender(), train, test, k=10)
    bpr = cf.evaluate_recommender(BPR(device="cpu", engine=engine), train, test, k=10)
    assert bpr["hit_rate@10"] > pop["hit_rate@10"] + 0.2
    assert bpr["coverage@10"] > 2 * pop["coverage@10"]


def test_bpr_engines_are_validated_and_torch_still_runs(low_rank):
    X, _, _ = cf.build_matrix(low_rank[0])
    with pytest.raises(ValueError, match="engine"):
        BPR(engine="cython")
    torch_bpr = BPR(factors=4, epochs=2, seed=3, device="cpu", engine="torch").fit(X)
    assert torch_bpr.engine_used == "torch" and len(torch_bpr.loss_history) == 2
    assert "engine='torch'" in repr(torch_bpr)


def test_bpr_numba_engine_without_numba_says_how_to_install(monkeypatch, low_rank):
    from recsys_kit import jit

    X, _, _ = cf.build_matrix(low_rank[0])
    monkeypatch.setattr(jit, "numba", None)
    with pytest.raises(ImportError, match=r"recsys-kit\[fast\]"):
        BPR(factors=4, epochs=1, device="cpu", engine="numba").fit(X)
    auto = BPR(factors=4, epochs=1, device="cpu").fit(X)  # auto falls back to torch
    assert auto.engine_used == "torch"


def test_bpr_numba_engine_is_deterministic_and_learns(low_rank):
    pytest.importorskip("numba")
    X, _, _ = cf.build_matrix(low_rank[0])
    a = BPR(factors=4, epochs=3, seed=3, device="cpu", engine="numba").fit(X)
    b = BPR(factors=4, epochs=3, seed=3, device="cpu").fit(X)  # auto: numba on the CPU
    assert a.engine_used == b.engine_used == "numba"
    for name in ("user_factors", "item_factors", "item_bias"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == np.float32
    assert a.loss_history == b.loss_history
    assert a.loss_history[-1] < a.loss_history[0] < math.log(2) + 0.05
    c = BPR(factors=4, epochs=3, seed=4, device="cpu", engine="numba").fit(X)
    assert not np.allclose(a.item_factors, c.item_factors)
    train, test = low_rank
    pop = cf.evaluate_recommender(PopularityRecommender(), train, test, k=10)
    res = cf.evaluate_recommender(BPR(factors=8, epochs=30, seed=0, engine="numba"), train, test)
    assert res["hit_rate@10"] > pop["hit_rate@10"] + 0.2
    assert res["ndcg@10"] > pop["ndcg@10"] + 0.1


def test_bpr_numba_negatives_avoid_the_users_items():
    pytest.importorskip("numba")
    from recsys_kit.cf.bpr_sgd import draw_negative

    indptr, indices = np.array([0, 2, 6]), np.array([1, 2, 0, 1, 2, 3])  # user 1 owns all 4
    state = np.array([7], dtype=np.uint64)
    draws = [draw_negative(indptr, indices, 0, 4, state) for _ in range(400)]
    assert set(draws) == {0, 3} and 150 < draws.count(0) < 250  # uniform over the rest
    assert 0 <= draw_negative(indptr, indices, 1, 4, state) < 4  # bounded retries, no hang
    again = np.array([7], dtype=np.uint64)
    assert [draw_negative(indptr, indices, 0, 4, again) for _ in range(400)] == draws


def test_bpr_numba_step_is_rendles_update_with_regularised_biases():
    from recsys_kit.cf.bpr_sgd import bpr_update  # plain Python without numba: same formula

    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((2, 3)).astype(np.float32)
    y0 = rng.standard_normal((3, 3)).astype(np.float32)
    b0 = np.array([0.5, -0.2, 0.3], dtype=np.float32)
    x, y, bias = x0.copy(), y0.copy(), b0.copy()
    lr, reg = 0.1, 0.05
    loss = bpr_update(x, y, bias, 1, 0, 2, np.float32(lr), np.float32(reg))
    xu, yi, yj = x0[1].astype(float), y0[0].astype(float), y0[2].astype(float)
    diff = float(xu @ (yi - yj) + b0[0] - b0[2])
    g = 1 / (1 + math.exp(diff))  # sigmoid(-diff)
    assert loss == pytest.approx(math.log1p(math.exp(-diff)), rel=1e-5)
    np.testing.assert_allclose(x[1], xu + lr * (g * (yi - yj) - reg * xu), rtol=1e-5)
    np.testing.assert_allclose(y[0], yi + lr * (g * xu - reg * yi), rtol=1e-5)
    np.testing.assert_allclose(y[2], yj + lr * (-g * xu - reg * yj), rtol=1e-5)
    expected = [b0[0] + lr * (g - reg * b0[0]), b0[1], b0[2] + lr * (-g - reg * b0[2])]
    np.testing.assert_allclose(bias, expected, rtol=1e-5)  # the biases decay too
    np.testing.assert_array_equal(x[0], x0[0])  # untouched rows
    np.testing.assert_array_equal(y[1], y0[1])


def test_sampled_metrics_rank_among_few_negatives_and_read_higher(low_rank):
    train, test = low_rank
    als = ALS(factors=8, iterations=8, seed=0)
    full = cf.evaluate_recommender(als, train, test, k=10)
    sampled = cf.evaluate_recommender(als, train, test, k=10, fit=False, n_negatives=20)
    assert sampled["hit_rate@10"] > full["hit_rate@10"]  # 10 of ~22 candidates: easy
    X, users, items = cf.build_matrix(
        train, items=sorted(set(train.product_id) | set(test.product_id))
    )
    rows = np.array([0, 1])
    relevant = [
        np.array([items.get_loc(test[test.user_id == users[r]].product_id.iloc[0])]) for r in rows
    ]
    s, i = cf.sampled_recommend(als, rows, relevant, n_negatives=5, k=6, seed=3)
    for r, row in enumerate(rows):
        assert relevant[r][0] in i[r]  # 1 relevant + 5 negatives: all six are listed
        assert not set(i[r]) & set(X[row].indices)  # never an item seen in train
        np.testing.assert_allclose(s[r], als.score([row])[0, i[r]], rtol=1e-6)
        assert (np.diff(s[r]) <= 0).all()
    with pytest.raises(ValueError, match="n_negatives"):
        cf.sampled_recommend(als, rows, relevant, n_negatives=0, k=6)


@pytest.mark.gpu
def test_als_and_bpr_on_cuda_match_the_cpu(low_rank):
    X, _, _ = cf.build_matrix(low_rank[0])
    cpu = ALS(factors=8, iterations=6, seed=2, device="cpu").fit(X)
    gpu = ALS(factors=8, iterations=6, seed=2, device="cuda").fit(X)
    assert gpu.loss_history[-1] == pytest.approx(cpu.loss_history[-1], rel=1e-3)
    bpr = BPR(factors=8, epochs=30, device="cuda").fit(X)
    assert bpr.loss_history[-1] < bpr.loss_history[0]
    train, test = low_rank
    pop = cf.evaluate_recommender(PopularityRecommender(), train, test, k=10)
    res = cf.evaluate_recommender(BPR(device="cuda"), train, test, k=10)
    assert res["hit_rate@10"] > pop["hit_rate@10"] + 0.2
