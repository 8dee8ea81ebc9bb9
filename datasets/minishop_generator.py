"""Generate the MiniShop dataset (catalog, images, queries, qrels, users, interactions).

Deterministic: every random draw comes from ``numpy.random.default_rng([SEED, stage])``, outputs
are sorted by id, floats are pre-formatted, and no wall-clock time is read. Running it twice (with
the same numpy version) rebuilds the committed files byte for byte.

Usage:
    python datasets/minishop_generator.py            # rewrites datasets/minishop/
    python datasets/minishop_generator.py --out /tmp/ms

Needs the Fashion-MNIST Debian package (``apt-get install dataset-fashion-mnist``) for pictures.

Example:
    >>> from minishop_generator import generate  # doctest: +SKIP
    >>> generate(Path("/tmp/ms"))  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import gzip
import math
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent)]  # taxonomy module + recsys_kit when run as script

from minishop_taxonomy import (  # noqa: E402
    BRANDS,
    CATEGORIES,
    COLOR_SYN_EN,
    COLOR_SYN_ZH,
    DEPARTMENT_SIZES,
    NEUTRAL_VALUES,
    VALUE_ZH,
    Category,
)

from recsys_kit import constants as C  # noqa: E402
from recsys_kit.datasets import INTENT_ATTRIBUTES, text_tokens  # noqa: E402

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
LAUNCH_START, LAUNCH_END = date(2023, 1, 1), date(2026, 6, 30)
#: Interactions cover calendar 2025; events at or after the cutoff form the test split.
SIM_START, SIM_END = datetime(2025, 1, 1), datetime(2026, 1, 1)
SPLIT_CUTOFF = datetime(2025, 11, 23)
N_USERS = 1000
SLATE_SIZE = 6  # products shown per search/browse session
STAGES = {"catalog": 1, "images": 2, "queries": 3, "qrels": 4, "users": 5, "sim": 6, "online": 7}

OUTPUT_FILES = (
    "catalog.csv",
    "images.npy",
    "queries.csv",
    "qrels.csv",
    "users.csv",
    "interactions.csv",
    "shoppers.csv",
    "intents.csv",
)


def _rng(stage: str, *extra: int) -> np.random.Generator:
    """Independent generator per stage, so editing one stage leaves the others unchanged."""
    return np.random.default_rng([C.SEED, STAGES[stage], *extra])


def _zh(value: str) -> str:
    return VALUE_ZH[value]


def _en(value: str) -> str:
    """Title-case English wording of an attribute value; empty for neutral values."""
    return "" if value in NEUTRAL_VALUES else value.title()


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


# ------------------------------------------------------------------------------------------------
# Fashion-MNIST
# ------------------------------------------------------------------------------------------------
def load_fashion_mnist(folder: Path = FASHION_MNIST_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Train + test pictures and labels of Fashion-MNIST, in file order.

    Args:
        folder: where the Debian package ``dataset-fashion-mnist`` installs the files.

    Returns:
        ``(images uint8 (70000, 28, 28), labels uint8 (70000,))``.

    Raises:
        SystemExit: when the package is not installed, naming the apt command.
    """
    images, labels = [], []
    for split in ("train", "t10k"):
        img_f = folder / f"{split}-images-idx3-ubyte.gz"
        lab_f = folder / f"{split}-labels-idx1-ubyte.gz"
        if not (img_f.is_file() and lab_f.is_file()):
            raise SystemExit(
                f"Fashion-MNIST not found ({img_f} missing). Install it with "
                "`sudo apt-get install dataset-fashion-mnist` and rerun the generator."
            )
        with gzip.open(img_f) as fi, gzip.open(lab_f) as fl:
            images.append(np.frombuffer(fi.read(), np.uint8, offset=16).reshape(-1, 28, 28))
            labels.append(np.frombuffer(fl.read(), np.uint8, offset=8))
    return np.concatenate(images), np.concatenate(labels)


# ------------------------------------------------------------------------------------------------
# Catalog
# ------------------------------------------------------------------------------------------------
_TITLE_EN = (
    "{brand} {gender}{style} {color} {material} {noun}",
    "{brand} {noun}, {color} {material}, {feature}",
    "{brand} {style} {noun} in {color}",
    "{brand} {gender}{color} {noun} - {feature}",
    "{brand} {style} {color} {noun}, {feature}",
)
_TITLE_ZH = (
    "{brand} {gender}{style}{color}{material}{noun}",
    "{brand} {color}{material}{noun} {feature}",
    "{brand} {style}{noun} {color}",
    "{brand} {gender}{color}{noun} {feature}",
    "{brand} {style}{color}{noun} {feature}",
)
_SEASON_EN = {
    "spring": "mild spring days",
    "summer": "warm summer days",
    "autumn": "crisp autumn weather",
    "winter": "cold winter weeks",
    "all-season": "every season",
}
_SEASON_ZH = {
    "spring": "适合春日穿用",
    "summer": "夏季清爽之选",
    "autumn": "秋季必备",
    "winter": "冬日保暖之选",
    "all-season": "四季皆宜",
}
_GENDER_EN = {"women": "Designed for women.", "men": "Cut for men.", "unisex": "Suits everyone."}
_GENDER_ZH = {"women": "女款设计。", "men": "男款剪裁。", "unisex": "男女皆宜。"}


