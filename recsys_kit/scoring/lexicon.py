"""Attribute words and prices in queries: the bilingual lexicon and the price parser.

:func:`build_lexicon` turns the catalog's attribute values (colour, material, gender, style,
season, category, brand) into English and Chinese terms; :func:`query_attributes` finds them in
a query (longest term first). :func:`parse_price` reads a price range ("under 50", "50美元以下"),
:func:`price_fit` scores how well a price fits it. Over 300 lines because the Chinese lexicon
(:data:`ZH_TERMS`) and the price patterns are data, not code.

Example:
    >>> parse_price("red dress under $50")
    PriceRange(low=None, high=50.0)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from recsys_kit import constants as C

__all__ = [
    "EN_VARIANTS",
    "MATCH_COLUMNS",
    "NEUTRAL_SATISFIES",
    "NEUTRAL_VALUES",
    "PriceRange",
    "QueryParser",
    "ZH_TERMS",
    "build_lexicon",
    "parse_price",
    "price_fit",
    "query_attributes",
]


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
    return QueryParser(lexicon).parse(query)


class QueryParser:
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
