"""Simulated shoppers with their own truth: MiniShop's latent shopper model, online.

Offline metrics read the qrels (ESCI labels from fixed rules). An online test must not: if the
simulated shoppers clicked and bought by those same labels, a ranker that wins offline would win
online by construction. :class:`ShopperSimulator` draws clicks and purchases from what the
generator knows and the labels do not say (``datasets/DATASHEET.md``, "Users and shopper
simulation"):

* the query's **intent** (``intents.csv``: categories, stated attributes, price cap, rating
  floor), read with graded, not binary, penalties: a product answers the need fully (0), misses
  a stated attribute (-1.2 each), is a close substitute (-2), a complement (-3.5) or unrelated
  (-6); a product above a stated price cap loses 4 per unit of log(price / cap);
* the shopper's **latent tastes** (``shoppers.csv``): three preferred colours (+1.0) and styles
  (+0.8), price sensitivity (-s per unit of log(price / category median)), rating
  (+0.8 x (rating - 4)), the opposite gender's products (-2), a **budget** (buying above
  ``budget x category median`` loses 3 per unit of log(price / budget));
* **position bias** (rank ``r`` is examined with probability ``r ** -position_bias``, a latent
  exponent per shopper around 0.9) and **noise** (a normal term, sd 1, per shown product).

An examined product is clicked with probability ``sigmoid(utility - 0.3)``; a click becomes a
purchase with probability ``0.55 x sigmoid(utility + budget term - 1.2)`` (the funnel of the
interaction log). The qrels are a coarse, partial reading of the same intents (four grades, a
judged pool, no price or taste), so offline nDCG and online conversion usually agree and
disagree where rankers differ in what the labels cannot see: the price, rating and taste fit of
equally relevant products, substitutes that sell, unjudged products.

Every ``expected_*`` method is the simulator's **truth** (an exact expectation over the query's
shoppers and, by Gauss-Hermite quadrature, the noise); ``simulate_*`` and ``log_sessions`` draw
random sessions from it. ``recsys_kit.abtest`` keeps the statistics (lift, z-test, sample size).

Example:
    >>> sim = ShopperSimulator()
    >>> qid = "Q0001"
    >>> good = sim.ideal_run([qid])  # the simulator's own best ranking
    >>> out = sim.expected_outcomes(good, [qid])
    >>> bool(out.loc[qid, "conversion"] > 0.1)
    True

The module is over 600 lines because the simulator and its offline/online comparison read the
same shopper model; splitting them would expose its internals.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit import datasets as D
from recsys_kit.abtest import Ranker, draw_sessions, ranked_ids
from recsys_kit.metrics import evaluate
from recsys_kit.runs import ranked_docs

__all__ = [
    "ShopperParams",
    "ShopperSimulator",
    "discordant_pairs",
    "offline_online",
    "plot_offline_online",
]

_GENDER_MISMATCH = {"female": "men", "male": "women"}  # user gender -> product gender avoided


@dataclass(frozen=True)
class ShopperParams:
    """Weights of the latent shopper model (utility units; see the module docstring).

    The taste weights and the funnel offsets are the ones the interaction log was simulated with
    (``datasets/minishop_generator.py``); the need penalties read the query intents.
    """

    color_bonus: float = 1.0
    style_bonus: float = 0.8
    rating_weight: float = 0.8
    gender_mismatch: float = -2.0
    attribute_miss: float = -1.2
    close_category: float = -2.0
    complement: float = -3.5
    unrelated: float = -6.0
    over_cap: float = -4.0
    under_floor: float = -2.0
    over_budget: float = -3.0
    click_offset: float = 0.3
    buy_offset: float = 1.2
    buy_given_click: float = 0.55
    noise: float = 1.0
    #: Home-page lists have no query: department affinity replaces the need term.
    affinity_weight: float = 1.0
    home_offset: float = 3.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _split(values: pd.Series) -> list[frozenset[str]]:
    return [frozenset(v.split("|")) if v else frozenset() for v in values.astype(str)]


class ShopperSimulator:
    """Online shoppers for search (a query, a ranked list) and home-page recommendations.

    Args:
        catalog, users, shoppers, intents, queries: MiniShop frames; ``None`` loads the
            committed files (``recsys_kit.datasets``). A smaller ``catalog`` (a mini-shop) is
            fine: category medians come from the catalog you pass.
        params: model weights (:class:`ShopperParams`).
        quadrature: Gauss-Hermite nodes for the expectations over the noise.

    Attributes:
        product_ids: the catalog's product ids, in catalog order.
        user_ids: the users, in ``users`` order.
    """

    def __init__(
        self,
        catalog: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        shoppers: pd.DataFrame | None = None,
        intents: pd.DataFrame | None = None,
        queries: pd.DataFrame | None = None,
        params: ShopperParams | None = None,
        quadrature: int = 7,
    ) -> None:
        catalog = D.load_catalog() if catalog is None else catalog
        users = D.load_users() if users is None else users
        shoppers = D.load_shoppers() if shoppers is None else shoppers
        intents = D.load_intents() if intents is None else intents
        queries = D.load_queries() if queries is None else queries
        self.params = params or ShopperParams()
        if len(catalog) == 0:
            raise ValueError("the catalog is empty: pass MiniShop's catalog or a sample of it")
        self.product_ids = catalog[C.COL_PRODUCT_ID].astype(str).to_numpy()
        self._pos = {p: i for i, p in enumerate(self.product_ids)}
        price = catalog[C.COL_PRICE].to_numpy(dtype=float)
        median = catalog.groupby(C.COL_CATEGORY)[C.COL_PRICE].transform("median").to_numpy(float)
        self._price, self._median = price, median
        self._log_rel_price = np.log(price / median)
        self._rating = catalog[C.COL_RATING].to_numpy(dtype=float)
        self._p_gender = catalog[C.COL_GENDER].astype(str).to_numpy()
        self._category = catalog[C.COL_CATEGORY].astype(str).to_numpy()
        self._dept = pd.Categorical(catalog[C.COL_DEPARTMENT], categories=C.DEPARTMENTS).codes
        self._columns = {
            col: catalog[col].astype(str).to_numpy()
            for col in (C.COL_BRAND, C.COL_COLOR, C.COL_STYLE, C.COL_MATERIAL, C.COL_SEASON,
                        C.COL_GENDER)
        }  # fmt: skip

        # Shoppers, aligned with `users` (every user needs a latent row).
        latent = shoppers.set_index(C.COL_USER_ID)
        missing = set(users[C.COL_USER_ID]) - set(latent.index)
        if missing:
            raise ValueError(
                f"{len(missing)} users have no latent row in shoppers (e.g. {sorted(missing)[0]}); "
                "pass the shoppers.csv that matches users.csv (datasets.load_shoppers())"
            )
        latent = latent.loc[users[C.COL_USER_ID]]
        self.user_ids = users[C.COL_USER_ID].astype(str).to_numpy()
        self._user_pos = {u: i for i, u in enumerate(self.user_ids)}
        self._language = users[C.COL_LANGUAGE].astype(str).to_numpy()
        self._avoid = np.array([_GENDER_MISMATCH.get(g, "") for g in users[C.COL_GENDER]])
        self._sensitivity = latent["price_sensitivity"].to_numpy(dtype=float)
        self._budget = latent["budget"].to_numpy(dtype=float)
        self._eta = latent["position_bias"].to_numpy(dtype=float)
        self._affinity = latent[[f"affinity_{d}" for d in C.DEPARTMENTS]].to_numpy(dtype=float)
        colors, styles = _split(latent["colors"]), _split(latent["styles"])
        # (n_users, n_products) would be large for 5,000 products; keep per-value codes instead.
        self._color_codes, self._likes_color = self._likes(self._columns[C.COL_COLOR], colors)
        self._style_codes, self._likes_style = self._likes(self._columns[C.COL_STYLE], styles)

        self._intents = intents.set_index(C.COL_QUERY_ID)
        lang = queries.set_index(C.COL_QUERY_ID)[C.COL_LANGUAGE]
        self._query_language = lang.astype(str).to_dict()
        self._need_cache: dict[Hashable, np.ndarray] = {}
        x, w = np.polynomial.hermite_e.hermegauss(quadrature)
        self._nodes, self._weights = x * self.params.noise, w / w.sum()

    # ------------------------------------------------------------------------------------------
    # The latent model
    # ------------------------------------------------------------------------------------------
    @staticmethod
    def _likes(values: np.ndarray, liked: list[frozenset[str]]) -> tuple[np.ndarray, np.ndarray]:
        vocab = sorted(set(values) | set().union(*liked))
        code = {v: i for i, v in enumerate(vocab)}
        table = np.zeros((len(liked), len(vocab)), dtype=bool)
        for u, vals in enumerate(liked):
            table[u, [code[v] for v in vals]] = True
        return np.array([code[v] for v in values]), table

    def _rows(self, product_ids: Sequence[Hashable]) -> np.ndarray:
        try:
            return np.array([self._pos[str(p)] for p in product_ids], dtype=np.int64)
        except KeyError as err:
            raise KeyError(
                f"product {err.args[0]!r} is not in the simulator's catalog; build the simulator "
                "with the catalog (or mini-shop) your rankers rank"
            ) from None

    def users_for(self, query_id: Hashable) -> np.ndarray:
        """Rows of the users who may type this query (those of the query's language)."""
        lang = self._query_language.get(query_id)
        if lang is None:
            raise KeyError(f"unknown query {query_id!r}: it is not in the queries you passed")
        return np.flatnonzero(self._language == lang)

    def need(self, query_id: Hashable, product_ids: Sequence[Hashable] | None = None) -> np.ndarray:
        """How well each product answers the query's intent (0 = fully, negative = less).

        Args:
            query_id: a query of ``intents.csv``.
            product_ids: products to score (default: the whole catalog, in catalog order).

        Returns:
            float64 array, one value per product.
        """
        if query_id not in self._need_cache:
            if query_id not in self._intents.index:
                raise KeyError(f"query {query_id!r} has no intent in intents.csv")
            self._need_cache[query_id] = self._need_all(self._intents.loc[query_id])
        need = self._need_cache[query_id]
        return need if product_ids is None else need[self._rows(product_ids)]

    def _need_all(self, intent: pd.Series) -> np.ndarray:
        p = self.params
        cats = set(intent["categories"].split("|"))
        close = set(intent["close"].split("|")) if intent["close"] else set()
        comps = set(intent["complements"].split("|")) if intent["complements"] else set()
        misses = np.zeros(len(self.product_ids))
        for col, values in self._columns.items():
            allowed = intent.get(col, "")
            if isinstance(allowed, str) and allowed:
                misses += ~np.isin(values, allowed.split("|"))
        fit = p.attribute_miss * misses
        if pd.notna(intent["max_price"]):
            fit += p.over_cap * np.maximum(0.0, np.log(self._price / intent["max_price"]))
        if pd.notna(intent["min_rating"]):
            fit += p.under_floor * np.maximum(0.0, intent["min_rating"] - self._rating)
        in_cat = np.isin(self._category, list(cats))
        other = np.where(
            np.isin(self._category, list(close)),
            p.close_category,
            np.where(np.isin(self._category, list(comps)), p.complement, p.unrelated),
        )
        return np.where(in_cat, fit, other)

    def taste(self, user_rows: np.ndarray, product_rows: np.ndarray) -> np.ndarray:
        """Latent taste of users for products (broadcast shapes), without the intent.

        Args:
            user_rows: int array of user rows (e.g. ``(n, 1)``).
            product_rows: int array of catalog rows (e.g. ``(n, k)``).
        """
        p = self.params
        u, j = np.broadcast_arrays(np.asarray(user_rows), np.asarray(product_rows))
        return (
            p.color_bonus * self._likes_color[u, self._color_codes[j]]
            + p.style_bonus * self._likes_style[u, self._style_codes[j]]
            - self._sensitivity[u] * self._log_rel_price[j]
            + p.rating_weight * (self._rating[j] - 4.0)
            + p.gender_mismatch * (self._p_gender[j] == self._avoid[u])
        )

    def _budget_term(self, user_rows: np.ndarray, product_rows: np.ndarray) -> np.ndarray:
        u, j = np.broadcast_arrays(np.asarray(user_rows), np.asarray(product_rows))
        over = np.log(self._price[j] / (self._budget[u] * self._median[j]))
        return self.params.over_budget * np.maximum(0.0, over)

    def examination(self, ranks: Sequence[int] | np.ndarray, users: np.ndarray | None = None):
        """Probability that a rank is examined: ``rank ** -position_bias``.

        Args:
            ranks: 1-based ranks.
            users: user rows; default the mean over all users (the propensity curve of the
                shop's traffic, what an IPS estimator divides by).

        Returns:
            ``(len(ranks),)`` for the population, else ``(len(users), len(ranks))``.
        """
        r = np.asarray(ranks, dtype=float)
        if (r < 1).any():
            raise ValueError("ranks are 1-based: every rank must be >= 1")
        eta = self._eta if users is None else self._eta[np.asarray(users)]
        exam = r[None, :] ** -eta[:, None]
        return exam.mean(axis=0) if users is None else exam

    # ------------------------------------------------------------------------------------------
    # Expectations (the truth)
    # ------------------------------------------------------------------------------------------
    def _shown(self, ranker: Ranker, query_id: Hashable, k: int) -> np.ndarray:
        docs = list(ranked_ids(ranker, query_id))[:k]
        rows = np.full(k, -1, dtype=np.int64)
        rows[: len(docs)] = self._rows(docs)
        return rows

    def _rank_probabilities(
        self, query_id: Hashable, rows: np.ndarray, users: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expected P(click) and P(purchase) per (user, rank), noise integrated out."""
        p = self.params
        shown = rows >= 0
        safe = np.where(shown, rows, 0)
        base = self.need(query_id)[safe][None, :] + self.taste(users[:, None], safe[None, :])
        budget = self._budget_term(users[:, None], safe[None, :])
        u = base[..., None] + self._nodes  # (n_users, k, nodes)
        click = _sigmoid(u - p.click_offset)
        buy = p.buy_given_click * _sigmoid(u + budget[..., None] - p.buy_offset)
        exam = self.examination(np.arange(1, len(rows) + 1), users) * shown
        return exam * (click @ self._weights), exam * ((click * buy) @ self._weights)

    def expected_outcomes(
        self, ranker: Ranker, query_ids: Sequence[Hashable], k: int = C.DEFAULT_K
    ) -> pd.DataFrame:
        """The truth: expected outcomes of a search session per query, over its shoppers.

        Args:
            ranker: a run ``{query_id: {product_id: score}}`` or a function
                ``query_id -> ranked product ids``.
            query_ids: queries to evaluate.
            k: results shown per page.

        Returns:
            One row per query (index ``query_id``): ``ctr`` (P(at least one click)),
            ``conversion`` (P(at least one purchase)), ``clicks`` and ``purchases`` (expected
            counts). The mean of a column is the value of uniformly drawn queries.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        rows = []
        for q in query_ids:
            users = self.users_for(q)
            click, buy = self._rank_probabilities(q, self._shown(ranker, q, k), users)
            rows.append({
                C.COL_QUERY_ID: q,
                "ctr": float(np.mean(1.0 - np.prod(1.0 - click, axis=1))),
                "conversion": float(np.mean(1.0 - np.prod(1.0 - buy, axis=1))),
                "clicks": float(click.sum(axis=1).mean()),
                "purchases": float(buy.sum(axis=1).mean()),
            })  # fmt: skip
        return pd.DataFrame(rows).set_index(C.COL_QUERY_ID)

    def attractiveness(self, query_id: Hashable, product_ids: Sequence[Hashable]) -> np.ndarray:
        """P(click | examined) of each product for this query, over its shoppers and the noise.

        The "true relevance" a click model estimates; an IPS estimate of expected clicks
        converges to ``sum_d examination(rank(d)) * attractiveness(d)``.
        """
        rows = self._rows(product_ids)
        users = self.users_for(query_id)
        u = self.need(query_id)[rows][None, :] + self.taste(users[:, None], rows[None, :])
        click = _sigmoid(u[..., None] + self._nodes - self.params.click_offset) @ self._weights
        return click.mean(axis=0)

    def ideal_run(
        self,
        query_ids: Sequence[Hashable],
        depth: int = 50,
        products: Sequence[Hashable] | None = None,
    ) -> dict:
        """Each query's products by expected purchase probability at rank 1 (the simulator's
        own best ranking, what no offline label can produce): a ceiling for comparisons.

        Args:
            query_ids: the queries.
            depth: products kept per query.
            products: rank only these (e.g. a mini-shop); default the whole catalog.
        """
        p = self.params
        pool = np.arange(len(self.product_ids)) if products is None else self._rows(products)
        run = {}
        for q in query_ids:
            users = self.users_for(q)
            need = self.need(q)[pool]
            cand = pool[np.argsort(-need, kind="stable")[: max(depth * 4, 200)]]
            u = self.need(q)[cand][None, :] + self.taste(users[:, None], cand[None, :])
            budget = self._budget_term(users[:, None], cand[None, :])
            v = u[..., None] + self._nodes
            buy = _sigmoid(v - p.click_offset) * _sigmoid(v + budget[..., None] - p.buy_offset)
            score = (buy @ self._weights).mean(axis=0)
            top = np.argsort(-score, kind="stable")[:depth]
            run[q] = {self.product_ids[cand[j]]: float(score[j]) for j in top}
        return run

    # ------------------------------------------------------------------------------------------
    # Sampling
    # ------------------------------------------------------------------------------------------
    def _sessions(
        self,
        rankers: Sequence[Ranker],
        query_ids: Sequence[Hashable],
        arm: np.ndarray,
        qi: np.ndarray,
        rng: np.random.Generator,
        k: int,
    ) -> dict[str, np.ndarray]:
        """Draw shoppers, clicks and purchases for sessions (arm, query index) given."""
        p = self.params
        shown = np.stack([np.stack([self._shown(r, q, k) for q in query_ids]) for r in rankers])
        # A shopper of the query's language, uniformly: one draw per session, vectorised per pool.
        pools = {lang: np.flatnonzero(self._language == lang) for lang in set(self._language)}
        for q in query_ids:
            if q not in self._query_language:
                raise KeyError(f"unknown query {q!r}: it is not in the queries you passed")
        lang = np.array([self._query_language[q] for q in query_ids])[qi]
        pick = rng.random(len(qi))
        user = np.zeros(len(qi), dtype=np.int64)
        for code, pool in pools.items():
            rows = lang == code
            user[rows] = pool[np.minimum((pick[rows] * len(pool)).astype(np.int64), len(pool) - 1)]
        rows = shown[arm, qi]  # (n, k)
        safe = np.where(rows >= 0, rows, 0)
        need = np.stack([self.need(q) for q in query_ids])[qi[:, None], safe]
        u = need + self.taste(user[:, None], safe) + rng.normal(0.0, p.noise, rows.shape)
        exam = np.arange(1, k + 1)[None, :] ** -self._eta[user][:, None] * (rows >= 0)
        clicks = rng.random(rows.shape) < exam * _sigmoid(u - p.click_offset)
        budget = self._budget_term(user[:, None], safe)
        buy = p.buy_given_click * _sigmoid(u + budget - p.buy_offset)
        buys = clicks & (rng.random(rows.shape) < buy)
        return {"user": user, "rows": rows, "clicks": clicks, "buys": buys}

    def simulate_ab_test(
        self,
        ranker_a: Ranker,
        ranker_b: Ranker,
        query_ids: Sequence[Hashable],
        n_sessions: int = 10_000,
        seed: int = C.SEED,
        k: int = C.DEFAULT_K,
        share_b: float = 0.5,
    ) -> pd.DataFrame:
        """Random search sessions split between two rankers (the output of
        :func:`recsys_kit.abtest.simulate_ab_test`, plus ``user_id``).

        Each session draws a query uniformly, a shopper of the query's language uniformly and an
        arm (B with probability ``share_b``). ``abtest.lift_ci`` and ``abtest.ztest`` read it.
        """
        query_ids, rng, arm, qi = draw_sessions(query_ids, n_sessions, seed, k, share_b)
        s = self._sessions([ranker_a, ranker_b], query_ids, arm, qi, rng, k)
        clicks, buys = s["clicks"], s["buys"]
        any_click = clicks.any(axis=1)
        return pd.DataFrame(
            {
                "session": np.arange(n_sessions),
                "variant": np.where(arm == 1, "B", "A"),
                C.COL_QUERY_ID: [query_ids[i] for i in qi],
                C.COL_USER_ID: self.user_ids[s["user"]],
                "clicks": clicks.sum(axis=1),
                "purchases": buys.sum(axis=1),
                "clicked": any_click.astype(np.int64),
                "purchased": buys.any(axis=1).astype(np.int64),
                "first_click_rank": np.where(any_click, clicks.argmax(axis=1) + 1, 0),
            }
        )

    def log_sessions(
        self,
        ranker: Ranker,
        query_ids: Sequence[Hashable],
        n_sessions: int = 10_000,
        seed: int = C.SEED,
        k: int = C.DEFAULT_K,
    ) -> pd.DataFrame:
        """The impression log a shop running ``ranker`` would collect (for IPS estimators).

        Returns:
            One row per shown product: ``session``, ``query_id``, ``user_id``, ``product_id``,
            ``position`` (1-based), ``clicked`` and ``purchased`` (0/1).
        """
        query_ids, rng, arm, qi = draw_sessions(query_ids, n_sessions, seed, k, share_b=None)
        s = self._sessions([ranker], query_ids, arm, qi, rng, k)
        sess, rank = np.nonzero(s["rows"] >= 0)
        return pd.DataFrame(
            {
                "session": sess,
                C.COL_QUERY_ID: np.asarray(query_ids, dtype=object)[qi[sess]],
                C.COL_USER_ID: self.user_ids[s["user"][sess]],
                C.COL_PRODUCT_ID: self.product_ids[s["rows"][sess, rank]],
                C.COL_POSITION: rank + 1,
                "clicked": s["clicks"][sess, rank].astype(np.int64),
                "purchased": s["buys"][sess, rank].astype(np.int64),
            }
        )

    # ------------------------------------------------------------------------------------------
    # Home-page recommendations (no query)
    # ------------------------------------------------------------------------------------------
    def expected_recommendation_outcomes(
        self, lists: Mapping[Hashable, Sequence[Hashable]], k: int = C.DEFAULT_K
    ) -> pd.DataFrame:
        """The truth for home-page lists: each user's expected outcome of one visit.

        Without a query, the need term is the shopper's department affinity:
        ``affinity_weight x log(7 x affinity[department])`` (0 for an average department),
        and the click offset is ``home_offset`` (a home page is browsed, not searched).

        Args:
            lists: ``{user_id: ranked product ids}`` (only the first ``k`` are shown).
            k: list length shown.

        Returns:
            One row per user (index ``user_id``): ``ctr``, ``conversion``, ``clicks``,
            ``purchases``, as in :meth:`expected_outcomes`.
        """
        p = self.params
        out = []
        for uid, items in lists.items():
            if uid not in self._user_pos:
                raise KeyError(f"unknown user {uid!r}")
            u = np.array([self._user_pos[uid]])
            rows = self._rows(list(items)[:k])
            if len(rows) == 0:
                out.append({C.COL_USER_ID: uid, "ctr": 0.0, "conversion": 0.0, "clicks": 0.0,
                            "purchases": 0.0})  # fmt: skip
                continue
            aff = self._affinity[u[:, None], self._dept[rows][None, :]] * len(C.DEPARTMENTS)
            need = p.affinity_weight * np.log(np.maximum(aff, 1e-3))
            base = need + self.taste(u[:, None], rows[None, :])
            v = base[..., None] + self._nodes
            click = _sigmoid(v - p.home_offset)
            budget = self._budget_term(u[:, None], rows[None, :])
            buy = p.buy_given_click * _sigmoid(v + budget[..., None] - p.buy_offset)
            exam = self.examination(np.arange(1, len(rows) + 1), u)
            pc, pb = exam * (click @ self._weights), exam * ((click * buy) @ self._weights)
            out.append({
                C.COL_USER_ID: uid,
                "ctr": float(1 - np.prod(1 - pc)),
                "conversion": float(1 - np.prod(1 - pb)),
                "clicks": float(pc.sum()),
                "purchases": float(pb.sum()),
            })  # fmt: skip
        return pd.DataFrame(out).set_index(C.COL_USER_ID)


# ------------------------------------------------------------------------------------------------
# Offline against online
# ------------------------------------------------------------------------------------------------
def offline_online(
    sim: ShopperSimulator,
    runs: Mapping[str, Ranker],
    qrels: Mapping[Hashable, Mapping[Hashable, float]],
    query_ids: Sequence[Hashable],
    k: int = C.DEFAULT_K,
) -> pd.DataFrame:
    """Each ranker's offline nDCG@k (the qrels) next to its online truth (the simulator).

    Args:
        sim: the simulator.
        runs: ``{name: run or ranker function}``.
        qrels: ``{query_id: {doc_id: grade}}``; only ``query_ids`` are evaluated.
        query_ids: the queries, drawn uniformly online.
        k: page depth for both.

    Returns:
        One row per ranker: ``ndcg@k``, ``ctr``, ``conversion``, ``clicks``, ``purchases``.
    """

    sub = {q: qrels.get(q, {}) for q in query_ids}
    rows = {}
    for name, ranker in runs.items():
        run = ranker if isinstance(ranker, Mapping) else {
            q: {d: -float(r) for r, d in enumerate(ranker(q))} for q in query_ids
        }  # fmt: skip
        run = {q: {d: -float(r) for r, d in enumerate(ranked_docs(run.get(q, {}))[:k])}
               for q in query_ids}  # fmt: skip
        online = sim.expected_outcomes(run, query_ids, k=k).mean()
        rows[name] = {f"ndcg@{k}": evaluate(sub, run, f"ndcg@{k}")[f"ndcg@{k}"], **online}
    return pd.DataFrame(rows).T.rename_axis("ranker")


def discordant_pairs(
    table: pd.DataFrame, offline: str = "ndcg@10", online: str = "conversion"
) -> pd.DataFrame:
    """Pairs of rankers that offline and online order differently.

    Returns:
        One row per pair ``(offline_winner, online_winner)``: the offline and online gaps
        (winner minus loser, in each metric's units). A tie offline (equal nDCG) with an online
        difference is listed too, with an offline gap of 0.
    """
    rows = []
    names = list(table.index)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            d_off = table.loc[a, offline] - table.loc[b, offline]
            d_on = table.loc[a, online] - table.loc[b, online]
            if np.isclose(d_off, 0.0, atol=1e-9) and not np.isclose(d_on, 0.0, atol=1e-9):
                win_off, win_on = (b, a) if d_on > 0 else (a, b)
            elif d_off * d_on < 0:
                win_off, win_on = (a, b) if d_off > 0 else (b, a)
            else:
                continue
            rows.append({
                "offline winner": win_off,
                "online winner": win_on,
                f"{offline} gap": abs(d_off),
                f"{online} gap": abs(d_on),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=["offline winner", "online winner", f"{offline} gap",
                                       f"{online} gap"])  # fmt: skip


def plot_offline_online(
    table: pd.DataFrame, offline: str = "ndcg@10", online: str = "conversion", ax=None
):
    """Scatter of offline against online quality, one labelled point per ranker.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.scatter(table[offline], table[online], s=30)
    for name, row in table.iterrows():
        ax.annotate(str(name), (row[offline], row[online]), textcoords="offset points",
                    xytext=(4, 3), fontsize=7)  # fmt: skip
    rho = table[offline].corr(table[online], method="spearman")
    ax.set(xlabel=f"offline {offline} (qrels)", ylabel=f"online {online} (simulated shoppers)",
           title=f"Offline vs online, {len(table)} rankers (Spearman {rho:.2f})")  # fmt: skip
    return ax
