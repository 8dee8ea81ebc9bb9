"""Multi-task scoring: rank (query, product) pairs by a learned score, not a "loss" to minimise.

The training material proposes, for a query embedding ``u`` and product embeddings ``v_i``::

    L = sum_i ( ||u - v_i||^2 + w_s * s_i + w_r * r_i )

with ``s_i`` the attribute match and ``r_i`` the rating. Read as an objective it is backwards:
minimising it pushes *down* the attribute match and the rating (a well-rated, well-matching
product gets a larger "loss"), and summing over all products mixes every product into one number
instead of ordering them. What the idea really wants is a **score** to rank by::

    score_i = -||u - v_i||^2 + w_s * s_i + w_r * r_i + ...

with the weights *learned* from relevance labels (:func:`fit_linear_ranker`, pointwise or
pairwise), and a second objective (purchases) added as a second head of a small multi-task
network (:class:`MultiTaskRanker`) whose trade-off is traced by :func:`tradeoff_curve`.

Pair features (:func:`pair_features`, one row per (query, product) pair, all vectorised):

* ``distance``: ``||u - v||^2``; for unit vectors it equals ``2 - 2 cos(u, v)``, so it ranks
  exactly like cosine similarity (reversed).
* ``attr_match``: fraction of the query's attribute words (colour, material, gender, style,
  season, category, brand; English or Chinese, from :func:`build_lexicon`) that the product has.
* ``rating``: catalog rating mapped from [1, 5] to [0, 1].
* ``price_fit``: 1 inside the price range parsed from the query ("under 50", "50美元以下"),
  decaying exponentially outside it; 1 (neutral) when the query states no price.
* ``popularity``: ``log(1 + review_count)``, divided by the catalog maximum.

Example:
    >>> import numpy as np, pandas as pd
    >>> feats = pd.DataFrame({"distance": [0.2, 0.2], "attr_match": [1.0, 0.0],
    ...                       "rating": [0.5, 0.5], "price_fit": [1.0, 1.0],
    ...                       "popularity": [0.3, 0.3]})
    >>> hand_weighted_score(feats, {"distance": -1.0, "attr_match": 0.5}).round(2).tolist()
    [0.3, -0.2]
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from recsys_kit import constants as C
from recsys_kit.device import get_device
from recsys_kit.metrics import evaluate
from recsys_kit.progress import progress
from recsys_kit.runs import scores_to_run


@contextmanager
def cpu_threads_for(device: torch.device, n_values: int, limit: int = 2_000_000):
    """Run small CPU training on one thread (restored afterwards).

    Full-batch steps on a few thousand rows take microseconds of arithmetic; with several
    threads, synchronisation dominates (10x slower on a busy 2-core machine). Large problems
    and accelerators keep the caller's setting.
    """
    if device.type != "cpu" or n_values > limit:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: Feature columns produced by :func:`pair_features`, in order.
FEATURES: tuple[str, ...] = ("distance", "attr_match", "rating", "price_fit", "popularity")

#: Catalog columns whose values count as attribute words in queries.
MATCH_COLUMNS: tuple[str, ...] = (
    C.COL_COLOR,
    C.COL_MATERIAL,
    C.COL_GENDER,
    C.COL_STYLE,
    C.COL_SEASON,
    C.COL_CATEGORY,
    C.COL_BRAND,
)

#: Values that mean "not applicable / not restricted": never query words themselves.
NEUTRAL_VALUES = frozenset({"", "none", "unisex", "all-season"})

#: A neutral product value also satisfies these query values ("for women" accepts unisex).
NEUTRAL_SATISFIES: dict[tuple[str, str], tuple[str, ...]] = {
    (C.COL_GENDER, "unisex"): ("women", "men"),
    (C.COL_SEASON, "all-season"): ("spring", "summer", "autumn", "winter"),
}

#: Chinese words of MiniShop's attribute values and categories (the bilingual half of the
#: lexicon; the English half is the catalog's own values). Category entries list the shortest
#: head nouns, so "休闲长裤" is found through "长裤".
ZH_TERMS: dict[str, tuple[str, ...]] = {
    # colours
    "black": ("黑色",), "white": ("白色",), "grey": ("灰色",), "navy": ("藏青色",),
    "blue": ("蓝色",), "red": ("红色",), "pink": ("粉色",), "beige": ("米色",),
    "brown": ("棕色",), "green": ("绿色",), "yellow": ("黄色",), "purple": ("紫色",),
    "nude": ("裸色",), "coral": ("珊瑚色",), "berry": ("莓果色",), "silver": ("银色",),
    "gold": ("金色",), "ivory": ("象牙白",), "sand": ("沙色",), "honey": ("蜜色",),
    # materials (beauty: the formula)
    "cotton": ("纯棉",), "linen": ("亚麻",), "wool": ("羊毛",), "cashmere": ("羊绒",),
    "polyester": ("涤纶",), "denim": ("牛仔",), "silk": ("真丝",), "leather": ("皮革",),
    "suede": ("麂皮",), "canvas": ("帆布",), "mesh": ("网面",), "rubber": ("橡胶",),
    "nylon": ("尼龙",), "faux leather": ("人造革",), "cream": ("乳霜",), "liquid": ("液态",),
    "gel": ("啫喱",), "powder": ("粉质",), "stick": ("膏体",), "spray": ("喷雾",),
    "ceramic": ("陶瓷",), "glass": ("玻璃",), "wood": ("木质",), "stainless steel": ("不锈钢",),
    "cast iron": ("铸铁",), "soy wax": ("大豆蜡",), "velvet": ("天鹅绒",), "plastic": ("塑料",),
    "aluminium": ("铝合金",), "silicone": ("硅胶",), "foam": ("泡棉",), "cork": ("软木",),
    "latex": ("乳胶",), "carbon fiber": ("碳纤维",), "synthetic fibre": ("纤维",),
    # styles (beauty: the finish)
    "casual": ("休闲",), "formal": ("商务",), "sporty": ("运动风",), "vintage": ("复古",),
    "minimalist": ("极简",), "streetwear": ("街头",), "bohemian": ("波西米亚",),
    "classic": ("经典",), "elegant": ("优雅",), "matte": ("哑光",), "glossy": ("亮泽",),
    "satin": ("缎光",), "natural": ("自然",), "dewy": ("水润",), "modern": ("现代",),
    "rustic": ("田园",), "scandinavian": ("北欧",), "sleek": ("轻薄",), "rugged": ("坚固",),
    "gaming": ("电竞",), "professional": ("专业",), "training": ("训练",), "outdoor": ("户外",),
    # seasons and genders
    "spring": ("春季", "春天"), "summer": ("夏季", "夏天"), "autumn": ("秋季", "秋天"),
    "winter": ("冬季", "冬天"), "women": ("女士", "女款", "女式"), "men": ("男士", "男款", "男式"),
    # categories
    "t-shirt": ("t恤",), "trousers": ("长裤",), "pullover": ("套头衫",), "dress": ("连衣裙",),
    "coat": ("大衣",), "shirt": ("衬衫",), "sandal": ("凉鞋",), "sneaker": ("运动鞋", "跑步鞋"),
    "ankle boot": ("短靴", "踝靴"), "bag": ("包",), "lipstick": ("口红",), "foundation": ("粉底",),
    "moisturizer": ("面霜",), "serum": ("精华",), "perfume": ("香水",), "mascara": ("睫毛膏",),
    "sunscreen": ("防晒",), "face mask": ("面膜",), "makeup brush": ("化妆刷",),
    "mug": ("马克杯",), "bed sheets": ("床单",), "table lamp": ("台灯",),
    "throw pillow": ("抱枕",), "scented candle": ("香薰蜡烛",), "frying pan": ("平底锅", "煎锅"),
    "kitchen knife": ("厨刀", "厨师刀", "菜刀"), "headphones": ("耳机",),
    "smartwatch": ("智能手表",), "phone case": ("手机壳",), "power bank": ("充电宝", "移动电源"),
    "bluetooth speaker": ("蓝牙音箱", "音箱"), "charging cable": ("充电线", "数据线"),
    "yoga mat": ("瑜伽垫",), "dumbbell": ("哑铃",), "water bottle": ("水壶",),
    "sports socks": ("运动袜",), "tennis racket": ("网球拍",), "resistance band": ("弹力带",),
}  # fmt: skip

#: Extra English spellings and the title head nouns of categories (not the synonyms that
#: MiniShop's synonym queries use: those must be found by meaning, not by the lexicon).
EN_VARIANTS: dict[str, tuple[str, ...]] = {
    "grey": ("gray",), "women": ("woman", "womens", "women's", "ladies"),
    "men": ("man", "mens", "men's"), "aluminium": ("aluminum",), "t-shirt": ("t shirt",),
    "coat": ("overcoat",), "bag": ("tote",), "kitchen knife": ("chef's knife",),
    "table lamp": ("desk lamp",), "throw pillow": ("pillow",), "scented candle": ("candle",),
    "bed sheets": ("bed sheet", "sheet set"), "face mask": ("sheet mask",),
    "makeup brush": ("foundation brush",), "moisturizer": ("moisturizing cream",),
    "perfume": ("eau de parfum",), "smartwatch": ("smart watch",),
    "bluetooth speaker": ("speaker",), "charging cable": ("cable",),
    "yoga mat": ("exercise mat",), "water bottle": ("bottle",), "sports socks": ("socks",),
    "headphones": ("headphone",),
}  # fmt: skip

_LATIN = re.compile(r"[a-z0-9]")
_NUM = r"(\d+(?:\.\d+)?)"
_CUR_ZH = r"\s*(?:美元|美金|元|块钱|块|刀)?\s*"
#: (pattern, kind) with kind "hi" (upper bound), "lo" (lower bound) or "range".
_PRICE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), kind)
    for p, kind in (
        (rf"between\s*\$?\s*{_NUM}\s*(?:and|to|-)\s*\$?\s*{_NUM}", "range"),
        (rf"\$\s*{_NUM}\s*(?:-|to)\s*\$\s*{_NUM}", "range"),
        (rf"{_NUM}{_CUR_ZH}(?:-|~|到|至){_NUM}{_CUR_ZH}(?:之间|以内)?", "range_zh"),
        (rf"(?:under|below|less than|cheaper than|up to|at most|no more than|max|<=?)"
         rf"\s*\$?\s*{_NUM}", "hi"),
        (rf"\$?\s*{_NUM}\s*(?:dollars?|usd|\$)?\s*or (?:less|under|below)", "hi"),
        (rf"(?:over|above|more than|at least|min|>=?)\s*\$?\s*{_NUM}", "lo"),
        (rf"{_NUM}{_CUR_ZH}(?:以下|以内|之内)", "hi"),
        (rf"(?:不超过|不高于|不到|最多|(?<!不)低于|(?<!不)少于|(?<!不)小于){_CUR_ZH}{_NUM}", "hi"),
        (rf"{_NUM}{_CUR_ZH}以上", "lo"),
        (rf"(?:不低于|不少于|至少|(?<!不)高于|(?<!不)超过|(?<!不)大于){_CUR_ZH}{_NUM}", "lo"),
    )
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Lexicon and query parsing
# --------------------------------------------------------------------------------------------
def build_lexicon(
    catalog: pd.DataFrame,
    columns: Sequence[str] = MATCH_COLUMNS,
    zh_terms: Mapping[str, Sequence[str]] = ZH_TERMS,
    en_variants: Mapping[str, Sequence[str]] = EN_VARIANTS,
) -> pd.DataFrame:
    """Bilingual attribute lexicon derived from the catalog's attribute values.

    Every distinct non-neutral value of ``columns`` becomes an English term (the value itself,
    lower-cased, plus ``en_variants``) and Chinese terms (``zh_terms``). Values without a
    Chinese entry (brands, a new catalog) are matched in English only.

    Args:
        catalog: a frame with the ``columns``.
        columns: catalog columns whose values are attribute words.
        zh_terms: value -> Chinese words.
        en_variants: value -> other English spellings.

    Returns:
        DataFrame with columns ``term`` (lower-case), ``lang`` (``"en"``/``"zh"``), ``column``,
        ``value``; a term may map to several (column, value) pairs.

    Example:
        >>> lex = build_lexicon(pd.DataFrame({"color": ["red", "none"]}), columns=["color"])
        >>> sorted(lex["term"])
        ['red', '红色']
    """
    missing = [c for c in columns if c not in catalog.columns]
    if missing:
        raise KeyError(
            f"catalog has no column(s) {missing}; pass columns= with the attribute columns "
            f"it has (default {list(MATCH_COLUMNS)})"
        )
    rows: list[tuple[str, str, str, str]] = []
    for col in columns:
        for value in sorted(set(catalog[col].dropna().astype(str))):
            if value.strip().lower() in NEUTRAL_VALUES:
                continue
            terms_en = [value.lower(), *en_variants.get(value, ())]
            rows += [(t.lower(), "en", col, value) for t in terms_en]
            rows += [(t.lower(), "zh", col, value) for t in zh_terms.get(value, ())]
    lex = pd.DataFrame(rows, columns=["term", "lang", "column", "value"])
    return lex.drop_duplicates(ignore_index=True)


def _term_pattern(term: str) -> str:
    body = re.escape(term)
    if _LATIN.search(term[-1]):  # latin word: whole words only, optional plural ending
        body += r"(?:s|es)?(?![a-z0-9])"
    if _LATIN.search(term[0]):
        body = r"(?<![a-z0-9-])" + body  # "non-stick" is not the material "stick"
    return body


def _lexicon_regex(lexicon: pd.DataFrame) -> re.Pattern[str]:
    # Longest terms first: "faux leather" wins over "leather", "t-shirt" over "shirt".
    terms = sorted(set(lexicon["term"]), key=lambda t: (-len(t), t))
    return re.compile("|".join(f"(?P<t{i}>{_term_pattern(t)})" for i, t in enumerate(terms)))


def query_attributes(query: str, lexicon: pd.DataFrame) -> list[set[tuple[str, str]]]:
    """Attribute words found in a query, each as the set of (column, value) it may mean.

    Matching is case-insensitive, on whole words for English (plural ``s``/``es`` allowed) and
    on substrings for Chinese; overlapping terms resolve to the longest.

    Args:
        query: the query text.
        lexicon: from :func:`build_lexicon`.

    Returns:
        One set per distinct word found, in query order.

    Example:
        >>> lex = build_lexicon(pd.DataFrame({"color": ["black"], "category": ["ankle boot"]}),
        ...                     columns=["color", "category"])
        >>> query_attributes("Black ankle boots", lex)
        [{('color', 'black')}, {('category', 'ankle boot')}]
    """
    return _QueryParser(lexicon).parse(query)


class _QueryParser:
    """One compiled regex for a lexicon, reused over many queries."""

    def __init__(self, lexicon: pd.DataFrame) -> None:
        if lexicon.empty:
            raise ValueError("the lexicon is empty; build it with build_lexicon(catalog)")
        self.regex = _lexicon_regex(lexicon)
        terms = sorted(set(lexicon["term"]), key=lambda t: (-len(t), t))
        meaning = lexicon.groupby("term")[["column", "value"]].apply(
            lambda g: set(zip(g["column"], g["value"], strict=True))
        )
        self.meanings = [meaning[t] for t in terms]

    def parse(self, query: str) -> list[set[tuple[str, str]]]:
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        found: list[set[tuple[str, str]]] = []
        for m in self.regex.finditer(query.lower()):
            pairs = self.meanings[int(m.lastgroup[1:])]
            if pairs not in found:  # "black ... black" counts once
                found.append(pairs)
        return found


class PriceRange(NamedTuple):
    """Price bounds parsed from a query; ``None`` = unbounded on that side."""

    low: float | None
    high: float | None


def parse_price(query: str) -> PriceRange:
    """Price constraint stated in an English or Chinese query.

    Numbers are read in the catalog's currency (MiniShop: US dollars, which its Chinese
    queries write as 美元).

    Args:
        query: query text.

    Returns:
        :class:`PriceRange`; ``PriceRange(None, None)`` when the query states no price.

    Example:
        >>> parse_price("black sneakers under $50"), parse_price("运动鞋 50美元以下")
        (PriceRange(low=None, high=50.0), PriceRange(low=None, high=50.0))
        >>> parse_price("耳机 100元以上"), parse_price("between 20 and 40")
        (PriceRange(low=100.0, high=None), PriceRange(low=20.0, high=40.0))
    """
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, got {type(query).__name__}")
    text = query.lower()
    low: float | None = None
    high: float | None = None
    for pattern, kind in _PRICE_PATTERNS:
        m = pattern.search(text)
        if m is None:
            continue
        if kind.startswith("range"):
            a, b = sorted(float(x) for x in m.groups())
            low, high = low if low is not None else a, high if high is not None else b
        elif kind == "hi" and high is None:
            high = float(m.group(1))
        elif kind == "lo" and low is None:
            low = float(m.group(1))
    return PriceRange(low, high)


def price_fit(
    prices: np.ndarray, low: np.ndarray, high: np.ndarray, tolerance: float = 0.2
) -> np.ndarray:
    """How well prices fit ranges: 1 inside, ``exp(-relative gap / tolerance)`` outside.

    Args:
        prices: (n,) prices.
        low, high: (n,) bounds, NaN = unbounded (so a query without a price gives 1).
        tolerance: relative overshoot that costs a factor e (0.2: 20 % over the cap -> 0.37).

    Returns:
        (n,) float64 in (0, 1].

    Example:
        >>> price_fit(np.array([40.0, 60.0]), np.full(2, np.nan), np.array([50.0, 50.0])).round(3)
        array([1.   , 0.368])
    """
    if tolerance <= 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance}")
    p = np.asarray(prices, dtype=np.float64)
    lo = np.asarray(low, dtype=np.float64)
    hi = np.asarray(high, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        over = np.where(np.isnan(hi), 0.0, np.maximum(p - hi, 0.0) / hi)
        under = np.where(np.isnan(lo), 0.0, np.maximum(lo - p, 0.0) / lo)
    return np.exp(-(over + under) / tolerance)


# --------------------------------------------------------------------------------------------
# Pair features
# --------------------------------------------------------------------------------------------
def _positions(ids: pd.Series, index_ids: pd.Series, what: str) -> np.ndarray:
    lookup = pd.Index(index_ids.astype(str))
    if not lookup.is_unique:
        raise ValueError(f"{what} ids are not unique; drop duplicate rows first")
    pos = lookup.get_indexer(ids.astype(str))
    if (pos < 0).any():
        bad = ids.astype(str)[pos < 0].iloc[0]
        raise KeyError(f"pair refers to {what} {bad!r}, which is not in the {what} frame")
    return pos


def _product_attr_matrix(catalog: pd.DataFrame, keys: list[tuple[str, str]]) -> np.ndarray:
    """(n_products, n_keys) bool: does the product satisfy query value ``key``."""
    out = np.zeros((len(catalog), len(keys)), dtype=bool)
    for j, (col, value) in enumerate(keys):
        vals = catalog[col].astype(str).to_numpy()
        ok = vals == value
        for neutral, satisfied in NEUTRAL_SATISFIES.items():
            if neutral[0] == col and value in satisfied:
                ok |= vals == neutral[1]
        out[:, j] = ok
    return out


def attribute_match(
    queries: Sequence[str],
    catalog: pd.DataFrame,
    lexicon: pd.DataFrame | None = None,
) -> np.ndarray:
    """Attribute match of every query with every product (dense matrix).

    ``s[q, p]`` = (query words whose meaning the product has) / (query words); 0 when the
    query has no attribute word (constant within the query, so it does not change its ranking).
    A unisex product satisfies "women"/"men", an all-season one every season.

    Args:
        queries: query texts.
        catalog: products (rows of the result).
        lexicon: from :func:`build_lexicon`; default built from ``catalog``.

    Returns:
        float32 array (n_queries, n_products) in [0, 1].

    Example:
        >>> cat = pd.DataFrame({"color": ["red", "blue"], "category": ["dress", "dress"]})
        >>> attribute_match(["red dress"], cat, build_lexicon(cat, ["color", "category"]))
        array([[1. , 0.5]], dtype=float32)
    """
    lex = build_lexicon(catalog) if lexicon is None else lexicon
    parser = _QueryParser(lex)
    parsed = [parser.parse(q) for q in queries]
    keys = sorted({k for words in parsed for word in words for k in word})
    key_pos = {k: j for j, k in enumerate(keys)}
    words = [word for q_words in parsed for word in q_words]
    out = np.zeros((len(parsed), len(catalog)), dtype=np.float32)
    if not words:
        return out
    # word x key incidence, product x key satisfaction -> word x product hits (one matmul)
    word_keys = np.zeros((len(words), len(keys)), dtype=np.float32)
    for i, word in enumerate(words):
        word_keys[i, [key_pos[k] for k in word]] = 1.0
    prod_keys = _product_attr_matrix(catalog, keys).astype(np.float32)
    hits = (word_keys @ prod_keys.T) > 0  # (n_words, n_products)
    owner = np.repeat(np.arange(len(parsed)), [len(w) for w in parsed])
    counts = np.zeros_like(out)
    np.add.at(counts, owner, hits.astype(np.float32))
    n_words = np.array([len(w) for w in parsed], dtype=np.float32)
    np.divide(counts, n_words[:, None], out=out, where=n_words[:, None] > 0)
    return out


def pair_features(
    queries_df: pd.DataFrame,
    catalog_df: pd.DataFrame,
    pairs: pd.DataFrame,
    query_vecs: np.ndarray,
    product_vecs: np.ndarray,
    lexicon: pd.DataFrame | None = None,
    price_tolerance: float = 0.2,
) -> pd.DataFrame:
    """Features of (query, product) pairs (definitions in the module doc).

    Args:
        queries_df: queries with ``query_id`` and ``query``; row i <-> ``query_vecs[i]``.
        catalog_df: products with ``product_id``, attributes, ``price``, ``rating``,
            ``review_count``; row i <-> ``product_vecs[i]``.
        pairs: frame with ``query_id`` and ``product_id`` columns (other columns are kept).
        query_vecs: (n_queries, dim) embeddings (unit rows for the ``2 - 2 cos`` reading).
        product_vecs: (n_products, dim) embeddings from the same model.
        lexicon: from :func:`build_lexicon`; default built from ``catalog_df``.
        price_tolerance: see :func:`price_fit`.

    Returns:
        ``pairs`` (fresh index) with the :data:`FEATURES` columns appended (float64).

    Example:
        >>> feats = pair_features(queries, catalog, pairs, qv, pv)      # doctest: +SKIP
        >>> feats[list(FEATURES)].describe()                            # doctest: +SKIP
    """
    for name, df, cols in (
        ("queries_df", queries_df, [C.COL_QUERY_ID, C.COL_QUERY]),
        ("catalog_df", catalog_df, [C.COL_PRODUCT_ID, C.COL_PRICE, C.COL_RATING,
                                    C.COL_REVIEW_COUNT]),
        ("pairs", pairs, [C.COL_QUERY_ID, C.COL_PRODUCT_ID]),
    ):  # fmt: skip
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise KeyError(f"{name} lacks column(s) {missing}")
    qv = np.asarray(query_vecs, dtype=np.float32)
    pv = np.asarray(product_vecs, dtype=np.float32)
    if qv.ndim != 2 or pv.ndim != 2 or qv.shape[1] != pv.shape[1]:
        raise ValueError(
            f"query_vecs {qv.shape} and product_vecs {pv.shape} must be 2-D with the same "
            "dimension; encode queries and products with the same model"
        )
    if len(qv) != len(queries_df) or len(pv) != len(catalog_df):
        raise ValueError(
            f"got {len(qv)} query vectors for {len(queries_df)} queries and {len(pv)} product "
            f"vectors for {len(catalog_df)} products; rows must be aligned"
        )
    qi = _positions(pairs[C.COL_QUERY_ID], queries_df[C.COL_QUERY_ID], "query")
    pi = _positions(pairs[C.COL_PRODUCT_ID], catalog_df[C.COL_PRODUCT_ID], "product")
    out = pairs.reset_index(drop=True).copy()
    # ||u - v||^2 directly (not 2 - 2 cos): also right for vectors that are not unit length.
    out["distance"] = ((qv[qi] - pv[pi]) ** 2).sum(axis=1).astype(np.float64)
    # attribute match: only the queries and products that occur in pairs
    uq, q_inv = np.unique(qi, return_inverse=True)
    up, p_inv = np.unique(pi, return_inverse=True)
    lex = build_lexicon(catalog_df) if lexicon is None else lexicon
    sub_cat = catalog_df.iloc[up].reset_index(drop=True)
    texts = queries_df[C.COL_QUERY].astype(str).to_numpy()[uq].tolist()
    out["attr_match"] = attribute_match(texts, sub_cat, lex)[q_inv, p_inv].astype(np.float64)
    rating = catalog_df[C.COL_RATING].astype(float).to_numpy()
    rating = np.where(np.isnan(rating), np.nanmean(rating), rating)
    out["rating"] = np.clip((rating[pi] - 1.0) / 4.0, 0.0, 1.0)
    bounds = np.array([parse_price(t) for t in texts], dtype=float)  # None -> nan
    price = catalog_df[C.COL_PRICE].astype(float).to_numpy()
    out["price_fit"] = price_fit(price[pi], bounds[q_inv, 0], bounds[q_inv, 1], price_tolerance)
    pop = np.log1p(catalog_df[C.COL_REVIEW_COUNT].astype(float).clip(lower=0).to_numpy())
    out["popularity"] = pop[pi] / pop.max() if pop.max() > 0 else 0.0
    return out


def _matrix(features: pd.DataFrame | np.ndarray, names: Sequence[str] | None) -> np.ndarray:
    if isinstance(features, pd.DataFrame):
        cols = list(names) if names is not None else [c for c in FEATURES if c in features]
        missing = [c for c in cols if c not in features.columns]
        if missing or not cols:
            raise KeyError(
                f"features lack column(s) {missing or list(FEATURES)}; build them with "
                "pair_features()"
            )
        x = np.array(features[cols].to_numpy(dtype=np.float64))  # writable copy for torch
    else:
        x = np.array(features, dtype=np.float64)  # a copy: callers' arrays stay untouched
        if x.ndim != 2:
            raise ValueError(f"features must be 2-D (n_pairs, n_features), got {x.shape}")
        if names is not None and len(names) != x.shape[1]:
            raise ValueError(f"{len(names)} feature names for {x.shape[1]} columns")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf; fill or drop those pairs first")
    return x


# --------------------------------------------------------------------------------------------
# Hand-weighted score (the material's formula, fixed)
# --------------------------------------------------------------------------------------------
#: The material's weights as a score: distance counts against, match and rating for.
DEFAULT_HAND_WEIGHTS: dict[str, float] = {"distance": -1.0, "attr_match": 0.5, "rating": 0.2}


def material_loss_terms(features: pd.DataFrame, w_s: float, w_r: float) -> np.ndarray:
    """The material's per-product term ``||u - v_i||^2 + w_s s_i + w_r r_i`` (for teaching).

    Ranking by it ascending (smallest "loss" first) prefers *worse* matches and ratings at
    equal distance; :func:`hand_weighted_score` is the fix.

    Example:
        >>> f = pd.DataFrame({"distance": [0.5, 0.5], "attr_match": [0.0, 0.0],
        ...                   "rating": [1.0, 0.2]})
        >>> int(material_loss_terms(f, w_s=0.5, w_r=0.5).argmin())  # the badly rated product
        1
    """
    x = _matrix(features, ["distance", "attr_match", "rating"])
    return x[:, 0] + w_s * x[:, 1] + w_r * x[:, 2]


def hand_weighted_score(
    features: pd.DataFrame, weights: Mapping[str, float] | None = None
) -> np.ndarray:
    """Score = sum of ``weights[f] * features[f]`` (larger = better).

    Args:
        features: from :func:`pair_features`.
        weights: feature -> weight; default :data:`DEFAULT_HAND_WEIGHTS`
            (``-distance + 0.5 * attr_match + 0.2 * rating``). Give ``distance`` a negative
            weight: a larger distance means a worse match.

    Returns:
        (n_pairs,) float64 scores.

    Example:
        >>> hand_weighted_score(pd.DataFrame({"distance": [0.1, 0.4]})).tolist()
        [-0.1, -0.4]
    """
    w = dict(DEFAULT_HAND_WEIGHTS if weights is None else weights)
    names = [n for n in w if n in features.columns]
    unknown = [n for n in w if n not in features.columns]
    if unknown and weights is not None:
        raise KeyError(f"weights name feature(s) {unknown} missing from features")
    x = _matrix(features, names)
    return x @ np.array([w[n] for n in names], dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Learned linear ranker
# --------------------------------------------------------------------------------------------
def _group_codes(groups: Sequence[Hashable] | np.ndarray, n: int) -> np.ndarray:
    g = pd.Series(np.asarray(groups, dtype=object))
    if len(g) != n:
        raise ValueError(f"got {len(g)} group ids for {n} rows; pass one query id per row")
    return pd.factorize(g)[0]


def ranking_pairs(
    labels: np.ndarray,
    groups: Sequence[Hashable] | np.ndarray,
    max_pairs_per_group: int | None = None,
    seed: int = C.SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) within the same group with ``labels[i] > labels[j]``.

    Args:
        labels: (n,) graded labels.
        groups: (n,) group (query) ids.
        max_pairs_per_group: sample at most this many pairs per group (None = all).
        seed: sampling seed.

    Returns:
        ``(better, worse)`` int64 arrays of equal length.

    Example:
        >>> ranking_pairs(np.array([2, 0, 1]), ["q", "q", "q"])
        (array([0, 0, 2]), array([1, 2, 1]))
    """
    y = np.asarray(labels, dtype=np.float64)
    codes = _group_codes(groups, len(y))
    rng = np.random.default_rng(seed)
    better, worse = [], []
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for rows in np.split(order, bounds):
        d = y[rows][:, None] - y[rows][None, :]
        bi, wi = np.nonzero(d > 0)
        if max_pairs_per_group is not None and len(bi) > max_pairs_per_group:
            keep = np.sort(rng.choice(len(bi), max_pairs_per_group, replace=False))
            bi, wi = bi[keep], wi[keep]
        better.append(rows[bi])
        worse.append(rows[wi])
    if not better:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(better).astype(np.int64), np.concatenate(worse).astype(np.int64)


