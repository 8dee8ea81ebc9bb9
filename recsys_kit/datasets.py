"""Load MiniShop and two real product-search catalogs (Wayfair WANDS, Amazon ESCI).

Every MiniShop loader validates its file against a schema kept as data (:data:`SCHEMAS`) and
raises :class:`SchemaError` naming the file, the column, a sample bad row and the fix. Files are
only read, never written.

Returned dtypes (MiniShop):
    ids and text: pandas string (``str``); dates and timestamps: ``datetime64[ns]``;
    counts, indices, positions, grades: ``int64``; price and catalog rating: ``float64``;
    interaction rating: ``float64`` with NaN for non-rating events.

Example:
    >>> from recsys_kit import datasets
    >>> catalog = datasets.load_catalog()
    >>> catalog.loc[0, "product_id"]
    'P00001'
    >>> qrels = datasets.qrels_dict(datasets.load_qrels())
    >>> max(qrels["Q0001"].values())
    3
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit import paths

__all__ = [
    "SCHEMAS",
    "Column",
    "Schema",
    "SchemaError",
    "CatalogBundle",
    "load_catalog",
    "load_queries",
    "load_qrels",
    "load_users",
    "load_interactions",
    "load_images",
    "load_shoppers",
    "load_intents",
    "qrels_dict",
    "product_text",
    "train_test_split",
    "text_tokens",
    "load_wands",
    "load_esci",
]

REGENERATE = "regenerate with `python datasets/minishop_generator.py`"
RESTORE = "or restore the committed copy with `git checkout -- datasets/minishop`"


class SchemaError(ValueError):
    """A data file does not match its schema; the message names file, column, row and fix."""


@dataclass(frozen=True)
class Column:
    """Expected content of one column.

    Attributes:
        name: column name.
        kind: ``"str"``, ``"int"``, ``"float"``, ``"date"`` (YYYY-MM-DD) or ``"datetime"``
            (ISO ``YYYY-MM-DDTHH:MM:SS``).
        pattern: regular expression every value must fully match (``str`` columns).
        allowed: allowed values (enums).
        min, max: inclusive numeric / date bounds.
        nullable: empty cells allowed (become NaN / NaT).
        unique: values must be unique.
        references: ``(file, column)`` whose values this column must take (foreign key).
    """

    name: str
    kind: str = "str"
    pattern: str | None = None
    allowed: tuple[str, ...] | None = None
    min: float | str | None = None
    max: float | str | None = None
    nullable: bool = False
    unique: bool = False
    references: tuple[str, str] | None = None


@dataclass(frozen=True)
class Schema:
    """Expected content of one file: its columns (in order) and its unique key."""

    file: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


_NONEMPTY = r".*\S.*"
_CATEGORICAL = dict(kind="str", pattern=r"[a-z][a-z\- ]*")
_VALUES = r"[a-z][a-z\- ]*(\|[a-z][a-z\- ]*)*"  # categorical values joined by "|"
_OPTIONAL_VALUES = _VALUES + "|"


def _key_of(name: str, pattern: str, file: str) -> Column:
    """A one-row-per-id column that must exist in the sibling ``file`` (latent tables)."""
    return Column(name, pattern=pattern, unique=True, references=(file, name))


#: Catalog columns an intent may constrain (``intents.csv``; values joined by "|").
INTENT_ATTRIBUTES = (C.COL_BRAND, C.COL_COLOR, C.COL_STYLE, C.COL_MATERIAL, C.COL_SEASON,
                     C.COL_GENDER)  # fmt: skip

SCHEMAS: dict[str, Schema] = {
    "catalog": Schema(
        "catalog.csv",
        (
            Column(C.COL_PRODUCT_ID, pattern=r"P\d{5}", unique=True),
            Column(C.COL_TITLE_EN, pattern=_NONEMPTY),
            Column(C.COL_TITLE_ZH, pattern=_NONEMPTY),
            Column(C.COL_DESCRIPTION_EN, pattern=_NONEMPTY),
            Column(C.COL_DESCRIPTION_ZH, pattern=_NONEMPTY),
            Column(C.COL_DEPARTMENT, allowed=C.DEPARTMENTS),
            Column(C.COL_CATEGORY, **_CATEGORICAL),
            Column(C.COL_BRAND, pattern=_NONEMPTY),
            Column(C.COL_MATERIAL, **_CATEGORICAL),
            Column(C.COL_STYLE, **_CATEGORICAL),
            Column(C.COL_SEASON, allowed=("spring", "summer", "autumn", "winter", "all-season")),
            Column(C.COL_GENDER, allowed=("women", "men", "unisex")),
            Column(C.COL_COLOR, **_CATEGORICAL),
            Column(C.COL_PRICE, kind="float", min=0.01),
            Column(C.COL_RATING, kind="float", min=1.0, max=5.0),
            Column(C.COL_REVIEW_COUNT, kind="int", min=0),
            Column(C.COL_LAUNCH_DATE, kind="date", min="2023-01-01", max="2026-06-30"),
            Column(C.COL_IMAGE_INDEX, kind="int", min=-1),
        ),
        key=(C.COL_PRODUCT_ID,),
    ),
    "queries": Schema(
        "queries.csv",
        (
            Column(C.COL_QUERY_ID, pattern=r"Q\d{4}", unique=True),
            Column(C.COL_QUERY, pattern=_NONEMPTY),
            Column(C.COL_LANGUAGE, allowed=C.LANGUAGES),
            Column(C.COL_QUERY_KIND, allowed=C.QUERY_KINDS),
        ),
        key=(C.COL_QUERY_ID,),
    ),
    "qrels": Schema(
        "qrels.csv",
        (
            Column(C.COL_QUERY_ID, pattern=r"Q\d{4}", references=("queries.csv", C.COL_QUERY_ID)),
            Column(
                C.COL_PRODUCT_ID, pattern=r"P\d{5}", references=("catalog.csv", C.COL_PRODUCT_ID)
            ),
            Column(C.COL_LABEL, allowed=C.ESCI_LABELS),
            Column(C.COL_GRADE, kind="int", min=0, max=max(C.ESCI_GRADES.values())),
        ),
        key=(C.COL_QUERY_ID, C.COL_PRODUCT_ID),
    ),
    "users": Schema(
        "users.csv",
        (
            Column(C.COL_USER_ID, pattern=r"U\d{4}", unique=True),
            Column(C.COL_LANGUAGE, allowed=C.LANGUAGES),
            Column(C.COL_AGE_GROUP, allowed=("18-24", "25-34", "35-44", "45-54", "55+")),
            Column(C.COL_GENDER, allowed=("female", "male", "unspecified")),
            Column(C.COL_SIGNUP_DATE, kind="date"),
        ),
        key=(C.COL_USER_ID,),
    ),
    "interactions": Schema(
        "interactions.csv",
        (
            Column(C.COL_USER_ID, pattern=r"U\d{4}", references=("users.csv", C.COL_USER_ID)),
            Column(
                C.COL_PRODUCT_ID, pattern=r"P\d{5}", references=("catalog.csv", C.COL_PRODUCT_ID)
            ),
            Column(C.COL_EVENT, allowed=C.EVENTS),
            Column(C.COL_TIMESTAMP, kind="datetime"),
            Column(C.COL_RATING, kind="float", min=1, max=5, nullable=True),
            Column(C.COL_POSITION, kind="int", min=0),
            Column(C.COL_SPLIT, allowed=C.SPLITS),
        ),
    ),
    # The online simulator's truth (recsys_kit.simulator): never a feature of a model.
    "shoppers": Schema(
        "shoppers.csv",
        (
            _key_of(C.COL_USER_ID, r"U\d{4}", "users.csv"),
            Column("price_sensitivity", kind="float", min=0.0),
            Column("budget", kind="float", min=0.01),
            Column("colors", pattern=_VALUES),
            Column("styles", pattern=_VALUES),
            Column("position_bias", kind="float", min=0.0, max=5.0),
            Column("activity", kind="float", min=0.0),
            *(Column(f"affinity_{d}", kind="float", min=0.0, max=1.0) for d in C.DEPARTMENTS),
        ),
        key=(C.COL_USER_ID,),
    ),
    "intents": Schema(
        "intents.csv",
        (
            _key_of(C.COL_QUERY_ID, r"Q\d{4}", "queries.csv"),
            Column("categories", pattern=_VALUES),
            Column("close", pattern=_OPTIONAL_VALUES, nullable=True),
            Column("complements", pattern=_OPTIONAL_VALUES, nullable=True),
            *(Column(col, pattern=r"[^|]+(\|[^|]+)*|", nullable=True) for col in INTENT_ATTRIBUTES),
            Column("max_price", kind="float", min=0.01, nullable=True),
            Column("min_rating", kind="float", min=1.0, max=5.0, nullable=True),
        ),
        key=(C.COL_QUERY_ID,),
    ),
}

_DATE_FORMATS = {"date": "%Y-%m-%d", "datetime": "%Y-%m-%dT%H:%M:%S"}


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------
def _fail(file: str, column: str, problem: str, df: pd.DataFrame, bad: pd.Series, fix: str):
    """Raise a SchemaError quoting the first offending row (1-based data row number)."""
    pos = int(np.flatnonzero(bad.to_numpy())[0])
    row = df.iloc[pos].to_dict()
    n_bad = int(bad.sum())
    raise SchemaError(
        f"{file}: column '{column}' {problem} ({n_bad} bad row(s); first at data row {pos + 1}: "
        f"{column}={row.get(column)!r}, row={_short(row)}). Fix: {fix}."
    )


def _short(row: dict) -> str:
    text = ", ".join(f"{k}={str(v)[:30]!r}" for k, v in list(row.items())[:4])
    return "{" + text + ", ...}"


def _read_csv(path: Path, file: str) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(
            f"{file} not found at {path}.{paths.override_hint(path)} Fix: {REGENERATE} (needs "
            f"`apt-get install dataset-fashion-mnist`) {RESTORE}, or pass path= to the loader."
        )
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise SchemaError(f"{file}: not a readable UTF-8 CSV ({err}). Fix: {REGENERATE}.") from err


def validate(df: pd.DataFrame, schema: Schema, fix: str = REGENERATE) -> pd.DataFrame:
    """Check a frame of raw strings against ``schema`` and convert it to the documented dtypes.

    Args:
        df: the file as read with ``dtype=str, keep_default_na=False``.
        schema: one of :data:`SCHEMAS`.
        fix: what to tell the user when the data is wrong.

    Returns:
        A new frame with converted dtypes (the input is not modified).

    Raises:
        SchemaError: on the first violation, naming file, column, a sample row and the fix.

    Example:
        >>> raw = pd.DataFrame({"query_id": ["Q0001"], "query": ["red dress"],
        ...                     "language": ["en"], "kind": ["exact"]})
        >>> validate(raw, SCHEMAS["queries"]).shape
        (1, 4)
    """
    f = schema.file
    missing = [c for c in schema.names if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{f}: missing column(s) {missing}; found {list(df.columns)}. "
            f"Fix: the file must have columns {schema.names}; {fix}."
        )
    out = pd.DataFrame(index=df.index)
    for col in schema.columns:
        raw = df[col.name].astype(str)
        empty = raw.str.strip() == ""
        if not col.nullable and empty.any():
            _fail(f, col.name, "has empty values", df, empty, fix)
        if col.kind == "str":
            values = raw
            if col.allowed is not None:
                bad = ~raw.isin(col.allowed)
                if bad.any():
                    _fail(f, col.name, "has unknown values", df, bad,
                          f"expected one of {list(col.allowed)}; {fix}")  # fmt: skip
            if col.pattern is not None:
                bad = ~raw.str.fullmatch(col.pattern)
                if bad.any():
                    _fail(f, col.name, f"does not match /{col.pattern}/", df, bad, fix)
        elif col.kind in ("int", "float"):
            num = pd.to_numeric(raw.where(~empty), errors="coerce")
            bad = num.isna() & ~empty
            if col.kind == "int":
                bad |= num.notna() & (num != num.round())
            if bad.any():
                _fail(f, col.name, f"is not a valid {col.kind}", df, bad, fix)
            int_type = "Int64" if col.nullable else "int64"  # NaN needs the nullable type
            values = num.astype(int_type) if col.kind == "int" else num.astype("float64")
        else:
            values = pd.to_datetime(raw.where(~empty), format=_DATE_FORMATS[col.kind],
                                    errors="coerce")  # fmt: skip
            bad = values.isna() & ~empty
            if bad.any():
                _fail(f, col.name, f"is not a {_DATE_FORMATS[col.kind]} date", df, bad, fix)
            values = values.astype("datetime64[ns]")  # same unit under pandas 2 and 3
        if col.min is not None or col.max is not None:
            lo = pd.Timestamp(col.min) if col.kind in _DATE_FORMATS and col.min else col.min
            hi = pd.Timestamp(col.max) if col.kind in _DATE_FORMATS and col.max else col.max
            bad = pd.Series(False, index=df.index)
            if lo is not None:
                bad |= values < lo
            if hi is not None:
                bad |= values > hi
            if bad.any():
                _fail(f, col.name, f"is outside [{col.min}, {col.max}]", df, bad.fillna(False), fix)
        if col.unique:
            bad = raw.duplicated(keep=False)
            if bad.any():
                _fail(f, col.name, "has duplicate ids", df, bad, fix)
        out[col.name] = values
    if len(schema.key) > 1:
        bad = df.duplicated(list(schema.key), keep=False)
        if bad.any():
            _fail(f, schema.key[0], f"has duplicate {list(schema.key)} pairs", df, bad, fix)
    return out


def _check_references(df: pd.DataFrame, schema: Schema, folder: Path) -> None:
    """Foreign keys against sibling files in the same folder (skipped when a sibling is absent)."""
    for col in schema.columns:
        if col.references is None:
            continue
        other_file, other_col = col.references
        other = folder / other_file
        if not other.is_file():
            continue
        known = pd.read_csv(other, usecols=[other_col], dtype=str)[other_col]
        bad = ~df[col.name].isin(known)
        if bad.any():
            _fail(schema.file, col.name, f"refers to ids missing from {other_file}", df, bad,
                  f"files are out of sync; {REGENERATE}")  # fmt: skip


def _load(name: str, path: str | Path | None) -> tuple[pd.DataFrame, Path]:
    schema = SCHEMAS[name]
    path = Path(path) if path is not None else paths.minishop_dir() / schema.file
    df = validate(_read_csv(path, schema.file), schema)
    _check_references(df, schema, path.parent)
    return df, path


# ------------------------------------------------------------------------------------------------
# MiniShop loaders
# ------------------------------------------------------------------------------------------------
def load_catalog(path: str | Path | None = None) -> pd.DataFrame:
    """The MiniShop catalog, one row per product, sorted by ``product_id``.

    Args:
        path: a ``catalog.csv``; default ``paths.minishop_dir() / "catalog.csv"``.

    Returns:
        Columns of ``SCHEMAS["catalog"]``; ``launch_date`` datetime64, ``price``/``rating``
        float64, ``review_count``/``image_index`` int64 (``-1`` = no picture).

    Raises:
        FileNotFoundError: missing file. SchemaError: malformed file, or an ``image_index``
            beyond the rows of the sibling ``images.npy``.

    Example:
        >>> load_catalog()["department"].nunique()
        7
    """
    df, path = _load("catalog", path)
    images = path.parent / "images.npy"
    idx = df[C.COL_IMAGE_INDEX]
    if images.is_file():
        n = np.load(images, mmap_mode="r").shape[0]  # header only: cheap
        bad = idx >= n
        if bad.any():
            _fail("catalog.csv", C.COL_IMAGE_INDEX, f"is out of range for images.npy ({n} rows)",
                  df, bad, f"catalog and images are out of sync; {REGENERATE}")  # fmt: skip
    dup = idx.duplicated(keep=False) & (idx >= 0)
    if dup.any():
        _fail("catalog.csv", C.COL_IMAGE_INDEX, "reuses a picture row", df, dup, REGENERATE)
    return df


def load_images(path: str | Path | None = None) -> np.ndarray:
    """Product pictures: row ``i`` belongs to the product whose ``image_index == i``.

    Args:
        path: an ``images.npy``; default ``paths.minishop_dir() / "images.npy"``.

    Returns:
        ``uint8`` array of shape ``(n_images, 28, 28)`` (grey, 0 = background).

    Example:
        >>> load_images().shape[1:]
        (28, 28)
    """
    path = Path(path) if path is not None else paths.minishop_dir() / "images.npy"
    if not path.is_file():
        raise FileNotFoundError(
            f"images.npy not found at {path}.{paths.override_hint(path)} Fix: {REGENERATE} "
            f"(needs `apt-get install dataset-fashion-mnist`) {RESTORE}."
        )
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise SchemaError(
            f"images.npy: not a numpy array file ({err}). Fix: {REGENERATE}."
        ) from err
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[1:] != (28, 28):
        raise SchemaError(
            f"images.npy: expected uint8 (n, 28, 28), got {arr.dtype} {arr.shape}. "
            f"Fix: {REGENERATE}."
        )
    return arr


def load_queries(path: str | Path | None = None) -> pd.DataFrame:
    """Search queries: ``query_id``, ``query``, ``language`` (en/zh), ``kind``.

    ``kind`` is one of ``constants.QUERY_KINDS``; ``cross_lingual`` queries are meant to be
    matched against product text in the *other* language (see ``datasets/DATASHEET.md``).

    Example:
        >>> "美妆推荐" in set(load_queries()["query"])
        True
    """
    return _load("queries", path)[0]


def load_qrels(path: str | Path | None = None) -> pd.DataFrame:
    """Graded relevance labels: ``query_id``, ``product_id``, ``esci_label``, ``grade``.

    Only judged (pooled) products appear; unjudged products count as irrelevant. Raises
    SchemaError when a grade disagrees with ``constants.ESCI_GRADES`` or an id is unknown.

    Example:
        >>> set(load_qrels()["esci_label"]) == {"E", "S", "C", "I"}
        True
    """
    df, _ = _load("qrels", path)
    bad = df[C.COL_GRADE] != df[C.COL_LABEL].map(C.ESCI_GRADES)
    if bad.any():
        _fail("qrels.csv", C.COL_GRADE, "disagrees with esci_label", df, bad,
              f"grade must follow {C.ESCI_GRADES}; {REGENERATE}")  # fmt: skip
    return df


def load_users(path: str | Path | None = None) -> pd.DataFrame:
    """Users: ``user_id``, ``language``, ``age_group``, ``gender``, ``signup_date``.

    Latent shopper preferences are deliberately absent (they are what recommenders infer).
    """
    return _load("users", path)[0]


def load_interactions(path: str | Path | None = None) -> pd.DataFrame:
    """Behaviour log sorted by user and time.

    Returns:
        ``user_id``, ``product_id``, ``event`` (``constants.EVENTS``), ``timestamp``
        (datetime64), ``rating`` (float64, NaN unless ``event == "rating"``), ``position``
        (int64, 1-based rank shown, 0 = unknown), ``split`` (train/test, time-based).

    Example:
        >>> sorted(load_interactions()["split"].unique())
        ['test', 'train']
    """
    df, _ = _load("interactions", path)
    is_rating = df[C.COL_EVENT] == "rating"
    bad = is_rating == df[C.COL_RATING].isna()
    if bad.any():
        _fail("interactions.csv", C.COL_RATING, "must be 1-5 for rating events and empty "
              "otherwise", df, bad, REGENERATE)  # fmt: skip
    return df


def load_shoppers(path: str | Path | None = None) -> pd.DataFrame:
    """Latent shopper preferences: the truth of the online simulator, **not** a model feature.

    One row per user: ``price_sensitivity`` (utility lost per unit of log(price / category
    median)), ``budget`` (multiple of the category median price above which buying gets
    unlikely), ``colors`` and ``styles`` (three preferred values each, joined by "|"),
    ``position_bias`` (examination probability ``rank ** -position_bias``), ``activity``
    (sessions per year) and ``affinity_<department>`` (department browsing probabilities).
    A recommender that reads this file is reading the answer key; use it only to simulate
    shoppers (``recsys_kit.simulator``).

    Example:
        >>> int(load_shoppers()["colors"].str.count("[|]").max())
        2
    """
    return _load("shoppers", path)[0]


def load_intents(path: str | Path | None = None) -> pd.DataFrame:
    """The structured intent behind each query: what the labelling rules and the simulator read.

    Columns: ``query_id``; ``categories`` (Exact categories), ``close`` (Substitute categories)
    and ``complements`` (Complement categories), joined by "|"; one column per attribute of
    :data:`INTENT_ATTRIBUTES` holding its allowed values ("" = no constraint); ``max_price``
    and ``min_rating`` (NaN = none). Empty text cells are returned as "".

    Example:
        >>> intents = load_intents().set_index("query_id")
        >>> intents.loc[load_queries().set_index("query").loc["美妆推荐", "query_id"], "min_rating"]
        np.float64(4.0)
    """
    df, _ = _load("intents", path)
    text = ["close", "complements", *INTENT_ATTRIBUTES]
    df[text] = df[text].fillna("")
    return df


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------
def qrels_dict(qrels: pd.DataFrame) -> dict[str, dict[str, int]]:
    """``{query_id: {product_id: grade}}``, the format ``recsys_kit.metrics`` takes.

    Example:
        >>> qrels_dict(pd.DataFrame({"query_id": ["Q1"], "product_id": ["P1"], "grade": [3]}))
        {'Q1': {'P1': 3}}
    """
    out: dict[str, dict[str, int]] = {}
    for qid, pid, grade in zip(qrels[C.COL_QUERY_ID], qrels[C.COL_PRODUCT_ID], qrels[C.COL_GRADE]):
        out.setdefault(str(qid), {})[str(pid)] = int(grade)
    return out


def product_text(catalog: pd.DataFrame, lang: str = "en") -> list[str]:
    """Title and description of each product, ready to encode or index.

    Args:
        catalog: a frame with ``title_*``/``description_*`` columns (MiniShop, WANDS, ESCI).
        lang: ``"en"``, ``"zh"`` or ``"both"`` (English then Chinese).

    Returns:
        One string per row, in catalog order.

    Example:
        >>> product_text(pd.DataFrame({"title_en": ["Red Dress"], "description_en": ["Silk."]}))
        ['Red Dress. Silk.']
    """
    if lang not in ("en", "zh", "both"):
        raise ValueError(f"lang must be 'en', 'zh' or 'both', got {lang!r}")
    langs = ("en", "zh") if lang == "both" else (lang,)
    parts = []
    for code in langs:
        cols = [f"title_{code}", f"description_{code}"]
        missing = [c for c in cols if c not in catalog.columns]
        if missing:
            raise KeyError(f"catalog has no {missing} column(s); use lang='en' for this catalog")
        title = catalog[cols[0]].fillna("").astype(str)
        desc = catalog[cols[1]].fillna("").astype(str)
        joined = (title + ". " + desc).where(desc.str.strip() != "", title)
        parts.append(joined.where(title.str.strip() != "", desc))  # no dangling ". "
    text = parts[0] if len(parts) == 1 else parts[0] + " " + parts[1]
    return text.tolist()


def train_test_split(interactions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fixed time-based split stored in the ``split`` column.

    Returns:
        ``(train, test)`` with fresh indexes.

    Example:
        >>> train, test = train_test_split(load_interactions())
        >>> train["timestamp"].max() < test["timestamp"].min()
        True
    """
    if C.COL_SPLIT not in interactions.columns:
        raise KeyError("interactions has no 'split' column; load it with load_interactions()")
    is_test = interactions[C.COL_SPLIT] == "test"
    return (
        interactions[~is_test].reset_index(drop=True),
        interactions[is_test].reset_index(drop=True),
    )


