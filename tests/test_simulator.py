"""Tests for recsys_kit.simulator (the online shopper model) and recsys_kit.ips (IPS estimators)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_kit import abtest
from recsys_kit import constants as C
from recsys_kit import datasets as D
from recsys_kit.hybrid import ranked_docs
from recsys_kit.ips import (
    ExposureCorrectedPopularity,
    exposure_corrected_popularity,
    ips_clicks,
    naive_clicks,
)
from recsys_kit.metrics import evaluate
from recsys_kit.simulator import ShopperParams, ShopperSimulator


@pytest.fixture(scope="module")
def sim() -> ShopperSimulator:
    return ShopperSimulator()


@pytest.fixture(scope="module")
def qrels() -> pd.DataFrame:
    return D.load_qrels()


@pytest.fixture(scope="module")
def truth(qrels) -> dict:
    return D.qrels_dict(qrels)


@pytest.fixture(scope="module")
def qids() -> list[str]:
    queries = D.load_queries()
    return queries.groupby(C.COL_QUERY_KIND).head(8)[C.COL_QUERY_ID].tolist()


def _as_run(lists: dict) -> dict:
    return {q: {d: -float(r) for r, d in enumerate(docs)} for q, docs in lists.items()}


# --- the latent files ----------------------------------------------------------------------------
def test_latent_files_load_and_cover_every_user_and_query():
    shoppers, intents = D.load_shoppers(), D.load_intents()
    assert list(shoppers[C.COL_USER_ID]) == list(D.load_users()[C.COL_USER_ID])
    assert list(intents[C.COL_QUERY_ID]) == list(D.load_queries()[C.COL_QUERY_ID])
    affinity = shoppers[[f"affinity_{d}" for d in C.DEPARTMENTS]].sum(axis=1)
    assert np.allclose(affinity, 1.0, atol=1e-3)
    assert (shoppers["colors"].str.count("[|]") == 2).all()


def test_intents_are_the_truth_behind_the_qrels(sim, qrels):
    """The labelling rules read the intents: need 0 <=> Exact, and so on for every judgement."""
    p = sim.params
    need = np.concatenate(
        [sim.need(q, g[C.COL_PRODUCT_ID]) for q, g in qrels.groupby(C.COL_QUERY_ID, sort=True)]
    )
    labels = np.concatenate(
        [g[C.COL_LABEL].to_numpy() for _, g in qrels.groupby(C.COL_QUERY_ID, sort=True)]
    )
    expected = np.where(
        need == 0,
        "E",
        np.where(need == p.complement, "C", np.where(need == p.unrelated, "I", "S")),
    )
    assert (expected == labels).all()


def test_schema_rejects_a_malformed_shopper_file(tmp_path):
    shoppers = pd.read_csv(D.paths.minishop_dir() / "shoppers.csv", dtype=str)
    shoppers.loc[3, "colors"] = "Red|Blue"
    shoppers.to_csv(tmp_path / "shoppers.csv", index=False)
    with pytest.raises(D.SchemaError, match=r"shoppers\.csv.*colors.*Fix:"):
        D.load_shoppers(tmp_path / "shoppers.csv")


# --- the model ---------------------------------------------------------------------------------
def test_position_bias_decreases_with_rank(sim):
    exam = sim.examination(np.arange(1, 11))
    assert exam[0] == pytest.approx(1.0) and (np.diff(exam) < 0).all()
    with pytest.raises(ValueError, match="1-based"):
        sim.examination([0, 1])


def test_taste_prefers_cheaper_liked_and_better_rated_products(sim):
    user = np.array([0])
    product = np.array([0])
    base = sim.taste(user, product)
    cheaper = ShopperSimulator.__new__(ShopperSimulator)
    cheaper.__dict__.update(sim.__dict__)
    cheaper._log_rel_price = sim._log_rel_price - 0.5  # every product 40% cheaper
    cheaper._rating = sim._rating + 0.5
    assert (cheaper.taste(user, product) > base).all()


def test_expected_outcomes_match_sampled_sessions(sim, truth, qids):
    run = {q: truth[q] for q in qids}
    expected = sim.expected_outcomes(run, qids)
    sessions = sim.simulate_ab_test(run, run, qids, n_sessions=40_000, seed=3)
    for col, metric in (("clicked", "ctr"), ("purchased", "conversion")):
        rate = sessions[col].mean()
        se = np.sqrt(rate * (1 - rate) / len(sessions))
        assert abs(rate - expected[metric].mean()) < 4 * se, (metric, rate)
    assert {"session", "variant", C.COL_QUERY_ID, C.COL_USER_ID, "purchased"} <= set(sessions)
    # abtest's statistics read the simulator's sessions unchanged.
    assert (
        abtest.lift_ci(sessions, "conversion", n_boot=200)["ci_low"]
        < 0
        < abtest.lift_ci(sessions, "conversion", n_boot=200)["ci_high"]
    )


def test_sessions_are_reproducible_and_users_match_the_query_language(sim, qids):
    run = sim.ideal_run(qids[:5], depth=10)
    a = sim.simulate_ab_test(run, run, qids[:5], n_sessions=500, seed=7)
    b = sim.simulate_ab_test(run, run, qids[:5], n_sessions=500, seed=7)
    pd.testing.assert_frame_equal(a, b)
    lang_q = D.load_queries().set_index(C.COL_QUERY_ID)[C.COL_LANGUAGE]
    lang_u = D.load_users().set_index(C.COL_USER_ID)[C.COL_LANGUAGE]
    same = a[C.COL_QUERY_ID].map(lang_q).to_numpy() == a[C.COL_USER_ID].map(lang_u).to_numpy()
    assert same.all()


def test_offline_and_online_usually_agree_but_can_disagree(sim, truth, qids):
    """The calibration the datasheet documents, on a small family of rankers."""
    rng = np.random.default_rng(0)
    rating = dict(zip(D.load_catalog()[C.COL_PRODUCT_ID], D.load_catalog()[C.COL_RATING]))
    oracle = {q: {d: float(g) for d, g in truth[q].items()} for q in qids}
    runs = {
        "random": {q: {d: float(rng.random()) for d in truth[q]} for q in qids},
        "worst first": {q: {d: -float(g) for d, g in truth[q].items()} for q in qids},
        "oracle": oracle,
        "oracle + rating": {q: {d: g + rating[d] / 10 for d, g in oracle[q].items()} for q in qids},
        "simulator ideal": sim.ideal_run(qids),
    }
    sub = {q: truth[q] for q in qids}
    table = pd.DataFrame(
        {
            name: {
                "ndcg": evaluate(sub, run, "ndcg@10")["ndcg@10"],
                "conversion": sim.expected_outcomes(run, qids)["conversion"].mean(),
            }
            for name, run in runs.items()
        }
    ).T
    assert table["ndcg"].corr(table["conversion"], method="spearman") > 0.5  # usually agree
    # ... but the offline optimum (nDCG 1) is not the online optimum, and ties offline differ.
    assert table.loc["oracle", "ndcg"] > table.loc["simulator ideal", "ndcg"]
    assert table.loc["oracle", "conversion"] < table.loc["simulator ideal", "conversion"]
    assert table.loc["oracle + rating", "ndcg"] == pytest.approx(table.loc["oracle", "ndcg"])
    assert table.loc["oracle + rating", "conversion"] > table.loc["oracle", "conversion"]


def test_a_smaller_catalog_and_clear_errors(sim, truth, qids):
    catalog = D.load_catalog()
    mini = catalog.sample(300, random_state=C.SEED)
    small = ShopperSimulator(catalog=mini)
    q = qids[0]
    docs = [d for d in truth[q] if d in set(mini[C.COL_PRODUCT_ID])][:5]
    assert len(small.expected_outcomes({q: {d: 1.0 for d in docs}}, [q])) == 1
    with pytest.raises(KeyError, match="not in the simulator's catalog"):
        small.need(q, ["P99999"])
    with pytest.raises(KeyError, match="unknown query"):
        sim.users_for("Q9999")
    with pytest.raises(ValueError, match="is empty"):
        sim.simulate_ab_test({}, {}, [], n_sessions=10)
    with pytest.raises(ValueError, match="k must be"):
        sim.expected_outcomes({}, qids[:1], k=0)
    users = D.load_users()
    with pytest.raises(ValueError, match="no latent row"):
        ShopperSimulator(users=users, shoppers=D.load_shoppers().iloc[1:])


def test_empty_result_pages_neither_click_nor_convert(sim, qids):
    out = sim.expected_outcomes({}, qids[:3])
    assert (out[["ctr", "conversion", "clicks"]] == 0).all().all()


def test_home_page_lists_follow_department_affinity(sim):
    shoppers = D.load_shoppers().set_index(C.COL_USER_ID)
    catalog = D.load_catalog()
    uid = "U0001"
    fav = shoppers.loc[uid, [f"affinity_{d}" for d in C.DEPARTMENTS]].astype(float).idxmax()[9:]
    least = shoppers.loc[uid, [f"affinity_{d}" for d in C.DEPARTMENTS]].astype(float).idxmin()[9:]
    pick = {d: catalog[catalog[C.COL_DEPARTMENT] == d][C.COL_PRODUCT_ID].head(10).tolist()
            for d in (fav, least)}  # fmt: skip
    out = sim.expected_recommendation_outcomes({uid: pick[fav], "U0002": []})
    worse = sim.expected_recommendation_outcomes({uid: pick[least]})
    assert out.loc[uid, "clicks"] > worse.loc[uid, "clicks"]
    assert out.loc["U0002", "conversion"] == 0.0


def test_params_change_the_model(truth, qids):
    run = {q: truth[q] for q in qids[:5]}
    base = ShopperSimulator().expected_outcomes(run, qids[:5])["conversion"].mean()
    stingy = ShopperSimulator(params=ShopperParams(buy_offset=3.0))
    assert stingy.expected_outcomes(run, qids[:5])["conversion"].mean() < base


# --- IPS -----------------------------------------------------------------------------------------
def test_ips_recovers_the_truth_and_naive_counting_does_not(sim, truth, qids):
    logged = {q: ranked_docs(truth[q])[:10] for q in qids}
    log = sim.log_sessions(_as_run(logged), qids, n_sessions=20_000, seed=5)
    prop = sim.examination(np.arange(1, 11))
    for new in ({q: d[::-1] for q, d in logged.items()}, logged):
        true_clicks = sim.expected_outcomes(_as_run(new), qids)["clicks"].mean()
        assert ips_clicks(log, new, prop) == pytest.approx(true_clicks, rel=0.06)
    reversed_ = {q: d[::-1] for q, d in logged.items()}
    truth_rev = sim.expected_outcomes(_as_run(reversed_), qids)["clicks"].mean()
    assert naive_clicks(log, reversed_, prop) < 0.7 * truth_rev  # biased toward the logger


def test_ips_edge_cases():
    log = pd.DataFrame({"session": [0, 0, 1, 2], C.COL_QUERY_ID: ["q", "q", "q", "r"],
                        C.COL_PRODUCT_ID: ["a", "b", "a", "z"], C.COL_POSITION: [1, 2, 1, 1],
                        "clicked": [1, 1, 0, 1]})  # fmt: skip
    prop = np.array([1.0, 0.5])
    # r is missing from the new ranking, a falls out of the top 1: only b counts, at rank 1.
    assert ips_clicks(log, {"q": ["b", "a"]}, prop, k=1) == pytest.approx((1.0 / 0.5) / 3)
    assert naive_clicks(log, {"q": ["b", "a"]}, prop, k=1) == pytest.approx(1.0 / 3)
    assert ips_clicks(log, {"q": ["b"]}, prop, clip=0.8) == pytest.approx((1.0 / 0.8) / 3)
    with pytest.raises(ValueError, match="positions must be in 1..2"):
        ips_clicks(log.assign(position=[1, 3, 1, 1]), {}, prop)
    with pytest.raises(ValueError, match="empty"):
        ips_clicks(log.iloc[:0], {}, prop)
    with pytest.raises(ValueError, match="lacks columns"):
        ips_clicks(log.drop(columns="session"), {}, prop)
    with pytest.raises(ValueError, match="k must be"):
        ips_clicks(log, {}, prop, k=3)


def test_exposure_corrected_popularity_divides_by_examinations():
    log = pd.DataFrame({
        C.COL_PRODUCT_ID: ["a", "a", "b", "b", "b", "c"],
        C.COL_EVENT: ["view", "click", "view", "view", "click", "view"],
        C.COL_POSITION: [1, 1, 4, 4, 4, 0],
    })  # fmt: skip
    table = exposure_corrected_popularity(log, ["a", "b", "c", "d"], position_bias=1.0,
                                          prior_strength=0.0)  # fmt: skip
    assert table.loc["a", "ips_ctr"] == pytest.approx(1.0)  # 1 click / 1 examination
    assert table.loc["b", "ips_ctr"] == pytest.approx(2.0)  # 1 click / (2 x 1/4)
    assert table.loc["b", "raw_ctr"] == pytest.approx(0.5)
    assert table.loc["c", "views"] == 0  # a direct visit (position 0) has no propensity
    shrunk = exposure_corrected_popularity(log, ["a", "b", "d"], position_bias=1.0)
    mean = shrunk["clicks"].sum() / shrunk["examinations"].sum()
    assert 1.0 < shrunk.loc["a", "ips_ctr"] < mean  # pulled toward the mean rate
    assert shrunk.loc["d", "ips_ctr"] == pytest.approx(mean)  # never shown: the mean
    with pytest.raises(ValueError, match="prior_strength"):
        exposure_corrected_popularity(log, ["a"], prior_strength=-1)


def test_exposure_corrected_popularity_recommender():
    import scipy.sparse as sp

    log = pd.DataFrame({C.COL_PRODUCT_ID: ["a", "a", "b", "b"],
                        C.COL_EVENT: ["view", "click", "view", "view"],
                        C.COL_POSITION: [5, 5, 1, 1]})  # fmt: skip
    X = sp.csr_matrix(np.array([[1.0, 2.0, 0.0]]))
    model = ExposureCorrectedPopularity(log, ["b", "a", "c"], prior_strength=0.0).fit(X)
    assert model.recommend([0], k=1, exclude_seen=False)[1].tolist() == [[1]]  # "a"
    with pytest.raises(ValueError, match="item_index"):
        ExposureCorrectedPopularity(log, ["a"]).fit(X)


# --- embedding maps (recsys_kit.embedding_map) ---------------------------------------------------
def test_pca_2d_separates_clusters_and_is_sign_stable():
    from recsys_kit.embedding_map import pca_2d, plot_embedding_map

    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 6)) + 5.0
    b = rng.normal(size=(40, 6)) - 5.0
    pts = pca_2d(np.vstack([a, b]))
    assert pts.shape == (80, 2)
    assert (np.sign(pts[:40, 0]) != np.sign(pts[40:, 0])).all()  # the first axis splits them
    assert np.allclose(pca_2d(np.vstack([a, b])), pts)
    assert np.allclose(pca_2d(-np.vstack([a, b])), -pts)  # axes fixed by their largest loading
    with pytest.raises(ValueError, match="n >= 2"):
        pca_2d(np.zeros((1, 3)))
    import matplotlib

    matplotlib.use("Agg")
    ax = plot_embedding_map(pts, ["a"] * 40 + ["b"] * 40, title="t")
    assert len(ax.get_legend().get_texts()) == 2
    with pytest.raises(ValueError, match="one label each"):
        plot_embedding_map(pts, ["a"])


def test_pca_2d_can_remove_each_groups_mean():
    from recsys_kit.embedding_map import pca_2d

    rng = np.random.default_rng(1)
    topic = np.repeat(np.eye(4)[:2] * 3, 50, axis=0)  # two topics
    shift = np.zeros(4)
    shift[3] = 20.0  # a large offset between two "languages"
    x = np.vstack([topic, topic + shift]) + rng.normal(scale=0.1, size=(200, 4))
    lang = ["en"] * 100 + ["zh"] * 100
    raw = pca_2d(x)
    assert abs(np.corrcoef(raw[:, 0], np.r_[np.zeros(100), np.ones(100)])[0, 1]) > 0.99
    centred = pca_2d(x, center_by=lang)
    topic_of = np.r_[np.zeros(50), np.ones(50), np.zeros(50), np.ones(50)]
    assert abs(np.corrcoef(centred[:, 0], topic_of)[0, 1]) > 0.99  # the topic, not the language
    with pytest.raises(ValueError, match="one group per row"):
        pca_2d(x, center_by=lang[:3])