@dataclass
class LinearRanker:
    """A fitted linear score ``x @ w + b``; ``weights`` are in raw feature units.

    Attributes:
        feature_names: feature order.
        weights: feature -> weight on the raw feature (score units per feature unit).
        bias: intercept (only meaningful for the pointwise loss).
        standardized_weights: feature -> weight per standard deviation of the feature,
            comparable across features (read these to compare importance).
        loss: ``"pointwise"`` or ``"pairwise"``.
        history: training loss per epoch.
    """

    feature_names: list[str]
    weights: dict[str, float]
    bias: float
    standardized_weights: dict[str, float]
    loss: str
    history: list[float] = field(default_factory=list, repr=False)

    def score(self, features: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Scores of feature rows (a frame is read by ``feature_names``)."""
        x = _matrix(features, self.feature_names if isinstance(features, pd.DataFrame) else None)
        if x.shape[1] != len(self.feature_names):
            raise ValueError(f"features have {x.shape[1]} columns, the model {len(self.weights)}")
        return x @ np.array([self.weights[n] for n in self.feature_names]) + self.bias


def _standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 1e-12, std, 1.0)  # constant feature: leave it unscaled


def fit_linear_ranker(
    features: pd.DataFrame | np.ndarray,
    labels: Sequence[float] | np.ndarray,
    groups: Sequence[Hashable] | np.ndarray,
    loss: Literal["pointwise", "pairwise"] = "pairwise",
    epochs: int = 300,
    lr: float = 0.05,
    seed: int = C.SEED,
    feature_names: Sequence[str] | None = None,
    weight_decay: float = 1e-4,
    max_pairs_per_group: int | None = 2000,
    device: str | torch.device | None = None,
) -> LinearRanker:
    """Learn the weights of a linear score from graded labels.

    * ``"pointwise"``: mean squared error between the score and ``label / max(label)``.
    * ``"pairwise"``: RankNet, ``log(1 + exp(-(s_i - s_j)))`` over pairs of the same query
      with ``label_i > label_j`` (only the order within a query matters).

    Features are standardised for training (full-batch Adam) and the weights mapped back.

    Args:
        features: (n, f) frame (columns :data:`FEATURES` or ``feature_names``) or array.
        labels: (n,) grades, e.g. ESCI 3/2/1/0.
        groups: (n,) query id of each row.
        loss: ``"pointwise"`` or ``"pairwise"``.
        epochs, lr: full-batch Adam steps and learning rate.
        seed: seed of the pair sampling and of torch.
        feature_names: column names (default: :data:`FEATURES` present in the frame).
        weight_decay: L2 penalty (keeps pairwise weights finite on separable data).
        max_pairs_per_group: cap on sampled pairs per query (pairwise).
        device: torch device (default :func:`recsys_kit.device.get_device`).

    Returns:
        :class:`LinearRanker`.

    Example:
        >>> rng = np.random.default_rng(0); x = rng.normal(size=(200, 2))
        >>> y = (x @ [2.0, -1.0] > 0).astype(int); g = np.repeat(np.arange(20), 10)
        >>> m = fit_linear_ranker(x, y, g, epochs=200)
        >>> m.weights["x0"] > 0 > m.weights["x1"]
        True
    """
    if loss not in ("pointwise", "pairwise"):
        raise ValueError(f"loss must be 'pointwise' or 'pairwise', got {loss!r}")
    if epochs < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1 and lr > 0, got epochs={epochs}, lr={lr}")
    x = _matrix(features, feature_names)
    if feature_names is None:
        feature_names = (
            [c for c in FEATURES if c in features.columns]
            if isinstance(features, pd.DataFrame)
            else [f"x{i}" for i in range(x.shape[1])]
        )
    y = np.asarray(labels, dtype=np.float64)
    if y.shape != (len(x),):
        raise ValueError(f"labels must be (n,) = ({len(x)},), got {y.shape}")
    mean, std = _standardize(x)
    dev = get_device(device)
    torch.manual_seed(seed)
    xt = torch.as_tensor((x - mean) / std, dtype=torch.float32, device=dev)
    w = torch.zeros(x.shape[1], device=dev, requires_grad=True)
    b = torch.zeros((), device=dev, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr)
    if loss == "pairwise":
        bi, wi = ranking_pairs(y, groups, max_pairs_per_group, seed)
        if len(bi) == 0:
            raise ValueError(
                "no pair of rows in the same group has different labels; pairwise training "
                "needs queries with at least two grades (or use loss='pointwise')"
            )
        # linear score: s_i - s_j = (x_i - x_j) @ w, so the pair differences are fixed inputs
        diff = torch.as_tensor(((x[bi] - x[wi]) / std).astype(np.float32), device=dev)
    else:
        _group_codes(groups, len(y))  # validate length
        top = y.max() if y.max() > 0 else 1.0
        yt = torch.as_tensor(y / top, dtype=torch.float32, device=dev)
    history: list[float] = []
    with cpu_threads_for(dev, x.size if loss == "pointwise" else diff.numel()):
        for _ in progress(range(epochs), "ranker epochs"):
            opt.zero_grad()
            if loss == "pairwise":
                obj = nn.functional.softplus(-(diff @ w)).mean()
            else:
                obj = nn.functional.mse_loss(xt @ w + b, yt)
            (obj + weight_decay * (w * w).sum()).backward()
            opt.step()
            history.append(float(obj.detach()))
    w_std = w.detach().cpu().double().numpy()
    w_raw = w_std / std
    bias = float(b.detach().cpu()) - float((w_raw * mean).sum())
    names = list(feature_names)
    return LinearRanker(
        feature_names=names,
        weights=dict(zip(names, w_raw.tolist(), strict=True)),
        bias=bias if loss == "pointwise" else 0.0,
        standardized_weights=dict(zip(names, w_std.tolist(), strict=True)),
        loss=loss,
        history=history,
    )


# --------------------------------------------------------------------------------------------
# Multi-task ranker: relevance + purchase
# --------------------------------------------------------------------------------------------
def purchase_rate(
    interactions: pd.DataFrame,
    product_ids: Sequence[str],
    split: str | None = "train",
    prior_strength: float = 10.0,
) -> np.ndarray:
    """Smoothed product-level purchase rate, the purchase target of the multi-task model.

    Definition: among the users who interacted with the product (any event) in ``split``, the
    fraction who bought it, shrunk toward the global rate with ``prior_strength`` pseudo-users:
    ``(buyers + m * global) / (users + m)``. MiniShop's log has no query column, so this is a
    *query-independent* propensity ("does this product sell once seen"), not "bought after
    this query"; the model can only learn it from query-independent features (rating, price,
    popularity). Use the train split for targets and the test split to evaluate.

    Args:
        interactions: log with ``user_id``, ``product_id``, ``event``, ``split``.
        product_ids: products to return rates for (catalog order, or the pairs' products).
        split: ``"train"``, ``"test"`` or None (all rows).
        prior_strength: pseudo-users of the shrinkage (0 = raw rate).

    Returns:
        (len(product_ids),) float64 rates in [0, 1]; unseen products get the global rate.

    Example:
        >>> log = pd.DataFrame({"user_id": ["u1", "u2", "u1"], "product_id": ["a", "a", "a"],
        ...                     "event": ["view", "view", "purchase"], "split": "train"})
        >>> purchase_rate(log, ["a", "b"], prior_strength=0).tolist()
        [0.5, 0.5]
    """
    cols = [C.COL_USER_ID, C.COL_PRODUCT_ID, C.COL_EVENT]
    missing = [c for c in cols + ([C.COL_SPLIT] if split else []) if c not in interactions]
    if missing:
        raise KeyError(f"interactions lack column(s) {missing}; load with load_interactions()")
    if prior_strength < 0:
        raise ValueError(f"prior_strength must be >= 0, got {prior_strength}")
    log = interactions if split is None else interactions[interactions[C.COL_SPLIT] == split]
    if log.empty:
        raise ValueError(f"no interactions in split {split!r}")
    users = log.groupby(C.COL_PRODUCT_ID)[C.COL_USER_ID].nunique()
    buys = log[log[C.COL_EVENT] == "purchase"].groupby(C.COL_PRODUCT_ID)[C.COL_USER_ID].nunique()
    buys = buys.reindex(users.index, fill_value=0)
    global_rate = float(buys.sum() / users.sum())
    rate = (buys + prior_strength * global_rate) / (users + prior_strength)
    ids = pd.Index(np.asarray(product_ids).astype(str))
    return rate.reindex(ids).fillna(global_rate).to_numpy(dtype=np.float64)


def purchase_qrels(
    interactions: pd.DataFrame, pairs: pd.DataFrame, split: str = "test"
) -> dict[str, dict[str, int]]:
    """Purchase "relevance": per query, the candidate products bought in ``split`` (gain 1).

    Queries none of whose candidates was bought are dropped (they would score 0 whatever the
    ranking). Evaluate with ``metrics.evaluate(purchase_qrels(...), run, ["ndcg@10"])``.

    Example:
        >>> log = pd.DataFrame({"user_id": ["u"], "product_id": ["a"], "event": ["purchase"],
        ...                     "split": ["test"]})
        >>> purchase_qrels(log, pd.DataFrame({"query_id": ["q", "q"], "product_id": ["a", "b"]}))
        {'q': {'a': 1}}
    """
    log = interactions[
        (interactions[C.COL_SPLIT] == split) & (interactions[C.COL_EVENT] == "purchase")
    ]
    bought = set(log[C.COL_PRODUCT_ID].astype(str))
    out: dict[str, dict[str, int]] = {}
    for qid, pid in zip(pairs[C.COL_QUERY_ID].astype(str), pairs[C.COL_PRODUCT_ID].astype(str)):
        if pid in bought:
            out.setdefault(qid, {})[pid] = 1
    return out


def _zscore_by_group(s: np.ndarray, codes: np.ndarray) -> np.ndarray:
    df = pd.DataFrame({"s": s, "g": codes})
    grp = df.groupby("g")["s"]
    std = grp.transform("std", ddof=0).to_numpy()
    z = (s - grp.transform("mean").to_numpy()) / np.where(std > 1e-12, std, 1.0)
    return z


class MultiTaskRanker(nn.Module):
    """Shared layer over pair features -> relevance head and purchase head.

    Trained on ``alpha * L_rel + (1 - alpha) * L_buy``, both binary cross-entropy with soft
    targets: ``grade / max_grade`` for relevance, the purchase rate for buying. Ranking score
    (:meth:`score`): ``mix * z(rel) + (1 - mix) * z(buy)``, each head's logit z-scored within
    its query so the two are on one scale; ``mix`` defaults to the training ``alpha``.

    Args:
        n_features: input width.
        hidden: width of the shared layer.
        seed: seed of the initial weights.

    Example:
        >>> m = MultiTaskRanker(5).fit(x, grades, buy, groups, alpha=0.7)   # doctest: +SKIP
        >>> m.score(x, groups)                                             # doctest: +SKIP
    """

    def __init__(self, n_features: int, hidden: int = 16, seed: int = C.SEED) -> None:
        super().__init__()
        if n_features < 1 or hidden < 1:
            raise ValueError(f"need n_features >= 1 and hidden >= 1, got {n_features}, {hidden}")
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.shared = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU())
        self.relevance_head = nn.Linear(hidden, 1)
        self.purchase_head = nn.Linear(hidden, 1)
        torch.random.set_rng_state(gen_state)  # do not disturb the caller's random stream
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.alpha = 0.5
        self.feature_names: list[str] | None = None
        self.history: list[dict[str, float]] = []

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw features -> (relevance logit, purchase logit), each (n,)."""
        h = self.shared((x - self.mean) / self.std)
        return self.relevance_head(h).squeeze(-1), self.purchase_head(h).squeeze(-1)

    def _x(self, features: pd.DataFrame | np.ndarray) -> torch.Tensor:
        names = self.feature_names if isinstance(features, pd.DataFrame) else None
        x = _matrix(features, names)
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"features have {x.shape[1]} columns, the model {self.mean.shape[0]}")
        return torch.tensor(x, dtype=torch.float32, device=self.mean.device)

    def fit(
        self,
        features: pd.DataFrame | np.ndarray,
        grades: Sequence[float] | np.ndarray,
        buy: Sequence[float] | np.ndarray,
        alpha: float = 0.5,
        epochs: int = 300,
        lr: float = 0.01,
        max_grade: float | None = None,
        device: str | torch.device | None = None,
    ) -> MultiTaskRanker:
        """Train on ``alpha * L_rel + (1 - alpha) * L_buy`` (full batch, Adam).

        Args:
            features: (n, f) pair features.
            grades: (n,) relevance grades (0 = irrelevant).
            buy: (n,) purchase targets in [0, 1] (:func:`purchase_rate`).
            alpha: weight of the relevance loss, in [0, 1].
            epochs, lr: Adam steps and learning rate.
            max_grade: grade mapped to target 1 (default: the largest grade seen).
            device: torch device (default :func:`recsys_kit.device.get_device`).

        Returns:
            self, trained.
        """
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if isinstance(features, pd.DataFrame):
            self.feature_names = [c for c in FEATURES if c in features.columns]
        x = _matrix(features, self.feature_names)
        g = np.asarray(grades, dtype=np.float64)
        p = np.asarray(buy, dtype=np.float64)
        if g.shape != (len(x),) or p.shape != (len(x),):
            raise ValueError(f"grades {g.shape} and buy {p.shape} must both be ({len(x)},)")
        if (p < 0).any() or (p > 1).any():
            raise ValueError("buy targets must lie in [0, 1] (rates); see purchase_rate()")
        top = max_grade if max_grade is not None else (g.max() if g.max() > 0 else 1.0)
        dev = get_device(device)
        self.to(dev)
        mean, std = _standardize(x)
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))
        xt = torch.tensor(x, dtype=torch.float32, device=dev)
        rel_t = torch.tensor(np.clip(g / top, 0, 1), dtype=torch.float32, device=dev)
        buy_t = torch.tensor(p, dtype=torch.float32, device=dev)
        # Start each head at the logit of its target's mean: purchase rates average ~0.04, far
        # from sigmoid(0) = 0.5, and a few hundred Adam steps would otherwise be spent (and, at
        # the default lr, not enough) just on moving the bias there.
        with torch.no_grad():
            for head, target in ((self.relevance_head, rel_t), (self.purchase_head, buy_t)):
                rate = float(target.mean().clamp(1e-4, 1 - 1e-4))
                head.bias.fill_(float(np.log(rate / (1 - rate))))
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        bce = nn.functional.binary_cross_entropy_with_logits
        self.alpha = float(alpha)
        self.history = []
        self.train()
        with cpu_threads_for(dev, x.shape[0] * self.relevance_head.in_features):
            for _ in progress(range(epochs), "multi-task epochs"):
                opt.zero_grad()
                rel, purchase = self(xt)
                l_rel, l_buy = bce(rel, rel_t), bce(purchase, buy_t)
                (alpha * l_rel + (1 - alpha) * l_buy).backward()
                opt.step()
                self.history.append({"rel": float(l_rel.detach()), "buy": float(l_buy.detach())})
        self.eval()
        return self

    @torch.no_grad()
    def predict(self, features: pd.DataFrame | np.ndarray) -> dict[str, np.ndarray]:
        """Head probabilities: ``{"relevance": (n,), "purchase": (n,)}``."""
        rel, purchase = self(self._x(features))
        return {
            "relevance": torch.sigmoid(rel).cpu().double().numpy(),
            "purchase": torch.sigmoid(purchase).cpu().double().numpy(),
        }

    @torch.no_grad()
    def score(
        self,
        features: pd.DataFrame | np.ndarray,
        groups: Sequence[Hashable] | np.ndarray | None = None,
        mix: float | None = None,
    ) -> np.ndarray:
        """Ranking score ``mix * z(rel) + (1 - mix) * z(buy)`` (z within each group).

        Args:
            features: (n, f) pair features.
            groups: (n,) query ids (None: one group).
            mix: head mix in [0, 1]; default the training ``alpha``.

        Returns:
            (n,) float64 scores.
        """
        m = self.alpha if mix is None else float(mix)
        if not 0.0 <= m <= 1.0:
            raise ValueError(f"mix must be in [0, 1], got {m}")
        rel, purchase = self(self._x(features))
        n = rel.shape[0]
        codes = np.zeros(n, dtype=np.int64) if groups is None else _group_codes(groups, n)
        z_rel = _zscore_by_group(rel.cpu().double().numpy(), codes)
        z_buy = _zscore_by_group(purchase.cpu().double().numpy(), codes)
        return m * z_rel + (1.0 - m) * z_buy