def _tidy_en(text: str) -> str:
    """Collapse spaces left by neutral (omitted) values and dangling commas."""
    text = " ".join(text.split())
    for bad, good in ((" ,", ","), (",,", ","), (", -", " -"), ("in ,", ","), (" in -", " -")):
        text = text.replace(bad, good)
    if text.endswith(" in"):
        text = text[:-3]
    return text.strip(" ,-")


def _title(cat: Category, p: dict, rng: np.random.Generator) -> tuple[str, str]:
    """Bilingual title from one randomly chosen template pair (same slot order in both)."""
    t = int(rng.integers(len(_TITLE_EN)))
    k = int(rng.integers(len(cat.nouns_en)))
    feat_en, feat_zh = cat.features[int(rng.integers(len(cat.features)))]
    show_mat = cat.department not in ("beauty", "electronics")  # formula/plastic read oddly
    gender_en = {"women": "Women's ", "men": "Men's "}.get(p["gender"], "")
    en = _TITLE_EN[t].format(
        brand=p["brand"],
        gender=gender_en,
        style=_en(p["style"]),
        color=_en(p["color"]),
        material=_en(p["material"]) if show_mat else "",
        noun=cat.nouns_en[k],
        feature=feat_en,
    )
    zh = _TITLE_ZH[t].format(
        brand=p["brand"],
        gender=_zh(p["gender"]),
        style=_zh(p["style"]),
        color=_zh(p["color"]),
        material=_zh(p["material"]) if show_mat else "",
        noun=cat.nouns_zh[k % len(cat.nouns_zh)],
        feature=feat_zh,
    )
    return _tidy_en(en), " ".join(zh.split())


def _description(cat: Category, p: dict, rng: np.random.Generator) -> tuple[str, str]:
    """Two to four sentences (English and Chinese) built from the product's attributes."""
    noun = cat.nouns_en[0].lower()
    feat_en, feat_zh = cat.features[int(rng.integers(len(cat.features)))]
    use_en, use_zh = cat.uses[int(rng.integers(len(cat.uses)))]
    color = "" if p["color"] == "none" else p["color"]
    opener = int(rng.integers(3))
    if opener == 0:
        en = [f"A {p['style']} {_join(color, noun)} by {p['brand']}, made with {p['material']}."]
        zh = [
            f"{p['brand']}出品的{_zh(p['style'])}风格{_zh(p['color'])}{cat.nouns_zh[0]}，"
            f"采用{_zh(p['material'])}材质。"
        ]
    elif opener == 1:
        en = [f"Meet the {p['brand']} {noun}: {feat_en.lower()}."]
        zh = [f"{p['brand']}{cat.nouns_zh[0]}：{feat_zh}。"]
        feat_en = feat_zh = ""
    else:
        en = [f"{p['brand']} brings a {_join(color, p['material'])} {noun} in a {p['style']} look."]
        zh = [
            f"{p['brand']}推出{_zh(p['material'])}{_zh(p['color'])}{cat.nouns_zh[0]}，"
            f"{_zh(p['style'])}风格。"
        ]
    en.append(f"{['Perfect', 'Great', 'Made'][int(rng.integers(3))]} for {use_en}.")
    zh.append(f"适合{use_zh}。")
    if feat_en:
        en.append(f"{feat_en}.")
        zh.append(f"{feat_zh}。")
    if cat.department in C.DEPARTMENTS_WITH_IMAGES:
        en.append(f"{_GENDER_EN[p['gender']]} A go-to choice for {_SEASON_EN[p['season']]}.")
        zh.append(f"{_GENDER_ZH[p['gender']]}{_SEASON_ZH[p['season']]}。")
    return " ".join(en), "".join(zh)


def _category_counts(rng: np.random.Generator) -> list[tuple[str, int]]:
    """Products per category: each department's size split by Dirichlet weights."""
    out = []
    for dept in C.DEPARTMENTS:
        cats = [c for c in CATEGORIES.values() if c.department == dept]
        w = rng.dirichlet(np.full(len(cats), 8.0))
        n = np.floor(w * DEPARTMENT_SIZES[dept]).astype(int)
        n[: DEPARTMENT_SIZES[dept] - n.sum()] += 1  # hand out the rounding remainder
        out += [(c.name, int(k)) for c, k in zip(cats, n)]
    return out


