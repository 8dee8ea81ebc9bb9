"""Tests of recsys_kit.scoring: pair features, hand-weighted and learned rankers, multi-task."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys_kit import constants as C
from recsys_kit import paths
from recsys_kit import scoring as S
from recsys_kit.metrics import evaluate


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------
@pytest.fixture()
def catalog() -> pd.DataFrame:
    rows = [
        # id, category, color, material, gender, style, season, brand, price, rating, reviews
        ("P1", "ankle boot", "black", "leather", "women", "classic", "winter", "Vantra", 90.0, 4.6, 120),  # noqa: E501
        ("P2", "ankle boot", "brown", "suede", "men", "casual", "autumn", "Vantra", 140.0, 3.0, 5),
        ("P3", "ankle boot", "black", "faux leather", "unisex", "casual", "all-season", "Ridgeline", 45.0, 4.0, 0),  # noqa: E501
        ("P4", "t-shirt", "black", "cotton", "women", "casual", "summer", "Kestrel", 20.0, 5.0, 999),  # noqa: E501
        ("P5", "shirt", "white", "linen", "men", "formal", "spring", "Kestrel", 35.0, 1.0, 10),
        ("P6", "frying pan", "black", "cast iron", "unisex", "classic", "all-season", "Hearthly", 30.0, 4.2, 50),  # noqa: E501
    ]  # fmt: skip
    cols = [C.COL_PRODUCT_ID, C.COL_CATEGORY, C.COL_COLOR, C.COL_MATERIAL, C.COL_GENDER,
            C.COL_STYLE, C.COL_SEASON, C.COL_BRAND, C.COL_PRICE, C.COL_RATING,
            C.COL_REVIEW_COUNT]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# price
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("black sneakers under 50", (None, 50.0)),
        ("boots below $80.5", (None, 80.5)),
        ("lamp less than 40 dollars", (None, 40.0)),
        ("coat $120 or less", (None, 120.0)),
        ("headphones over 100", (100.0, None)),
        ("bag between 20 and 60", (20.0, 60.0)),
        ("运动鞋 50美元以下", (None, 50.0)),
        ("口红50元以内", (None, 50.0)),
        ("不超过30元的面膜", (None, 30.0)),
        ("耳机 100元以上", (100.0, None)),
        ("不低于20元的杯子", (20.0, None)),
        ("包 20到60元", (20.0, 60.0)),
        ("black ankle boots", (None, None)),
        ("12-hour speaker usb-c", (None, None)),
        ("夏季纯棉T恤", (None, None)),
    ],
)
def test_parse_price_both_languages(query: str, expected: tuple) -> None:
    assert tuple(S.parse_price(query)) == expected


def test_price_fit_inside_outside_and_neutral() -> None:
    nan = np.nan
    fit = S.price_fit(
        np.array([40.0, 50.0, 60.0, 999.0, 10.0]),
        np.array([nan, nan, nan, nan, 20.0]),
        np.array([50.0, 50.0, 50.0, nan, nan]),
        tolerance=0.2,
    )
    # 60 is 20 % over the cap of 50 -> e^-1; no bound -> 1; 10 is 50 % under a floor of 20.
    np.testing.assert_allclose(fit, [1.0, 1.0, math.exp(-1), 1.0, math.exp(-2.5)])
    with pytest.raises(ValueError, match="tolerance"):
        S.price_fit(np.ones(1), np.ones(1), np.ones(1), tolerance=0)


# --------------------------------------------------------------------------------------------
# attribute match
# --------------------------------------------------------------------------------------------
def test_lexicon_is_bilingual_and_skips_neutral_values(catalog: pd.DataFrame) -> None:
    lex = S.build_lexicon(catalog)
    terms = set(lex["term"])
    assert {"black", "黑色", "ankle boot", "短靴", "faux leather", "人造革", "vantra"} <= terms
    assert not {"unisex", "all-season", "none"} & terms
    with pytest.raises(KeyError, match="columns="):
        S.build_lexicon(catalog.drop(columns=[C.COL_STYLE]))


def test_query_attributes_longest_match_and_word_boundaries(catalog: pd.DataFrame) -> None:
    lex = S.build_lexicon(catalog)
    got = S.query_attributes("Faux leather ankle boots for women", lex)
    assert got == [
        {(C.COL_MATERIAL, "faux leather")},
        {(C.COL_CATEGORY, "ankle boot")},
        {(C.COL_GENDER, "women")},
    ]
    # "t-shirt" is not "shirt", "non-stick" is not a material, "women" is not "men"
    assert S.query_attributes("t-shirt", lex) == [{(C.COL_CATEGORY, "t-shirt")}]
    assert S.query_attributes("non-stick frying pan for women", lex) == [
        {(C.COL_CATEGORY, "frying pan")},
        {(C.COL_GENDER, "women")},
    ]
    assert S.query_attributes("黑色皮革短靴女士", lex) == [
        {(C.COL_COLOR, "black")},
        {(C.COL_MATERIAL, "leather")},
        {(C.COL_CATEGORY, "ankle boot")},
        {(C.COL_GENDER, "women")},
    ]


def test_attribute_match_fraction(catalog: pd.DataFrame) -> None:
    s = S.attribute_match(
        ["black leather ankle boots for women", "黑色皮革短靴 女士", "something nice", "cast iron"],
        catalog,
    )
    assert s.shape == (4, len(catalog)) and s.dtype == np.float32
    # P1 has all four; P2 only the category; P3 black + boot + unisex (satisfies women) = 3/4
    np.testing.assert_allclose(s[0, :3], [1.0, 0.25, 0.75])
    np.testing.assert_allclose(s[1], s[0])  # same words in Chinese, same match
    assert (s[2] == 0).all()  # no attribute word: 0 for every product (no ranking effect)
    np.testing.assert_allclose(s[3], [0, 0, 0, 0, 0, 1])


# --------------------------------------------------------------------------------------------
# pair features
# --------------------------------------------------------------------------------------------
def test_pair_features_hand_made(catalog: pd.DataFrame) -> None:
    queries = pd.DataFrame(
        {C.COL_QUERY_ID: ["q1", "q2"], C.COL_QUERY: ["black ankle boots under 100", "短靴"]}
    )
    rng = np.random.default_rng(0)
    qv, pv = _unit(rng.normal(size=(2, 8))), _unit(rng.normal(size=(6, 8)))
    pairs = pd.DataFrame(
        {C.COL_QUERY_ID: ["q1", "q1", "q1", "q2"], C.COL_PRODUCT_ID: ["P1", "P2", "P3", "P2"]}
    )
    f = S.pair_features(queries, catalog, pairs, qv, pv)
    assert list(f.columns) == [C.COL_QUERY_ID, C.COL_PRODUCT_ID, *S.FEATURES]
    cos = np.array([qv[0] @ pv[0], qv[0] @ pv[1], qv[0] @ pv[2], qv[1] @ pv[1]])
    np.testing.assert_allclose(f["distance"], 2 - 2 * cos, atol=1e-5)  # unit vectors
    np.testing.assert_allclose(f["attr_match"], [1.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(f["rating"], [(4.6 - 1) / 4, 0.5, 0.75, 0.5])
    np.testing.assert_allclose(f["price_fit"], [1.0, math.exp(-0.4 / 0.2), 1.0, 1.0])
    np.testing.assert_allclose(f["popularity"], np.log1p([120, 5, 0, 5]) / np.log1p(999))
    assert not f[list(S.FEATURES)].isna().any().any()


def test_pair_features_errors_name_the_problem(catalog: pd.DataFrame) -> None:
    queries = pd.DataFrame({C.COL_QUERY_ID: ["q1"], C.COL_QUERY: ["boots"]})
    pv = _unit(np.ones((6, 4)))
    pairs = pd.DataFrame({C.COL_QUERY_ID: ["q1"], C.COL_PRODUCT_ID: ["P99"]})
    with pytest.raises(KeyError, match="P99"):
        S.pair_features(queries, catalog, pairs, _unit(np.ones((1, 4))), pv)
    with pytest.raises(ValueError, match="same model"):
        S.pair_features(queries, catalog, pairs, _unit(np.ones((1, 3))), pv)
    with pytest.raises(ValueError, match="aligned"):
        S.pair_features(queries, catalog, pairs, _unit(np.ones((2, 4))), pv)


def test_hand_weighted_score_fixes_the_material_sign() -> None:
    f = pd.DataFrame(
        {"distance": [0.5, 0.5, 1.5], "attr_match": [1.0, 0.0, 1.0], "rating": [1.0, 0.0, 1.0]}
    )
    score = S.hand_weighted_score(f, {"distance": -1.0, "attr_match": 0.5, "rating": 0.2})
    np.testing.assert_allclose(score, [0.2, -0.5, -0.8])
    assert int(np.argmax(score)) == 0  # close, matching, well rated wins
    # the material's "loss", minimised, prefers the non-matching, badly rated product
    assert int(np.argmin(S.material_loss_terms(f, w_s=0.5, w_r=0.2))) == 1
    with pytest.raises(KeyError, match="price_fit"):
        S.hand_weighted_score(f, {"price_fit": 1.0})


# --------------------------------------------------------------------------------------------
# learned linear ranker
# --------------------------------------------------------------------------------------------
def _synthetic_ranking(n_groups: int = 60, per_group: int = 15, seed: int = 0):
    rng = np.random.default_rng(seed)
    true_w = np.array([1.5, -1.0, 0.5, 0.0])
    x = rng.normal(size=(n_groups * per_group, 4)) * [1.0, 2.0, 0.5, 1.0] + [0, 3, 0, 0]
    utility = x @ true_w + rng.normal(scale=0.3, size=len(x))
    groups = np.repeat(np.arange(n_groups), per_group)
    # grades 0..3 by utility quartile within each query
    grades = pd.Series(utility).groupby(groups).transform(
        lambda u: pd.qcut(u, 4, labels=False)
    ).to_numpy()  # fmt: skip
    return x, grades, groups, true_w


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_pairwise_learner_recovers_known_weights() -> None:
    x, grades, groups, true_w = _synthetic_ranking()
    model = S.fit_linear_ranker(x, grades, groups, loss="pairwise", epochs=300, lr=0.05)
    w = np.array([model.weights[f"x{i}"] for i in range(4)])
    assert _cosine(w, true_w) > 0.98
    assert abs(w[3]) < 0.1 * abs(w[0])  # the useless feature gets (almost) no weight
    assert model.history[-1] < model.history[0]
    again = S.fit_linear_ranker(x, grades, groups, loss="pairwise", epochs=300, lr=0.05)
    assert again.weights == model.weights  # deterministic


def test_pointwise_learner_and_scores() -> None:
    x, grades, groups, true_w = _synthetic_ranking(seed=1)
    frame = pd.DataFrame(x, columns=["distance", "attr_match", "rating", "price_fit"])
    model = S.fit_linear_ranker(frame, grades, groups, loss="pointwise", epochs=300)
    assert model.feature_names == ["distance", "attr_match", "rating", "price_fit"]
    w = np.array(list(model.weights.values()))
    assert _cosine(w, true_w) > 0.95
    # score() works in raw units: equal to the explicit linear form
    np.testing.assert_allclose(model.score(frame), x @ w + model.bias)
    # and ranks far better than chance within queries
    run = S.scores_to_run(
        pd.DataFrame({C.COL_QUERY_ID: groups.astype(str), C.COL_PRODUCT_ID: np.arange(len(x))}),
        model.score(frame),
    )
    qrels = {}
    for q, p, g in zip(groups.astype(str), np.arange(len(x)), grades, strict=True):
        qrels.setdefault(q, {})[str(p)] = int(g)
    assert evaluate(qrels, run, "ndcg@5")["ndcg@5"] > 0.9


def test_linear_ranker_bad_input() -> None:
    x = np.ones((4, 2))
    with pytest.raises(ValueError, match="at least two grades"):
        S.fit_linear_ranker(x, [1, 1, 1, 1], [0, 0, 1, 1], loss="pairwise")
    with pytest.raises(ValueError, match="loss must be"):
        S.fit_linear_ranker(x, [1, 0, 1, 0], [0, 0, 1, 1], loss="listwise")
    with pytest.raises(ValueError, match="NaN"):
        S.fit_linear_ranker(np.array([[np.nan, 1.0]] * 2), [1, 0], [0, 0])
    with pytest.raises(ValueError, match="group ids"):
        S.fit_linear_ranker(x, [1, 0, 1, 0], [0, 0, 1], loss="pointwise")


def test_ranking_pairs_within_groups_only() -> None:
    better, worse = S.ranking_pairs(np.array([2, 0, 1, 3, 3]), ["a", "a", "a", "b", "b"])
    assert sorted(zip(better.tolist(), worse.tolist())) == [(0, 1), (0, 2), (2, 1)]


# --------------------------------------------------------------------------------------------
# multi-task
# --------------------------------------------------------------------------------------------
def _synthetic_multitask(seed: int = 0):
    rng = np.random.default_rng(seed)
    n_q, per_q = 80, 12
    x = rng.normal(size=(n_q * per_q, 3))
    qid = np.repeat([f"q{i}" for i in range(n_q)], per_q)
    pid = np.array([f"p{i}" for i in range(len(x))])
    # relevance depends on x0 only, purchases on x1 only (conflicting objectives)
    rel = x[:, 0] + 0.2 * rng.normal(size=len(x))
    grades = np.digitize(rel, [-0.5, 0.3, 1.0])
    buy_rate = 1 / (1 + np.exp(-(2.0 * x[:, 1] - 2.0)))
    bought = rng.random(len(x)) < buy_rate
    table = pd.DataFrame(x, columns=["f0", "f1", "f2"])
    table[C.COL_QUERY_ID], table[C.COL_PRODUCT_ID] = qid, pid
    table[C.COL_GRADE], table["buy_rate"] = grades, buy_rate
    buy_qrels: dict[str, dict[str, int]] = {}
    for q, p, b in zip(qid, pid, bought, strict=True):
        if b:
            buy_qrels.setdefault(q, {})[p] = 1
    return table, buy_qrels


def test_multitask_alpha_extremes_trade_relevance_for_purchases() -> None:
    table, buy_qrels = _synthetic_multitask()
    train, test = S.train_test_queries(sorted(set(table[C.COL_QUERY_ID])), frac=0.3, seed=0)
    curve = S.tradeoff_curve(
        table,
        alphas=(0.0, 0.5, 1.0),
        train_queries=train,
        test_queries=test,
        buy_qrels=buy_qrels,
        feature_names=("f0", "f1", "f2"),
        epochs=150,
        lr=0.03,
    )
    assert list(curve.columns) == ["alpha", "ndcg@10", "purchase_ndcg@10"]
    rel0, rel1 = curve["ndcg@10"].iloc[0], curve["ndcg@10"].iloc[-1]
    buy0, buy1 = curve["purchase_ndcg@10"].iloc[0], curve["purchase_ndcg@10"].iloc[-1]
    assert rel1 > rel0 + 0.15  # alpha = 1: relevance only
    assert buy0 > buy1 + 0.1  # alpha = 0: purchases only
    mid = curve.iloc[1]
    assert rel0 < mid["ndcg@10"] < rel1 + 1e-9 and buy1 < mid["purchase_ndcg@10"] < buy0 + 1e-9


def test_multitask_model_api_and_determinism() -> None:
    table, _ = _synthetic_multitask(seed=1)
    x = table[["f0", "f1", "f2"]].to_numpy()
    fit = lambda: S.MultiTaskRanker(3, hidden=8, seed=3).fit(  # noqa: E731
        x, table[C.COL_GRADE], table["buy_rate"], alpha=1.0, epochs=100, lr=0.03
    )
    a, b = fit(), fit()
    np.testing.assert_array_equal(
        a.score(x, table[C.COL_QUERY_ID]), b.score(x, table[C.COL_QUERY_ID])
    )
    probs = a.predict(x)
    assert set(probs) == {"relevance", "purchase"}
    assert np.corrcoef(probs["relevance"], x[:, 0])[0, 1] > 0.9
    assert a.history[-1]["rel"] < a.history[0]["rel"]
    with pytest.raises(ValueError, match="alpha"):
        S.MultiTaskRanker(3).fit(x, table[C.COL_GRADE], table["buy_rate"], alpha=1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        S.MultiTaskRanker(3).fit(x, table[C.COL_GRADE], table["buy_rate"] * 5)


def test_purchase_rate_and_qrels() -> None:
    log = pd.DataFrame(
        {
            C.COL_USER_ID: ["u1", "u1", "u2", "u3", "u3", "u4"],
            C.COL_PRODUCT_ID: ["a", "a", "a", "b", "b", "a"],
            C.COL_EVENT: ["view", "purchase", "view", "view", "click", "purchase"],
            C.COL_SPLIT: ["train"] * 5 + ["test"],
        }
    )
    raw = S.purchase_rate(log, ["a", "b", "zzz"], prior_strength=0)
    np.testing.assert_allclose(raw, [0.5, 0.0, 1 / 3])  # unseen -> global 1 buyer / 3 users
    smooth = S.purchase_rate(log, ["a", "b"], prior_strength=3)
    np.testing.assert_allclose(smooth, [(1 + 1) / 5, (0 + 1) / 4])
    pairs = pd.DataFrame({C.COL_QUERY_ID: ["q1", "q1", "q2"], C.COL_PRODUCT_ID: ["a", "b", "b"]})
    assert S.purchase_qrels(log, pairs, split="test") == {"q1": {"a": 1}}
    with pytest.raises(KeyError, match="load_interactions"):
        S.purchase_rate(log.drop(columns=[C.COL_EVENT]), ["a"])


def test_train_test_queries_stratified_and_deterministic() -> None:
    queries = pd.DataFrame(
        {C.COL_QUERY_ID: [f"Q{i}" for i in range(20)], C.COL_QUERY_KIND: ["exact", "vague"] * 10}
    )
    train, test = S.train_test_queries(queries, frac=0.3, seed=7)
    assert not set(train) & set(test) and len(train) + len(test) == 20
    kinds = queries.set_index(C.COL_QUERY_ID)[C.COL_QUERY_KIND]
    assert kinds[test].value_counts().to_dict() == {"exact": 3, "vague": 3}
    assert S.train_test_queries(queries, frac=0.3, seed=7) == (train, test)
    with pytest.raises(ValueError, match="frac"):
        S.train_test_queries(queries, frac=1.0)


def test_compare_scorers_against_semantic_only() -> None:
    pairs = pd.DataFrame({C.COL_QUERY_ID: ["q"] * 4, C.COL_PRODUCT_ID: ["a", "b", "c", "d"]})
    qrels = {"q": {"c": 3, "d": 1}}
    table = S.compare_scorers(
        pairs, {"semantic": [0.9, 0.8, 0.7, 0.1], "learned": [0.1, 0.2, 0.9, 0.5]}, qrels
    )
    assert table.loc["learned", "ndcg@10"] == pytest.approx(1.0)
    assert table.loc["semantic", "ndcg@10"] < 0.7
    with pytest.raises(ValueError, match="one per pair"):
        S.scores_to_run(pairs, [1.0])


# --------------------------------------------------------------------------------------------
# MiniShop (skipped when the dataset is not generated)
# --------------------------------------------------------------------------------------------
def _minishop_ready() -> bool:
    try:
        return (paths.minishop_dir() / "qrels.csv").is_file()
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not _minishop_ready(), reason="MiniShop not generated")
def test_minishop_lexicon_and_attribute_queries() -> None:
    from recsys_kit import datasets as D

    catalog, queries, qrels = D.load_catalog(), D.load_queries(), D.load_qrels()
    lex = S.build_lexicon(catalog)
    words = set(lex.loc[lex["lang"] == "zh", "value"])
    for col in (C.COL_COLOR, C.COL_MATERIAL, C.COL_STYLE, C.COL_SEASON, C.COL_CATEGORY):
        values = set(catalog[col]) - S.NEUTRAL_VALUES
        assert values <= words, f"{col} values without a Chinese term: {values - words}"
    attr = queries[queries[C.COL_QUERY_KIND] == "attribute"]
    pairs = qrels[qrels[C.COL_QUERY_ID].isin(attr[C.COL_QUERY_ID])]
    dim = 4
    f = S.pair_features(
        attr, catalog, pairs, _unit(np.ones((len(attr), dim))), _unit(np.ones((len(catalog), dim)))
    )
    by_grade = f.groupby(C.COL_GRADE)["attr_match"].mean()
    assert by_grade[3] > 0.95 and by_grade[0] < 0.3  # Exact products match the stated attributes


def test_multitask_purchase_head_learns_rare_purchases_with_defaults():
    # Purchase rates near 0.04 (as in MiniShop) must be learned at the default lr, in few steps:
    # the heads start at the logit of their target's mean instead of sigmoid(0) = 0.5.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5)).astype(np.float32)
    buy = 1 / (1 + np.exp(-(-3.5 + 1.2 * x[:, 4])))
    grades = np.clip(np.round(1.5 + x[:, 1]), 0, 3)
    model = S.MultiTaskRanker(5, seed=0).fit(x, grades, buy, alpha=0.0, epochs=100)
    pred = model.predict(x)["purchase"]
    assert abs(pred.mean() - buy.mean()) < 0.01
    assert np.corrcoef(pred, buy)[0, 1] > 0.9