# --------------------------------------------------------------------------------------------
# Splits, runs and evaluation
# --------------------------------------------------------------------------------------------
def train_test_queries(
    queries: pd.DataFrame | Sequence[str],
    frac: float = 0.3,
    seed: int = C.SEED,
    stratify: str | None = C.COL_QUERY_KIND,
) -> tuple[list[str], list[str]]:
    """Split query ids into train and held-out test queries.

    Args:
        queries: the queries frame (``query_id`` column) or a list of ids.
        frac: fraction held out as test, in (0, 1).
        seed: shuffle seed.
        stratify: column to split within (each query kind keeps its share); None or a
            missing column = plain random split.

    Returns:
        ``(train_ids, test_ids)``, each in the input order.

    Example:
        >>> train, test = train_test_queries([f"q{i}" for i in range(10)], frac=0.3)
        >>> len(train), len(test)
        (7, 3)
    """
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac (the test share) must be in (0, 1), got {frac}")
    if isinstance(queries, pd.DataFrame):
        if C.COL_QUERY_ID not in queries.columns:
            raise KeyError("queries frame has no 'query_id' column")
        ids = queries[C.COL_QUERY_ID].astype(str).to_numpy()
        strata = (
            queries[stratify].astype(str).to_numpy()
            if stratify and stratify in queries.columns
            else np.zeros(len(ids), dtype=str)
        )
    else:
        ids = np.asarray(list(queries)).astype(str)
        strata = np.zeros(len(ids), dtype=str)
    if len(set(ids)) != len(ids):
        raise ValueError("query ids are not unique")
    if len(ids) < 2:
        raise ValueError("need at least two queries to split")
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(ids), dtype=bool)
    for s in sorted(set(strata)):
        rows = np.flatnonzero(strata == s)
        # at least one test and one train query per stratum when it has two or more
        n_test = int(np.clip(round(frac * len(rows)), 1, len(rows) - 1)) if len(rows) > 1 else 0
        is_test[rng.permutation(rows)[:n_test]] = True
    return ids[~is_test].tolist(), ids[is_test].tolist()