def build_catalog(
    fm_images: np.ndarray, fm_labels: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Products with bilingual text, attributes, prices and Fashion-MNIST pictures.

    Args:
        fm_images, fm_labels: output of :func:`load_fashion_mnist`.

    Returns:
        ``(catalog, images, quality)``: the catalog frame (formatted strings for floats),
        the picture array and each product's latent quality (used by the simulation).
    """
    rng = _rng("catalog")
    img_rng = _rng("images")
    # Each Fashion-MNIST class gets a shuffled queue of its pictures; products pop from it.
    queues = {k: list(img_rng.permutation(np.flatnonzero(fm_labels == k))) for k in range(10)}
    rows, pics, quality = [], [], []
    n_days = (LAUNCH_END - LAUNCH_START).days
    for cat_name, n in _category_counts(rng):
        cat = CATEGORIES[cat_name]
        brands = BRANDS[cat.department]
        for _ in range(n):
            p = {
                C.COL_DEPARTMENT: cat.department,
                C.COL_CATEGORY: cat.name,
                C.COL_BRAND: brands[int(rng.integers(len(brands)))],
                C.COL_MATERIAL: cat.materials[int(rng.integers(len(cat.materials)))],
                C.COL_STYLE: cat.styles[int(rng.integers(len(cat.styles)))],
                C.COL_SEASON: cat.seasons[int(rng.integers(len(cat.seasons)))],
                C.COL_GENDER: cat.genders[int(rng.integers(len(cat.genders)))],
                C.COL_COLOR: cat.colors[int(rng.integers(len(cat.colors)))],
            }
            q = float(rng.normal())
            premium = {"cashmere": 1.8, "silk": 1.5, "leather": 1.35, "carbon fiber": 1.6}
            price = (
                cat.price * premium.get(p["material"], 1.0) * math.exp(rng.normal(0.1 * q, 0.35))
            )
            launch = LAUNCH_START + timedelta(days=int(rng.integers(n_days + 1)))
            age_years = (LAUNCH_END - launch).days / 365.0  # catalog snapshot: 2026-06-30
            reviews = 1 + int(math.exp(rng.normal(2.2 + 0.4 * q + 0.8 * age_years, 1.3)))
            rating = min(5.0, max(1.0, 4.1 + 0.45 * q + rng.normal(0, 0.25)))
            p["title_en"], p["title_zh"] = _title(cat, p, rng)
            p["description_en"], p["description_zh"] = _description(cat, p, rng)
            p.update(
                price=f"{max(price, 1.0):.2f}",
                rating=f"{rating:.1f}",
                review_count=reviews,
                launch_date=launch.isoformat(),
                image_index=-1,
            )
            if cat.fmnist_class is not None:
                p["image_index"] = len(pics)
                pics.append(queues[cat.fmnist_class].pop())
            rows.append(p)
            quality.append(q)
    cat_df = pd.DataFrame(rows)
    cat_df.insert(0, C.COL_PRODUCT_ID, [f"P{i + 1:05d}" for i in range(len(cat_df))])
    columns = [
        C.COL_PRODUCT_ID, C.COL_TITLE_EN, C.COL_TITLE_ZH, C.COL_DESCRIPTION_EN,
        C.COL_DESCRIPTION_ZH, C.COL_DEPARTMENT, C.COL_CATEGORY, C.COL_BRAND, C.COL_MATERIAL,
        C.COL_STYLE, C.COL_SEASON, C.COL_GENDER, C.COL_COLOR, C.COL_PRICE, C.COL_RATING,
        C.COL_REVIEW_COUNT, C.COL_LAUNCH_DATE, C.COL_IMAGE_INDEX,
    ]  # fmt: skip
    images = fm_images[np.asarray(pics, dtype=np.int64)]
    return cat_df[columns], images, np.asarray(quality)


# ------------------------------------------------------------------------------------------------
# Queries and relevance labels
# ------------------------------------------------------------------------------------------------
@dataclass
class Intent:
    """Structured intent behind a query; the labelling rules read only this.

    Attributes:
        categories: categories that can be Exact.
        attrs: column -> allowed values; all must hold for Exact.
        max_price: price ceiling for Exact (``None``: no ceiling).
        min_rating: rating floor for Exact (vague "recommendation" intents).
        close: extra categories labelled Substitute.
        complements: categories labelled Complement (default: the categories' complements).
    """

    categories: tuple[str, ...]
    attrs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_price: float | None = None
    min_rating: float | None = None
    close: tuple[str, ...] = ()
    complements: tuple[str, ...] | None = None


def related_categories(intent: Intent) -> tuple[set[str], set[str]]:
    """Close (Substitute) and complementary categories of an intent, taxonomy defaults included."""
    close = set(intent.close)
    comps = set(intent.complements or ())
    for name in intent.categories:
        close |= set(CATEGORIES[name].close)
        if intent.complements is None:
            comps |= set(CATEGORIES[name].complements)
    close -= set(intent.categories)
    comps -= set(intent.categories) | close
    return close, comps


def label_products(catalog: pd.DataFrame, intent: Intent) -> np.ndarray:
    """ESCI label of every product for one intent (vectorised rules, see DATASHEET.md).

    Exact: category in the intent's categories and every stated attribute, price ceiling and
    rating floor holds. Substitute: same category with some mismatch, or a close category.
    Complement: a complementary category. Irrelevant: everything else.
    """
    cat = catalog[C.COL_CATEGORY]
    in_cat = cat.isin(intent.categories).to_numpy()
    ok = np.ones(len(catalog), bool)
    for col, allowed in intent.attrs.items():
        ok &= catalog[col].isin(allowed).to_numpy()
    if intent.max_price is not None:
        ok &= catalog[C.COL_PRICE].astype(float).to_numpy() <= intent.max_price
    if intent.min_rating is not None:
        ok &= catalog[C.COL_RATING].astype(float).to_numpy() >= intent.min_rating
    close, comps = related_categories(intent)
    labels = np.full(len(catalog), "I", dtype=object)
    labels[cat.isin(sorted(comps)).to_numpy()] = "C"
    labels[cat.isin(sorted(close)).to_numpy() | (in_cat & ~ok)] = "S"
    labels[in_cat & ok] = "E"
    return labels


def _pool(catalog: pd.DataFrame, labels: np.ndarray, intent: Intent, rng) -> pd.DataFrame:
    """Judged candidates: all E, up to 40 S, 15 C, 15 same-department I and 10 random I."""
    idx = np.arange(len(catalog))
    depts = {CATEGORIES[c].department for c in intent.categories}
    near = catalog[C.COL_DEPARTMENT].isin(sorted(depts)).to_numpy()

    def take(mask: np.ndarray, k: int) -> np.ndarray:
        cand = idx[mask]
        return cand if len(cand) <= k else np.sort(rng.choice(cand, k, replace=False))

    chosen = np.concatenate([
        idx[labels == "E"],
        take(labels == "S", 40),
        take(labels == "C", 15),
        take((labels == "I") & near, 15),
        take((labels == "I") & ~near, 10),
    ])  # fmt: skip
    chosen = np.unique(chosen)
    return pd.DataFrame(
        {
            C.COL_PRODUCT_ID: catalog[C.COL_PRODUCT_ID].to_numpy()[chosen],
            C.COL_LABEL: labels[chosen],
        }
    )


_PRICE_STEPS = (10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200, 300, 500)

#: Vague shopping intents: (English phrasings, Chinese phrasings, intent).
VAGUE_INTENTS: list[tuple[tuple[str, ...], tuple[str, ...], Intent]] = [
    (
        ("beauty recommendations", "best makeup and skincare picks"),
        ("美妆推荐", "好用的护肤品推荐"),
        Intent(
            tuple(c.name for c in CATEGORIES.values() if c.department == "beauty"),
            min_rating=4.0,
            complements=("bag",),
        ),
    ),
    (
        ("gift for mom", "mother's day present ideas"),
        ("送妈妈的礼物", "母亲节礼物"),
        Intent(
            ("perfume", "moisturizer", "bag", "scented candle"),
            {C.COL_GENDER: ("women", "unisex")},
            min_rating=4.0,
            complements=("throw pillow", "mug"),
        ),
    ),
    (
        ("gift for dad", "father's day present"),
        ("送爸爸的礼物", "父亲节送什么"),
        Intent(
            ("smartwatch", "headphones", "kitchen knife"),
            {C.COL_GENDER: ("men", "unisex")},
            min_rating=4.0,
            complements=("charging cable",),
        ),
    ),
    (
        ("back to school", "things for a new semester"),
        ("开学季必备", "返校装备"),
        Intent(("bag", "sneaker", "headphones", "water bottle"), complements=("power bank",)),
    ),
    (
        ("stay warm this winter", "keep cosy when it is freezing"),
        ("冬天保暖穿什么", "冬季御寒"),
        Intent(
            ("coat", "pullover", "ankle boot"),
            {C.COL_SEASON: ("winter",)},
            complements=("sports socks",),
        ),
    ),
    (
        ("beach holiday essentials", "what to pack for the seaside"),
        ("海边度假必备", "去海边带什么"),
        Intent(("sandal", "sunscreen", "dress"), {C.COL_SEASON: ("summer",)}),
    ),
    (
        ("home workout", "exercise at home"),
        ("居家健身", "在家锻炼用什么"),
        Intent(("yoga mat", "dumbbell", "resistance band"), complements=("water bottle",)),
    ),
    (
        ("office outfit", "what to wear to work"),
        ("通勤穿搭", "上班穿什么"),
        Intent(("shirt", "trousers", "coat"), {C.COL_STYLE: ("formal", "classic")}),
    ),
    (
        ("skincare routine", "take care of my skin"),
        ("护肤步骤", "日常护肤"),
        Intent(("moisturizer", "serum", "sunscreen", "face mask")),
    ),
    (
        ("date night look", "get ready for a romantic dinner"),
        ("约会妆容", "约会怎么打扮"),
        Intent(("lipstick", "mascara", "perfume", "dress")),
    ),
    (
        ("cozy home decor", "make my living room feel warm"),
        ("温馨家居", "卧室布置"),
        Intent(("throw pillow", "scented candle", "bed sheets", "table lamp")),
    ),
    (
        ("work from home setup", "remote work essentials"),
        ("居家办公好物", "在家办公需要什么"),
        Intent(("headphones", "table lamp", "mug"), complements=("charging cable",)),
    ),
    (
        ("start running", "gear for my first 5k"),
        ("开始跑步需要什么", "跑步装备"),
        Intent(
            ("sneaker", "sports socks", "smartwatch"),
            {C.COL_STYLE: ("sporty", "classic", "sleek", "training", "casual")},
            complements=("water bottle",),
        ),
    ),
    (
        ("travel essentials", "long flight must haves"),
        ("旅行必备", "出差带什么"),
        Intent(("power bank", "headphones", "bag"), complements=("charging cable", "phone case")),
    ),
    (
        ("kitchen upgrade", "cooking tools for a new home"),
        ("厨房好物", "新家厨房用品"),
        Intent(("frying pan", "kitchen knife", "mug")),
    ),
    (
        ("wedding guest outfit", "dressed up for a wedding"),
        ("参加婚礼穿什么", "婚礼宾客穿搭"),
        Intent(("dress", "bag", "sandal"), {C.COL_STYLE: ("elegant", "formal", "classic")}),
    ),
    (
        ("summer wardrobe refresh", "light clothes for hot weather"),
        ("夏季穿搭", "夏天清凉衣服"),
        Intent(("t-shirt", "dress", "shirt", "sandal"), {C.COL_SEASON: ("summer",)}),
    ),
    (
        ("tech gadgets under 50", "cheap electronics gift"),
        ("50美元以下数码好物", "便宜的数码礼物"),
        Intent(
            ("power bank", "bluetooth speaker", "phone case", "charging cable"),
            max_price=50.0,
        ),
    ),
]


def _price_cap(price: float) -> int:
    return next((s for s in _PRICE_STEPS if s >= price * 1.15), 1000)


def _exact_query(cat: Category, p: pd.Series, lang: str, rng) -> tuple[str, Intent]:
    """Title-like query: brand + style (+ colour) + head noun."""
    use_color = p[C.COL_COLOR] != "none" and rng.random() < 0.5
    attrs = {C.COL_BRAND: (p[C.COL_BRAND],), C.COL_STYLE: (p[C.COL_STYLE],)}
    if use_color:
        attrs[C.COL_COLOR] = (p[C.COL_COLOR],)
    k = int(rng.integers(len(cat.nouns_en)))
    if lang == "en":
        text = _join(p[C.COL_BRAND], p[C.COL_STYLE], p[C.COL_COLOR] if use_color else "",
                     cat.nouns_en[k]).lower()  # fmt: skip
    else:
        text = (
            f"{p[C.COL_BRAND]} {_zh(p[C.COL_STYLE])}"
            f"{_zh(p[C.COL_COLOR]) if use_color else ''}{cat.nouns_zh[k % len(cat.nouns_zh)]}"
        )
    return text, Intent((cat.name,), attrs)


def _attribute_query(cat: Category, p: pd.Series, lang: str, rng) -> tuple[str, Intent]:
    """Constraint query: 2-3 of the product's non-neutral attributes, sometimes a price cap."""
    cand = [c for c in (C.COL_COLOR, C.COL_MATERIAL, C.COL_GENDER, C.COL_SEASON, C.COL_STYLE)
            if p[c] not in NEUTRAL_VALUES]  # fmt: skip
    k = min(len(cand), int(rng.integers(2, 4)))
    chosen = set(rng.choice(cand, k, replace=False)) if k else set()
    cap = _price_cap(float(p[C.COL_PRICE])) if rng.random() < 0.35 else None
    attrs = {c: (p[c],) for c in sorted(chosen)}
    if C.COL_GENDER in attrs:  # "for women" also accepts unisex items
        attrs[C.COL_GENDER] = (p[C.COL_GENDER], "unisex")

    def val(col: str, zh: bool) -> str:
        if col not in chosen:
            return ""
        return _zh(p[col]) if zh else p[col]

    if lang == "en":
        noun = cat.nouns_en[0].lower()
        who = {"women": "for women", "men": "for men"}.get(val(C.COL_GENDER, False), "")
        words = [val(c, False) for c in (C.COL_SEASON, C.COL_STYLE, C.COL_COLOR, C.COL_MATERIAL)]
        text = _join(*words, noun, who, f"under {cap}" if cap else "")
    else:
        noun = cat.nouns_zh[0]
        text = (val(C.COL_SEASON, True) + val(C.COL_GENDER, True) + val(C.COL_STYLE, True)
                + val(C.COL_COLOR, True) + val(C.COL_MATERIAL, True) + noun)  # fmt: skip
        if cap:
            text += f" {cap}美元以下"
    return text, Intent((cat.name,), attrs, max_price=float(cap) if cap else None)


def _synonym_query(cat: Category, lang: str, rng, catalog) -> tuple[str, Intent] | None:
    """Paraphrase with no title word: a category synonym, sometimes with a colour synonym."""
    syns = cat.syn_en if lang == "en" else cat.syn_zh
    if not syns:
        return None
    syn = syns[int(rng.integers(len(syns)))]
    color_syn = COLOR_SYN_EN if lang == "en" else COLOR_SYN_ZH
    colors = [c for c in cat.colors if c in color_syn]
    if colors and rng.random() < 0.5:
        color = colors[int(rng.integers(len(colors)))]
        text = f"{color_syn[color]} {syn}" if lang == "en" else f"{color_syn[color]}{syn}"
        return text, Intent((cat.name,), {C.COL_COLOR: (color,)})
    return syn, Intent((cat.name,))


def build_queries(catalog: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Queries of every kind in both languages, their graded ESCI labels and their intents.

    Returns:
        ``(queries, qrels, intents)`` frames, sorted by id. ``intents`` is the structured intent
        each query was made from (:func:`intent_row`): the truth the labelling rules read, written
        for the online shopper simulator (``recsys_kit.simulator``).

    Raises:
        RuntimeError: when a rule is broken (a query without Exact product, or a synonym query
            sharing a token with an Exact product's title): the data would be wrong.
    """
    rng = _rng("queries")
    specs: list[tuple[str, str, str, Intent]] = []  # (kind, lang, text, intent)
    seen: set[str] = set()

    def add(kind: str, lang: str, text: str, intent: Intent) -> None:
        if text not in seen:
            seen.add(text)
            specs.append((kind, lang, text, intent))

    cat_names = list(CATEGORIES)
    for kind, n_per_lang in (("exact", 40), ("attribute", 45), ("cross_lingual", 40)):
        for lang in C.LANGUAGES:
            made = 0
            while made < n_per_lang:
                p = catalog.iloc[int(rng.integers(len(catalog)))]
                cat = CATEGORIES[p[C.COL_CATEGORY]]
                maker = (
                    _exact_query if (kind == "exact" or rng.random() < 0.4) else _attribute_query
                )
                text, intent = maker(cat, p, lang, rng)
                before = len(specs)
                add(kind, lang, text, intent)
                made += len(specs) - before
    for lang in C.LANGUAGES:
        for _ in range(3):  # up to three synonym queries per category and language
            for name in cat_names:
                made = _synonym_query(CATEGORIES[name], lang, rng, catalog)
                if made:
                    add("synonym", lang, *made)
    for en_texts, zh_texts, intent in VAGUE_INTENTS:
        for text in en_texts:
            add("vague", "en", text, intent)
        for text in zh_texts:
            add("vague", "zh", text, intent)

    kind_order = {k: i for i, k in enumerate(C.QUERY_KINDS)}
    specs.sort(key=lambda s: (kind_order[s[0]], s[1]))  # stable: keeps generation order inside
    q_rows, qrels, intent_rows = [], [], []
    qrel_rng = _rng("qrels")
    title_tokens = [text_tokens(a) | text_tokens(b)
                    for a, b in zip(catalog[C.COL_TITLE_EN], catalog[C.COL_TITLE_ZH])]  # fmt: skip
    for i, (kind, lang, text, intent) in enumerate(specs):
        qid = f"Q{i + 1:04d}"
        labels = label_products(catalog, intent)
        if not (labels == "E").any():
            raise RuntimeError(f"query {text!r} ({kind}) has no Exact product")
        if kind == "synonym":
            q_tok = text_tokens(text)
            for j in np.flatnonzero(labels == "E"):
                if q_tok & title_tokens[j]:
                    raise RuntimeError(
                        f"synonym query {text!r} shares {q_tok & title_tokens[j]} with "
                        f"{catalog[C.COL_TITLE_EN].iat[j]!r}; fix the taxonomy's synonyms"
                    )
        pool = _pool(catalog, labels, intent, qrel_rng)
        pool.insert(0, C.COL_QUERY_ID, qid)
        qrels.append(pool)
        q_rows.append({C.COL_QUERY_ID: qid, C.COL_QUERY: text, C.COL_LANGUAGE: lang,
                       C.COL_QUERY_KIND: kind})  # fmt: skip
        intent_rows.append(intent_row(qid, intent))
    qrels_df = pd.concat(qrels, ignore_index=True)
    qrels_df[C.COL_GRADE] = qrels_df[C.COL_LABEL].map(C.ESCI_GRADES).astype(int)
    qrels_df = qrels_df.sort_values([C.COL_QUERY_ID, C.COL_PRODUCT_ID], kind="stable")
    return pd.DataFrame(q_rows), qrels_df.reset_index(drop=True), pd.DataFrame(intent_rows)


def intent_row(query_id: str, intent: Intent) -> dict[str, str]:
    """One row of ``intents.csv``: categories, related categories, constraints, as text."""
    close, comps = related_categories(intent)
    unknown = set(intent.attrs) - set(INTENT_ATTRIBUTES)
    if unknown:
        raise RuntimeError(f"intent of {query_id} constrains {sorted(unknown)}: add the column")
    row = {
        C.COL_QUERY_ID: query_id,
        "categories": "|".join(intent.categories),
        "close": "|".join(sorted(close)),
        "complements": "|".join(sorted(comps)),
    }
    row.update({col: "|".join(intent.attrs.get(col, ())) for col in INTENT_ATTRIBUTES})
    row["max_price"] = "" if intent.max_price is None else f"{intent.max_price:.2f}"
    row["min_rating"] = "" if intent.min_rating is None else f"{intent.min_rating:.1f}"
    return row


# ------------------------------------------------------------------------------------------------
# Users and the shopper simulation
# ------------------------------------------------------------------------------------------------
AGE_GROUPS = ("18-24", "25-34", "35-44", "45-54", "55+")
USER_GENDERS = ("female", "male", "unspecified")


@dataclass
class Shopper:
    """Latent preferences of a simulated user (not in ``users.csv``; ``shoppers.csv`` has them)."""

    dept_affinity: np.ndarray  # probability of browsing each department
    price_sensitivity: float  # utility lost per unit of log(price / category median)
    colors: frozenset[str]  # preferred colours (+1 utility)
    styles: frozenset[str]  # preferred styles (+0.8 utility)
    activity: float  # expected sessions in 2025 (scaled by the time the account existed)


def build_users() -> tuple[pd.DataFrame, list[Shopper]]:
    """Users (public columns) and their latent shopper profiles."""
    rng = _rng("users")
    all_colors = sorted({c for cat in CATEGORIES.values() for c in cat.colors} - {"none"})
    all_styles = sorted({s for cat in CATEGORIES.values() for s in cat.styles})
    start, n_days = date(2023, 1, 1), (date(2025, 12, 1) - date(2023, 1, 1)).days
    rows, shoppers = [], []
    for i in range(N_USERS):
        gender = USER_GENDERS[int(rng.choice(3, p=[0.5, 0.43, 0.07]))]
        base = np.ones(len(C.DEPARTMENTS))
        base[C.DEPARTMENTS.index("beauty")] = {"female": 3.0, "male": 0.6}.get(gender, 1.5)
        base[C.DEPARTMENTS.index("electronics")] = {"female": 0.8, "male": 2.0}.get(gender, 1.2)
        # Signups skew recent (growing shop); those after the split cutoff are cold-start users.
        signup = start + timedelta(days=int(n_days * rng.beta(1.6, 1.0)))
        rows.append({
            C.COL_USER_ID: f"U{i + 1:04d}",
            C.COL_LANGUAGE: "zh" if rng.random() < 0.45 else "en",
            C.COL_AGE_GROUP: AGE_GROUPS[int(rng.choice(5, p=[0.18, 0.32, 0.24, 0.15, 0.11]))],
            C.COL_GENDER: gender,
            C.COL_SIGNUP_DATE: signup.isoformat(),
        })  # fmt: skip
        shoppers.append(
            Shopper(
                dept_affinity=rng.dirichlet(0.5 * base),
                price_sensitivity=float(rng.lognormal(0.0, 0.5)),
                colors=frozenset(rng.choice(all_colors, 3, replace=False).tolist()),
                styles=frozenset(rng.choice(all_styles, 3, replace=False).tolist()),
                activity=float(rng.lognormal(2.6, 0.7)),
            )
        )
    return pd.DataFrame(rows), shoppers


def build_shoppers(users: pd.DataFrame, shoppers: list[Shopper]) -> pd.DataFrame:
    """The latent shopper table (``shoppers.csv``): the online simulator's truth.

    Writes each user's latent preferences (the ones the interaction log was simulated from) and
    draws two more from their own stream ("online"), so every other file stays byte for byte:
    a **budget** (multiple of the category median price above which buying gets unlikely) and a
    **position-bias** exponent (examination probability ``rank ** -position_bias``; the log used
    0.9 for everyone, the population mean here). Floats are rounded to fixed decimals.
    """
    rng = _rng("online")
    budget = np.exp(rng.normal(math.log(1.6), 0.35, len(users)))
    eta = np.clip(rng.normal(0.9, 0.2, len(users)), 0.4, 1.5)
    rows = []
    for i, (uid, sh) in enumerate(zip(users[C.COL_USER_ID], shoppers)):
        row = {
            C.COL_USER_ID: uid,
            "price_sensitivity": f"{sh.price_sensitivity:.4f}",
            "budget": f"{budget[i]:.3f}",
            "colors": "|".join(sorted(sh.colors)),
            "styles": "|".join(sorted(sh.styles)),
            "position_bias": f"{eta[i]:.3f}",
            "activity": f"{sh.activity:.3f}",
        }
        row.update({f"affinity_{d}": f"{a:.4f}" for d, a in zip(C.DEPARTMENTS, sh.dept_affinity)})
        rows.append(row)
    return pd.DataFrame(rows)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def simulate_interactions(
    catalog: pd.DataFrame, users: pd.DataFrame, shoppers: list[Shopper]
) -> pd.DataFrame:
    """Sessions of view -> click -> cart -> purchase -> rating events with position bias.

    Each session the shopper picks a department (latent affinity) and a category, the shop shows
    a slate ranked by popularity (log review_count + noise), and the shopper clicks with
    probability ``position_bias(rank) * sigmoid(utility)``; deeper funnel steps depend on utility
    only. 8% of sessions are direct visits (one product, position 0 = unknown).
    """
    rng = _rng("sim")
    cat_col = catalog[C.COL_CATEGORY].to_numpy()
    dept_col = catalog[C.COL_DEPARTMENT].to_numpy()
    price = catalog[C.COL_PRICE].astype(float).to_numpy()
    median = pd.Series(price).groupby(cat_col).transform("median").to_numpy()
    log_rel_price = np.log(price / median)
    rating = catalog[C.COL_RATING].astype(float).to_numpy()
    pop = np.log1p(catalog[C.COL_REVIEW_COUNT].to_numpy(dtype=float))
    launch = pd.to_datetime(catalog[C.COL_LAUNCH_DATE]).to_numpy()
    colors = catalog[C.COL_COLOR].to_numpy()
    styles = catalog[C.COL_STYLE].to_numpy()
    p_gender = catalog[C.COL_GENDER].to_numpy()
    pids = catalog[C.COL_PRODUCT_ID].to_numpy()
    by_dept_cat = {d: sorted({c for c, dd in zip(cat_col, dept_col) if dd == d})
                   for d in C.DEPARTMENTS}  # fmt: skip
    cat_index = {c: np.flatnonzero(cat_col == c) for c in CATEGORIES}
    pos_bias = 1.0 / np.arange(1, SLATE_SIZE + 1) ** 0.9
    hour_w = np.array([1, .5, .3, .2, .2, .3, .6, 1, 1.5, 1.8, 2, 2, 2.2, 2, 1.8, 1.8, 2, 2.3,
                       2.8, 3.2, 3.4, 3.0, 2.2, 1.5])  # fmt: skip
    hour_w = hour_w / hour_w.sum()
    sim_days = (SIM_END - SIM_START).days
    # Busier in November/December (sales season): weight per day of year.
    day_w = np.array([1.6 if (SIM_START + timedelta(days=d)).month >= 11 else 1.0
                      for d in range(sim_days)])  # fmt: skip

    rows: list[tuple] = []
    for u, (uid, signup, ugender) in enumerate(
        zip(users[C.COL_USER_ID], users[C.COL_SIGNUP_DATE], users[C.COL_GENDER])
    ):
        sh = shoppers[u]
        first_day = max(0, (datetime.fromisoformat(signup) - SIM_START).days)
        window = day_w[first_day:]
        n_sessions = rng.poisson(sh.activity * window.sum() / day_w.sum())
        if n_sessions == 0:
            continue
        days = first_day + rng.choice(len(window), n_sessions, p=window / window.sum())
        days.sort()
        mismatch = {"female": "men", "male": "women"}.get(ugender)
        for day in days:
            t = (SIM_START + timedelta(days=int(day), hours=int(rng.choice(24, p=hour_w)),
                 seconds=int(rng.integers(3600))))  # fmt: skip
            dept = C.DEPARTMENTS[int(rng.choice(len(C.DEPARTMENTS), p=sh.dept_affinity))]
            cats = by_dept_cat[dept]
            cand = cat_index[cats[int(rng.integers(len(cats)))]]
            cand = cand[launch[cand] <= np.datetime64(t)]  # only launched products are shown
            if len(cand) == 0:
                continue
            utility = (
                1.0 * np.isin(colors[cand], list(sh.colors))
                + 0.8 * np.isin(styles[cand], list(sh.styles))
                - sh.price_sensitivity * log_rel_price[cand]
                + 0.8 * (rating[cand] - 4.0)
                - 2.0 * (p_gender[cand] == mismatch)
            )
            if rng.random() < 0.08:  # direct visit from outside (unknown position)
                j = int(rng.choice(len(cand), p=np.exp(pop[cand]) / np.exp(pop[cand]).sum()))
                shown, positions, bias = cand[[j]], [0], np.array([0.6])
                utility = utility[[j]]
            else:
                score = pop[cand] + rng.gumbel(size=len(cand))
                order = np.argsort(-score, kind="stable")[:SLATE_SIZE]
                shown, utility = cand[order], utility[order]
                positions = list(range(1, len(order) + 1))
                bias = pos_bias[: len(order)]
            clicks = rng.random(len(shown)) < bias * _sigmoid(utility - 0.3)
            for k, (j, pos) in enumerate(zip(shown, positions)):
                ts = t + timedelta(seconds=4 * k)
                rows.append((uid, pids[j], 0, ts, "", pos))
                if not clicks[k]:
                    continue
                ts += timedelta(seconds=int(rng.integers(2, 40)))
                rows.append((uid, pids[j], 1, ts, "", pos))
                if rng.random() >= _sigmoid(utility[k] - 1.2):
                    continue
                ts += timedelta(seconds=int(rng.integers(30, 600)))
                rows.append((uid, pids[j], 2, ts, "", pos))
                if rng.random() >= 0.55:
                    continue
                ts += timedelta(seconds=int(rng.integers(60, 1800)))
                rows.append((uid, pids[j], 3, ts, "", pos))
                if rng.random() >= 0.45:
                    continue
                ts += timedelta(days=int(rng.integers(2, 21)), seconds=int(rng.integers(86400)))
                stars = int(np.clip(np.rint(rating[j] + 0.5 * utility[k] + rng.normal(0, 0.7)),
                                    1, 5))  # fmt: skip
                rows.append((uid, pids[j], 4, ts, str(stars), pos))
    df = pd.DataFrame(rows, columns=["u", "p", "e", "t", "r", "pos"])
    df = df.sort_values(["u", "t", "e", "p"], kind="stable").reset_index(drop=True)
    return pd.DataFrame(
        {
            C.COL_USER_ID: df["u"],
            C.COL_PRODUCT_ID: df["p"],
            C.COL_EVENT: np.asarray(C.EVENTS)[df["e"].to_numpy()],
            C.COL_TIMESTAMP: [x.isoformat() for x in df["t"]],
            C.COL_RATING: df["r"],
            C.COL_POSITION: df["pos"],
            C.COL_SPLIT: np.where(df["t"] >= SPLIT_CUTOFF, "test", "train"),
        }
    )


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------
def _write_csv(df: pd.DataFrame, path: Path) -> None:
    # Everything is written as text so the bytes do not depend on pandas' float formatting.
    df.astype(str).to_csv(path, index=False, encoding="utf-8", lineterminator="\n")


def generate(out: Path, fm_dir: Path = FASHION_MNIST_DIR) -> dict[str, int]:
    """Build every MiniShop file into ``out``.

    Args:
        out: destination folder (created if needed).
        fm_dir: Fashion-MNIST folder.

    Returns:
        Rows (or pictures) written per file.
    """
    fm_images, fm_labels = load_fashion_mnist(fm_dir)
    out.mkdir(parents=True, exist_ok=True)
    catalog, images, _quality = build_catalog(fm_images, fm_labels)
    queries, qrels, intents = build_queries(catalog)
    users, shoppers = build_users()
    interactions = simulate_interactions(catalog, users, shoppers)
    latent = build_shoppers(users, shoppers)
    _write_csv(catalog, out / "catalog.csv")
    np.save(out / "images.npy", np.ascontiguousarray(images, dtype=np.uint8))
    _write_csv(queries, out / "queries.csv")
    _write_csv(qrels, out / "qrels.csv")
    _write_csv(users, out / "users.csv")
    _write_csv(interactions, out / "interactions.csv")
    _write_csv(latent, out / "shoppers.csv")
    _write_csv(intents, out / "intents.csv")
    return {
        "catalog.csv": len(catalog),
        "images.npy": len(images),
        "queries.csv": len(queries),
        "qrels.csv": len(qrels),
        "users.csv": len(users),
        "interactions.csv": len(interactions),
        "shoppers.csv": len(latent),
        "intents.csv": len(intents),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=_HERE / "minishop", help="output folder")
    parser.add_argument("--fashion-mnist", type=Path, default=FASHION_MNIST_DIR)
    args = parser.parse_args(argv)
    counts = generate(args.out, args.fashion_mnist)
    for name, n in counts.items():
        size = (args.out / name).stat().st_size
        print(f"{name:18s} {n:>8d} rows  {size / 1e6:6.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