_TOKEN_RE = re.compile(r"[0-9a-z\u00c0-\u024f]+|[\u3400-\u9fff]+")


def text_tokens(text: str) -> set[str]:
    """Lexical tokens used for MiniShop's "no shared word" guarantee of synonym queries.

    Latin text: lower-cased alphanumeric words. Chinese: overlapping character bigrams (a
    single character when a run has one), as in Lucene's CJK analyzer.

    Example:
        >>> sorted(text_tokens("Lumière 手提包"))
        ['lumière', '手提', '提包']
    """
    tokens: set[str] = set()
    for run in _TOKEN_RE.findall(text.lower()):
        if "\u3400" <= run[0] <= "\u9fff" and len(run) > 1:
            tokens.update(run[i : i + 2] for i in range(len(run) - 1))
        else:
            tokens.add(run)
    return tokens


# ------------------------------------------------------------------------------------------------
# Real catalogs
# ------------------------------------------------------------------------------------------------
class CatalogBundle(NamedTuple):
    """Catalog, queries and qrels of a real dataset, in MiniShop's column names."""

    catalog: pd.DataFrame
    queries: pd.DataFrame
    qrels: pd.DataFrame


WANDS_URL = "https://github.com/wayfair/WANDS (folder dataset/)"
#: WANDS label -> gain (Exact 2, Partial 1, Irrelevant 0, as in the WANDS paper).
WANDS_GRADES = {"Exact": 2, "Partial": 1, "Irrelevant": 0}
#: Approximate ESCI letter of each WANDS label ("Partial" has no exact ESCI counterpart).
WANDS_TO_ESCI = {"Exact": "E", "Partial": "S", "Irrelevant": "I"}
_WANDS_FIX = f"use the unmodified tab-separated files from {WANDS_URL}"