def candidate_pairs(
    query_ids: Sequence[str],
    query_vecs: np.ndarray,
    product_ids: Sequence[str],
    product_vecs: np.ndarray,
    k: int = 50,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Top-k semantic candidates per query: the pool the scorers re-rank.

    Args:
        query_ids, query_vecs: ids and (n_q, d) vectors, aligned.
        product_ids, product_vecs: ids and (n_p, d) vectors, aligned.
        k: candidates per query.
        device: for :func:`recsys_kit.ranking.topk`.

    Returns:
        Frame ``query_id``, ``product_id``, ``rank`` (1-based), ``cosine``.
    """
    from recsys_kit.ranking import topk

    if len(query_ids) != len(query_vecs) or len(product_ids) != len(product_vecs):
        raise ValueError("ids and vectors must be aligned (same number of rows)")
    scores, idx = topk(np.asarray(query_vecs), np.asarray(product_vecs), k=k, device=device)
    n_q = len(query_ids)
    return pd.DataFrame(
        {
            C.COL_QUERY_ID: np.repeat(np.asarray(query_ids).astype(str), k),
            C.COL_PRODUCT_ID: np.asarray(product_ids).astype(str)[idx.ravel()],
            "rank": np.tile(np.arange(1, k + 1), n_q),
            "cosine": scores.ravel().astype(np.float64),
        }
    )


def attach_grades(
    pairs: pd.DataFrame, qrels: pd.DataFrame | Mapping[str, Mapping[str, int]]
) -> pd.DataFrame:
    """Add a ``grade`` column from the qrels; unjudged pairs get 0 (treated as irrelevant).

    Example:
        >>> attach_grades(pd.DataFrame({"query_id": ["q", "q"], "product_id": ["a", "b"]}),
        ...               {"q": {"a": 3}})["grade"].tolist()
        [3, 0]
    """
    if isinstance(qrels, pd.DataFrame):
        lookup = {
            (str(q), str(p)): int(g)
            for q, p, g in zip(qrels[C.COL_QUERY_ID], qrels[C.COL_PRODUCT_ID], qrels[C.COL_GRADE])
        }
    else:
        lookup = {(str(q), str(p)): int(g) for q, d in qrels.items() for p, g in d.items()}
    keys = zip(pairs[C.COL_QUERY_ID].astype(str), pairs[C.COL_PRODUCT_ID].astype(str))
    out = pairs.copy()
    out[C.COL_GRADE] = [lookup.get(k, 0) for k in keys]
    return out


DEFAULT_METRICS = ("ndcg@10", "recall@10", "mrr@10")


def _restrict(qrels: Mapping, query_ids: Iterable[str] | None) -> dict:
    if query_ids is None:
        return dict(qrels)
    keep = {str(q) for q in query_ids}
    out = {q: d for q, d in qrels.items() if str(q) in keep}
    if not out:
        raise ValueError("none of the query_ids is in the qrels; check the ids and the split")
    return out


def compare_scorers(
    pairs: pd.DataFrame,
    scorers: Mapping[str, Sequence[float] | np.ndarray],
    qrels: Mapping[str, Mapping[str, int]],
    query_ids: Iterable[str] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> pd.DataFrame:
    """Evaluate several scorings of the same pairs with :func:`recsys_kit.metrics.evaluate`.

    Args:
        pairs: candidate pairs (``query_id``, ``product_id``).
        scorers: name -> one score per pair, e.g.
            ``{"semantic": -feats["distance"], "learned": ranker.score(feats)}``.
        qrels: ``{query_id: {product_id: grade}}`` (e.g. ``datasets.qrels_dict``).
        query_ids: evaluate on these queries only (the held-out ones); None = all qrels queries.
        metrics: metric names.

    Returns:
        Frame indexed by scorer name, one column per metric.
    """
    qr = _restrict(qrels, query_ids)
    rows = {
        name: evaluate(qr, scores_to_run(pairs, s), list(metrics)) for name, s in scorers.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def tradeoff_curve(
    table: pd.DataFrame,
    alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    *,
    train_queries: Iterable[str],
    test_queries: Iterable[str],
    buy_qrels: Mapping[str, Mapping[str, int]],
    qrels: Mapping[str, Mapping[str, int]] | None = None,
    buy_col: str = "buy_rate",
    grade_col: str = C.COL_GRADE,
    feature_names: Sequence[str] = FEATURES,
    k: int = 10,
    epochs: int = 300,
    lr: float = 0.01,
    hidden: int = 16,
    seed: int = C.SEED,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Relevance vs purchase trade-off of :class:`MultiTaskRanker` as ``alpha`` varies.

    For each alpha, train on the train queries' pairs, rank the test queries' pairs by
    :meth:`MultiTaskRanker.score` (mix = alpha) and measure relevance nDCG@k (against
    ``qrels``) and purchase nDCG@k (against ``buy_qrels``, e.g. :func:`purchase_qrels` on the
    test split of the log).

    Args:
        table: pairs with ``query_id``, ``product_id``, the features, ``grade_col``, ``buy_col``.
        alphas: relevance-loss weights to try.
        train_queries, test_queries: from :func:`train_test_queries`.
        buy_qrels: ``{query_id: {product_id: 1}}`` of purchases.
        qrels: graded relevance (default: the table's grades).
        buy_col, grade_col, feature_names: column names in ``table``.
        k: metric cut-off.
        epochs, lr, hidden, seed, device: training settings (same seed for every alpha).

    Returns:
        Frame with columns ``alpha``, ``ndcg@k``, ``purchase_ndcg@k`` (one row per alpha).
    """
    need = [C.COL_QUERY_ID, C.COL_PRODUCT_ID, grade_col, buy_col, *feature_names]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise KeyError(f"table lacks column(s) {missing}; see the tradeoff_curve docstring")
    qid = table[C.COL_QUERY_ID].astype(str)
    train = table[qid.isin({str(q) for q in train_queries})]
    test = table[qid.isin({str(q) for q in test_queries})].reset_index(drop=True)
    if train.empty or test.empty:
        raise ValueError("no pair belongs to the train (or test) queries; check the query ids")
    if qrels is None:
        rel = test[test[grade_col] > 0]
        qrels = {}
        for q, p, g in zip(rel[C.COL_QUERY_ID].astype(str), rel[C.COL_PRODUCT_ID], rel[grade_col]):
            qrels.setdefault(q, {})[str(p)] = int(g)
    test_ids = set(test[C.COL_QUERY_ID].astype(str))
    rel_qrels = _restrict(qrels, test_ids)
    buy_q = {q: d for q, d in buy_qrels.items() if str(q) in test_ids}
    if not buy_q:
        raise ValueError("buy_qrels has no test query; build it from the test pairs")
    metric = f"ndcg@{k}"
    rows = []
    for alpha in alphas:
        model = MultiTaskRanker(len(feature_names), hidden=hidden, seed=seed)
        model.fit(
            train[list(feature_names)].to_numpy(),
            train[grade_col].to_numpy(),
            train[buy_col].to_numpy(),
            alpha=alpha,
            epochs=epochs,
            lr=lr,
            device=device,
        )
        s = model.score(test[list(feature_names)].to_numpy(), test[C.COL_QUERY_ID], mix=alpha)
        run = scores_to_run(test, s)
        rows.append(
            {
                "alpha": float(alpha),
                metric: evaluate(rel_qrels, run, metric)[metric],
                f"purchase_{metric}": evaluate(buy_q, run, metric)[metric],
            }
        )
    return pd.DataFrame(rows)


__all__ = [
    "FEATURES",
    "MATCH_COLUMNS",
    "ZH_TERMS",
    "DEFAULT_HAND_WEIGHTS",
    "PriceRange",
    "LinearRanker",
    "MultiTaskRanker",
    "build_lexicon",
    "query_attributes",
    "parse_price",
    "price_fit",
    "attribute_match",
    "pair_features",
    "material_loss_terms",
    "hand_weighted_score",
    "ranking_pairs",
    "fit_linear_ranker",
    "purchase_rate",
    "purchase_qrels",
    "train_test_queries",
    "candidate_pairs",
    "attach_grades",
    "scores_to_run",
    "compare_scorers",
    "tradeoff_curve",
]
