"""Simulated online A/B tests: a position-biased click model, lift with confidence intervals,
a two-proportion z-test and a sample-size calculator.

Click model (:class:`PositionBasedClickModel`, the "PBM" of Craswell et al. 2008 / Chuklin et
al. 2015): a user shown a ranked list examines rank ``r`` (1-based) with probability
``1 / r**eta``; an examined result is clicked with probability ``attractiveness[grade]`` (grade
from the qrels, unjudged = 0); a click leads to a purchase with probability
``purchase_given_click[grade]``. Clicks and purchases are independent across ranks.

Because this click model reads the same qrels as the offline metrics, a ranker that wins offline
wins here by construction: use it to exercise the statistics, and
:class:`recsys_kit.simulator.ShopperSimulator` (shoppers with latent tastes, budgets and position
bias, and the queries' intents) to compare rankers online; its sessions have the same columns.

Session outcomes (:func:`simulate_ab_test`): each session draws a query uniformly and an arm
(A or B, 50/50 by default). ``ctr`` is the share of sessions with at least one click and
``conversion`` the share with at least one purchase (both binary per session, so the
two-proportion tools apply).

Example:
    >>> qrels = {"q1": {"good": 3}, "q2": {"good": 3}}
    >>> cm = PositionBasedClickModel(qrels)
    >>> good_first = lambda q: ["good", "bad"]
    >>> bad_first = lambda q: ["bad", "good"]
    >>> out = simulate_ab_test(bad_first, good_first, ["q1", "q2"], cm, n_sessions=20000)
    >>> res = lift_ci(out, "ctr")
    >>> bool(res["ci_low"] > 0)
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd

from recsys_kit.constants import COL_QUERY_ID, DEFAULT_K, SEED
from recsys_kit.runs import ranked_docs

#: Default P(click | examined, grade) for ESCI grades (I=0, C=1, S=2, E=3).
DEFAULT_ATTRACTIVENESS = {0: 0.05, 1: 0.2, 2: 0.45, 3: 0.8}
#: Default P(purchase | click, grade).
DEFAULT_PURCHASE = {0: 0.0, 1: 0.05, 2: 0.15, 3: 0.35}
OUTCOME_METRICS = {"ctr": "clicked", "conversion": "purchased"}

Ranker = Callable[[Hashable], Sequence[Hashable]] | Mapping[Hashable, Mapping[Hashable, float]]


@dataclass
class PositionBasedClickModel:
    """Position-based click model with purchases (see module docstring).

    Args:
        qrels: ``{query_id: {doc_id: grade}}`` (e.g. ``datasets.qrels_dict(load_qrels())``).
        eta: position-bias exponent; examination probability is ``1 / rank**eta``.
        attractiveness: ``{grade: P(click | examined)}``.
        purchase_given_click: ``{grade: P(purchase | click)}``.
    """

    qrels: Mapping[Hashable, Mapping[Hashable, float]]
    eta: float = 1.0
    attractiveness: Mapping[int, float] = field(
        default_factory=lambda: dict(DEFAULT_ATTRACTIVENESS)
    )
    purchase_given_click: Mapping[int, float] = field(
        default_factory=lambda: dict(DEFAULT_PURCHASE)
    )

    def __post_init__(self) -> None:
        if self.eta < 0:
            raise ValueError(f"eta must be >= 0, got {self.eta}")
        for name, table in (("attractiveness", self.attractiveness),
                            ("purchase_given_click", self.purchase_given_click)):  # fmt: skip
            if 0 not in table:
                raise ValueError(f"{name} needs an entry for grade 0 (unjudged documents)")
            if any(not 0.0 <= p <= 1.0 for p in table.values()):
                raise ValueError(f"{name} values must be probabilities in [0, 1]")

    def _prob(self, table: Mapping[int, float], grade: float) -> float:
        g = int(grade)
        if g in table:
            return table[g]
        return table[max(table)] if g > max(table) else table[0]

    def probabilities(self, query_id: Hashable, docs: Sequence[Hashable], k: int) -> np.ndarray:
        """(2, k) array: P(click) per rank (examination x attractiveness), P(purchase | click).

        Ranks beyond ``len(docs)`` get probability 0 (nothing shown there).
        """
        judged = self.qrels.get(query_id, {})
        out = np.zeros((2, k))
        for r, d in enumerate(list(docs)[:k]):
            g = judged.get(d, 0)
            out[0, r] = self._prob(self.attractiveness, g) / (r + 1) ** self.eta
            out[1, r] = self._prob(self.purchase_given_click, g)
        return out


def ranked_ids(ranker: Ranker, qid: Hashable) -> Sequence[Hashable]:
    """The ranked doc ids a ranker shows for a query (a run: by score, ties by id).

    Example:
        >>> list(ranked_ids({"q": {"b": 1.0, "a": 1.0, "c": 2.0}}, "q"))
        ['c', 'a', 'b']
    """
    if isinstance(ranker, Mapping):
        return ranked_docs(ranker.get(qid, {}))
    if callable(ranker):
        return ranker(qid)
    raise TypeError("a ranker must be a function query_id -> [doc ids] or a run dict")


def draw_sessions(
    queries: Sequence[Hashable],
    n_sessions: int,
    seed: int,
    k: int,
    share_b: float | None = 0.5,
) -> tuple[list, np.random.Generator, np.ndarray, np.ndarray]:
    """Check a simulation's settings and draw each session's arm and query.

    Args:
        queries: query ids, drawn uniformly with replacement.
        n_sessions, k: sessions and results per page (>= 1).
        seed: random seed.
        share_b: probability of arm B; ``None`` draws no arm (one ranker, all arm 0).

    Returns:
        ``(queries as a list, the generator for further draws, arm (0/1), query index)``.
    """
    if n_sessions <= 0 or k <= 0:
        raise ValueError("n_sessions and k must be >= 1")
    if share_b is not None and not 0.0 < share_b < 1.0:
        raise ValueError(f"share_b must be in (0, 1), got {share_b}")
    queries = list(queries)
    if not queries:
        raise ValueError("queries is empty; pass the query ids to simulate")
    rng = np.random.default_rng(seed)
    if share_b is None:
        arm = np.zeros(n_sessions, dtype=np.int64)
    else:
        arm = (rng.random(n_sessions) < share_b).astype(np.int64)
    return queries, rng, arm, rng.integers(0, len(queries), n_sessions)


def simulate_ab_test(
    ranker_a: Ranker,
    ranker_b: Ranker,
    queries: Sequence[Hashable],
    click_model: PositionBasedClickModel,
    n_sessions: int = 10_000,
    seed: int = SEED,
    k: int = DEFAULT_K,
    share_b: float = 0.5,
) -> pd.DataFrame:
    """Simulate sessions split at random between two rankers.

    Args:
        ranker_a: control: a function ``query_id -> ranked doc ids`` or a run dict.
        ranker_b: treatment, same forms.
        queries: query ids sessions are drawn from (uniformly, with replacement).
        click_model: e.g. ``PositionBasedClickModel(qrels)``.
        n_sessions: number of sessions.
        seed: random seed (same seed, same outcomes).
        k: how many results each session shows.
        share_b: probability a session is assigned to B.

    Returns:
        One row per session: ``session``, ``variant`` ("A"/"B"), ``query_id``, ``clicks``,
        ``purchases`` (counts), ``clicked``, ``purchased`` (0/1) and ``first_click_rank``
        (1-based, 0 if no click).
    """
    queries, rng, arm, qi = draw_sessions(queries, n_sessions, seed, k, share_b)
    # (arm, query) -> click and purchase probabilities per rank, computed once
    probs = np.stack(
        [
            np.stack([click_model.probabilities(q, ranked_ids(r, q), k) for q in queries])
            for r in (ranker_a, ranker_b)
        ]
    )  # (2, n_queries, 2, k)
    p = probs[arm, qi]  # (n_sessions, 2, k)
    clicks = rng.random((n_sessions, k)) < p[:, 0]
    buys = clicks & (rng.random((n_sessions, k)) < p[:, 1])
    any_click = clicks.any(axis=1)
    return pd.DataFrame(
        {
            "session": np.arange(n_sessions),
            "variant": np.where(arm == 1, "B", "A"),
            COL_QUERY_ID: [queries[i] for i in qi],
            "clicks": clicks.sum(axis=1),
            "purchases": buys.sum(axis=1),
            "clicked": any_click.astype(np.int64),
            "purchased": buys.any(axis=1).astype(np.int64),
            "first_click_rank": np.where(any_click, clicks.argmax(axis=1) + 1, 0),
        }
    )


def _counts(outcomes: pd.DataFrame, metric: str) -> tuple[int, int, int, int]:
    if metric not in OUTCOME_METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {list(OUTCOME_METRICS)}")
    col = OUTCOME_METRICS[metric]
    missing = {"variant", col} - set(outcomes.columns)
    if missing:
        raise ValueError(f"outcomes lack columns {sorted(missing)}; pass simulate_ab_test's output")
    g = outcomes.groupby("variant")[col].agg(["sum", "count"])
    if not {"A", "B"} <= set(g.index):
        raise ValueError("outcomes need sessions in both variants 'A' and 'B'")
    return (
        int(g.loc["A", "sum"]),
        int(g.loc["A", "count"]),
        int(g.loc["B", "sum"]),
        int(g.loc["B", "count"]),
    )


def lift_ci(
    outcomes: pd.DataFrame,
    metric: str = "ctr",
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = SEED,
) -> dict[str, float]:
    """Relative lift of B over A with a percentile bootstrap confidence interval.

    Sessions are resampled with replacement within each arm. Outcomes are 0/1 per session, so
    a resample's success count is exactly Binomial(n_arm, observed rate): we draw that directly
    (same distribution as resampling rows, without materialising them).

    Args:
        outcomes: :func:`simulate_ab_test` output (columns ``variant`` and the metric's 0/1).
        metric: ``"ctr"`` (sessions with a click) or ``"conversion"`` (with a purchase).
        n_boot: bootstrap resamples.
        alpha: 1 - confidence level.
        seed: random seed.

    Returns:
        ``{"rate_a", "rate_b", "lift", "ci_low", "ci_high"}``; lift = rate_b / rate_a - 1.
    """
    if n_boot < 100:
        raise ValueError(f"n_boot={n_boot} is too small for a percentile interval; use >= 100")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    xa, na, xb, nb = _counts(outcomes, metric)
    if xa == 0:
        raise ValueError(f"no successes in arm A for {metric!r}: relative lift is undefined")
    rng = np.random.default_rng(seed)
    ra = rng.binomial(na, xa / na, n_boot) / na
    rb = rng.binomial(nb, xb / nb, n_boot) / nb
    with np.errstate(divide="ignore", invalid="ignore"):
        lifts = rb / ra - 1.0  # a resample with 0 successes in A gives inf: kept, it is rare
    lo, hi = np.quantile(lifts, [alpha / 2, 1 - alpha / 2])
    return {"rate_a": xa / na, "rate_b": xb / nb, "lift": (xb / nb) / (xa / na) - 1.0,
            "ci_low": float(lo), "ci_high": float(hi)}  # fmt: skip


def two_proportion_ztest(
    successes_a: int, n_a: int, successes_b: int, n_b: int
) -> tuple[float, float]:
    """Two-sided z-test of equal proportions with the pooled standard error.

    Args:
        successes_a, n_a: successes and trials in A.
        successes_b, n_b: successes and trials in B.

    Returns:
        ``(z, p_value)``; z > 0 when B's rate is higher.

    Example:
        >>> z, p = two_proportion_ztest(100, 1000, 130, 1000)
        >>> round(z, 3), round(p, 4)
        (2.103, 0.0355)
    """
    if n_a <= 0 or n_b <= 0:
        raise ValueError("n_a and n_b must be >= 1")
    if not (0 <= successes_a <= n_a and 0 <= successes_b <= n_b):
        raise ValueError("successes must be between 0 and the number of trials")
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.0, 1.0  # both arms all-0 or all-1: no evidence of a difference
    z = (successes_b / n_b - successes_a / n_a) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def ztest(outcomes: pd.DataFrame, metric: str = "ctr") -> tuple[float, float]:
    """:func:`two_proportion_ztest` on :func:`simulate_ab_test` outcomes."""
    return two_proportion_ztest(*_counts(outcomes, metric))


def sample_size(
    baseline_rate: float, min_detectable_lift: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Sessions needed **per arm** to detect a relative lift (two-sided, two proportions).

    ``p1 = baseline_rate``, ``p2 = p1 (1 + lift)``, ``pbar = (p1 + p2) / 2`` and
    ``n = (z_{1-alpha/2} sqrt(2 pbar (1 - pbar)) + z_{power} sqrt(p1 q1 + p2 q2))^2 / (p2 - p1)^2``
    rounded up (Fleiss' formula without continuity correction).

    Args:
        baseline_rate: control conversion or click rate, in (0, 1).
        min_detectable_lift: relative lift to detect, e.g. 0.1 for +10%.
        alpha: significance level.
        power: probability of detecting the lift when it is real.

    Returns:
        Sessions per arm.

    Example:
        >>> sample_size(0.10, 0.10)
        14751
    """
    if not 0.0 < baseline_rate < 1.0:
        raise ValueError(f"baseline_rate must be in (0, 1), got {baseline_rate}")
    p2 = baseline_rate * (1 + min_detectable_lift)
    if min_detectable_lift == 0 or not 0.0 < p2 < 1.0:
        raise ValueError(
            f"min_detectable_lift={min_detectable_lift} must be non-zero and keep the treated "
            f"rate in (0, 1) (got {p2:.4g})"
        )
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError("alpha and power must be in (0, 1)")
    p1 = baseline_rate
    z_a = NormalDist().inv_cdf(1 - alpha / 2)
    z_b = NormalDist().inv_cdf(power)
    pbar = (p1 + p2) / 2
    num = z_a * math.sqrt(2 * pbar * (1 - pbar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(num**2 / (p2 - p1) ** 2)


__all__ = [
    "PositionBasedClickModel",
    "ranked_ids",
    "draw_sessions",
    "simulate_ab_test",
    "lift_ci",
    "two_proportion_ztest",
    "ztest",
    "sample_size",
]