WANDS_SCHEMAS: dict[str, Schema] = {
    "product": Schema(
        "product.csv",
        (
            Column("product_id", pattern=r"\S+", unique=True),
            Column("product_name"),
            Column("product_class", nullable=True),
            Column("category hierarchy", nullable=True),
            Column("product_description", nullable=True),
            Column("product_features", nullable=True),
            Column("rating_count", kind="float", min=0, nullable=True),
            Column("average_rating", kind="float", min=0, max=5, nullable=True),
            Column("review_count", kind="float", min=0, nullable=True),
        ),
    ),
    "query": Schema(
        "query.csv",
        (
            Column("query_id", pattern=r"\S+", unique=True),
            Column("query"),
            Column("query_class", nullable=True),
        ),
    ),
    "label": Schema(
        "label.csv",
        (
            Column("id", pattern=r"\S+", unique=True),
            Column("query_id", pattern=r"\S+"),
            Column("product_id", pattern=r"\S+"),
            Column("label", allowed=tuple(WANDS_GRADES)),
        ),
        key=("query_id", "product_id"),
    ),
}


def _real_dir(path: str | Path | None, name: str) -> Path:
    return Path(path).expanduser() if path is not None else paths.data_dir() / name


def _read_tsv(folder: Path, schema: Schema, url: str) -> pd.DataFrame:
    file = folder / schema.file
    if not file.is_file():
        raise FileNotFoundError(
            f"{schema.file} not found in {folder}.{paths.override_hint(file)} Fix: download "
            f"WANDS from {url} and pass the folder holding product.csv, query.csv and "
            "label.csv as path=."
        )
    raw = pd.read_csv(file, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8")
    return validate(raw, schema, fix=_WANDS_FIX)


def load_wands(path: str | Path | None = None) -> CatalogBundle:
    """Wayfair's WANDS product-search dataset, in MiniShop's column names.

    Download ``product.csv``, ``query.csv`` and ``label.csv`` (tab-separated) from
    https://github.com/wayfair/WANDS yourself (MIT licence) and pass their folder.

    Args:
        path: folder holding the three files; default ``paths.data_dir() / "wands"``.

    Returns:
        ``CatalogBundle(catalog, queries, qrels)``. catalog: ``product_id``, ``title_en``
        (product_name), ``description_en``, ``department`` (first level of the category
        hierarchy), ``category`` (product_class), ``category_hierarchy``, ``product_features``,
        ``rating`` (average_rating), ``rating_count``, ``review_count`` (float64, NaN when
        missing). queries: ``query_id``, ``query``, ``language`` ("en"), ``query_class``.
        qrels: ``query_id``, ``product_id``, ``label`` (original), ``esci_label`` (approximate,
        :data:`WANDS_TO_ESCI`), ``grade`` (:data:`WANDS_GRADES`: Exact 2, Partial 1,
        Irrelevant 0).

    Raises:
        FileNotFoundError: a file is missing. SchemaError: a file is malformed (missing
            column, unknown label, duplicate id, label pointing to an unknown id).

    Example:
        >>> wands = load_wands("datasets/fixtures/wands")  # doctest: +SKIP
        >>> wands.qrels["grade"].max()  # doctest: +SKIP
        2
    """
    folder = _real_dir(path, "wands")
    prod = _read_tsv(folder, WANDS_SCHEMAS["product"], WANDS_URL)
    query = _read_tsv(folder, WANDS_SCHEMAS["query"], WANDS_URL)
    label = _read_tsv(folder, WANDS_SCHEMAS["label"], WANDS_URL)
    for col, known, file in (
        ("query_id", query["query_id"], "query.csv"),
        ("product_id", prod["product_id"], "product.csv"),
    ):
        bad = ~label[col].isin(known)
        if bad.any():
            _fail("label.csv", col, f"refers to ids missing from {file}", label, bad, _WANDS_FIX)
    hierarchy = prod["category hierarchy"]
    catalog = pd.DataFrame(
        {
            C.COL_PRODUCT_ID: prod["product_id"],
            C.COL_TITLE_EN: prod["product_name"],
            C.COL_DESCRIPTION_EN: prod["product_description"],
            C.COL_DEPARTMENT: hierarchy.str.split("/").str[0].str.strip().astype(str),
            C.COL_CATEGORY: prod["product_class"],
            "category_hierarchy": hierarchy,
            "product_features": prod["product_features"],
            C.COL_RATING: prod["average_rating"],
            "rating_count": prod["rating_count"],
            C.COL_REVIEW_COUNT: prod["review_count"],
        }
    )
    queries = pd.DataFrame(
        {
            C.COL_QUERY_ID: query["query_id"],
            C.COL_QUERY: query["query"],
            C.COL_LANGUAGE: "en",
            "query_class": query["query_class"],
        }
    )
    qrels = pd.DataFrame(
        {
            C.COL_QUERY_ID: label["query_id"],
            C.COL_PRODUCT_ID: label["product_id"],
            "label": label["label"],
            C.COL_LABEL: label["label"].map(WANDS_TO_ESCI),
            C.COL_GRADE: label["label"].map(WANDS_GRADES).astype("int64"),
        }
    )
    return CatalogBundle(catalog, queries, qrels)


ESCI_URL = "https://github.com/amazon-science/esci-data (folder shopping_queries_dataset/)"
ESCI_FILES = (
    "shopping_queries_dataset_examples.parquet",
    "shopping_queries_dataset_products.parquet",
)
ESCI_LOCALES = ("us", "es", "jp")
_ESCI_LANG = {"us": "en", "es": "es", "jp": "ja"}
_ESCI_FIX = f"use the unmodified parquet files from {ESCI_URL}"
_FLAG = dict(kind="int", min=0, max=1)

ESCI_SCHEMAS: dict[str, Schema] = {
    "examples": Schema(
        ESCI_FILES[0],
        (
            Column("example_id", pattern=r"\S+", unique=True),
            Column("query"),
            Column("query_id", pattern=r"\S+"),
            Column("product_id", pattern=r"\S+"),
            Column("product_locale", allowed=ESCI_LOCALES),
            Column("esci_label", allowed=C.ESCI_LABELS),
            Column("small_version", **_FLAG),
            Column("large_version", **_FLAG),
            Column("split", allowed=C.SPLITS),
        ),
        key=("query_id", "product_id"),
    ),
    "products": Schema(
        ESCI_FILES[1],
        (
            Column("product_id", pattern=r"\S+"),
            Column("product_title", nullable=True),
            Column("product_description", nullable=True),
            Column("product_bullet_point", nullable=True),
            Column("product_brand", nullable=True),
            Column("product_color", nullable=True),
            Column("product_locale", allowed=ESCI_LOCALES),
        ),
        key=("product_id", "product_locale"),
    ),
}


def _read_parquet(folder: Path, schema: Schema) -> pd.DataFrame:
    file = folder / schema.file
    if not file.is_file():
        raise FileNotFoundError(
            f"{schema.file} not found in {folder}.{paths.override_hint(file)} Fix: download the "
            f"Shopping Queries dataset from {ESCI_URL} and pass the folder holding "
            f"{list(ESCI_FILES)} as path=."
        )
    try:
        import pyarrow  # noqa: F401  (pandas.read_parquet's engine)
    except ImportError as err:
        raise ImportError("reading ESCI parquet files needs pyarrow: pip install pyarrow") from err
    import pyarrow.parquet as pq

    present = set(pq.read_schema(file).names)
    missing = [c for c in schema.names if c not in present]
    if missing:
        raise SchemaError(
            f"{schema.file}: missing column(s) {missing}; found {sorted(present)}. "
            f"Fix: the file must have columns {schema.names}; {_ESCI_FIX}."
        )
    return pd.read_parquet(file, columns=schema.names)


def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Parquet values as strings (None -> "") so :func:`validate` can check them."""
    return df.apply(lambda s: s.astype(object).where(s.notna(), "").astype(str))


def load_esci(
    path: str | Path | None = None, locale: str | None = "us", small_version: bool = True
) -> CatalogBundle:
    """Amazon's Shopping Queries dataset (ESCI), in MiniShop's column names.

    Download the two parquet files from https://github.com/amazon-science/esci-data
    (Apache-2.0) yourself and pass their folder. Needs ``pyarrow``.

    Args:
        path: folder holding :data:`ESCI_FILES`; default ``paths.data_dir() / "esci"``.
        locale: ``"us"``, ``"es"``, ``"jp"`` or ``None`` (all; then ``product_id`` is unique
            only together with ``product_locale``).
        small_version: keep only the reduced "task 1" subset (``small_version == 1``).

    Returns:
        ``CatalogBundle(catalog, queries, qrels)``. catalog (only judged products):
        ``product_id``, ``title_en``, ``description_en`` (these keep MiniShop's names for every
        locale: for es/jp they hold Spanish/Japanese text), ``bullet_point``, ``brand``,
        ``color``, ``product_locale``. queries: ``query_id``, ``query``, ``language``
        (en/es/ja), ``split``. qrels: ``query_id``, ``product_id``, ``esci_label``, ``grade``
        (``constants.ESCI_GRADES``: E 3, S 2, C 1, I 0), ``split``.

    Raises:
        FileNotFoundError: missing file. ImportError: no pyarrow. SchemaError: malformed file.
        ValueError: unknown locale.

    Example:
        >>> esci = load_esci("datasets/fixtures/esci", locale="us")  # doctest: +SKIP
        >>> sorted(esci.qrels["esci_label"].unique())  # doctest: +SKIP
        ['C', 'E', 'I', 'S']
    """
    if locale is not None and locale not in ESCI_LOCALES:
        raise ValueError(f"locale must be one of {ESCI_LOCALES} or None, got {locale!r}")
    folder = _real_dir(path, "esci")
    ex = _read_parquet(folder, ESCI_SCHEMAS["examples"])
    prod = _read_parquet(folder, ESCI_SCHEMAS["products"])
    # Filter before validating: the full files hold 2.6M examples and 1.8M products.
    if locale is not None:
        ex = ex[ex["product_locale"] == locale]
        prod = prod[prod["product_locale"] == locale]
    if small_version:
        ex = ex[ex["small_version"].astype(str) == "1"]
    ex = validate(_as_text(ex.reset_index(drop=True)), ESCI_SCHEMAS["examples"], _ESCI_FIX)
    keys = ["product_id", "product_locale"]
    prod = prod.merge(ex[keys].drop_duplicates(), on=keys)  # only products that are judged
    prod = validate(_as_text(prod), ESCI_SCHEMAS["products"], _ESCI_FIX)
    known = pd.MultiIndex.from_frame(prod[keys])
    bad = pd.Series(~pd.MultiIndex.from_frame(ex[keys]).isin(known), index=ex.index)
    if bad.any():
        _fail(ESCI_FILES[0], "product_id", f"refers to products missing from {ESCI_FILES[1]}",
              ex, bad, _ESCI_FIX)  # fmt: skip
    catalog = pd.DataFrame(
        {
            C.COL_PRODUCT_ID: prod["product_id"],
            C.COL_TITLE_EN: prod["product_title"],
            C.COL_DESCRIPTION_EN: prod["product_description"],
            "bullet_point": prod["product_bullet_point"],
            C.COL_BRAND: prod["product_brand"],
            C.COL_COLOR: prod["product_color"],
            "product_locale": prod["product_locale"],
        }
    ).sort_values(keys, kind="stable", ignore_index=True)
    queries = (
        ex[[C.COL_QUERY_ID, C.COL_QUERY, "product_locale", "split"]]
        .drop_duplicates(C.COL_QUERY_ID)
        .assign(**{C.COL_LANGUAGE: lambda d: d["product_locale"].map(_ESCI_LANG)})
        [[C.COL_QUERY_ID, C.COL_QUERY, C.COL_LANGUAGE, "split"]]
        .reset_index(drop=True)
    )  # fmt: skip
    qrels = pd.DataFrame(
        {
            C.COL_QUERY_ID: ex[C.COL_QUERY_ID],
            C.COL_PRODUCT_ID: ex["product_id"],
            C.COL_LABEL: ex["esci_label"],
            C.COL_GRADE: ex["esci_label"].map(C.ESCI_GRADES).astype("int64"),
            "split": ex["split"],
        }
    ).reset_index(drop=True)
    return CatalogBundle(catalog, queries, qrels)
