"""MiniShop's files: schemas kept as data, their validation, the loaders and text helpers.

Every MiniShop loader validates its file against a schema kept as data (:data:`SCHEMAS`) and
raises :class:`SchemaError` naming the file, the column, a sample bad row and the fix. Files are
only read, never written. The schema machinery (:class:`Schema`, :func:`validate`) also checks
the real catalogs of :mod:`recsys_kit.datasets.catalogs`.

Returned dtypes (MiniShop):
    ids and text: pandas string (``str``); dates and timestamps: ``datetime64[ns]``;
    counts, indices, positions, grades: ``int64``; price and catalog rating: ``float64``;
    interaction rating: ``float64`` with NaN for non-rating events.

The module is over 600 lines because it holds every MiniShop file's schema as data beside its
loader (a dozen files), one place to read what a file must contain.


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

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit import paths

__all__ = [
    "SCHEMAS",
    "Column",
    "Schema",
    "SchemaError",
    "fail_rows",
    "validate",
    "load_catalog",
    "load_queries",
    "load_qrels",
    "load_users",
    "load_interactions",
    "load_faq_questions",
    "load_images",
    "load_shoppers",
    "load_intents",
    "qrels_dict",
    "product_text",
    "text_tokens",
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
    "faq_questions": Schema(
        "faq_questions.csv",
        (
            Column(C.COL_QUESTION_ID, pattern=r"F\d{4}", unique=True),
            Column(C.COL_QUESTION, pattern=_NONEMPTY),
            Column(C.COL_LANGUAGE, allowed=C.LANGUAGES),
            Column(
                C.COL_PRODUCT_ID, pattern=r"P\d{5}", references=("catalog.csv", C.COL_PRODUCT_ID)
            ),
            Column(C.COL_FIELD, allowed=(*C.FAQ_FIELDS, C.FAQ_NO_FIELD)),
            Column(C.COL_ANSWER, pattern=r"(\S.*\S|\S)?", nullable=True),
        ),
        key=(C.COL_QUESTION_ID,),
    ),
}

_DATE_FORMATS = {"date": "%Y-%m-%d", "datetime": "%Y-%m-%dT%H:%M:%S"}


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------
def fail_rows(file: str, column: str, problem: str, df: pd.DataFrame, bad: pd.Series, fix: str):
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
        out[col.name] = _validate_column(f, col, df, fix)
    if len(schema.key) > 1:
        bad = df.duplicated(list(schema.key), keep=False)
        if bad.any():
            fail_rows(f, schema.key[0], f"has duplicate {list(schema.key)} pairs", df, bad, fix)
    return out


def _validate_column(file: str, col: Column, df: pd.DataFrame, fix: str) -> pd.Series:
    """One column of :func:`validate`: emptiness, conversion, bounds, uniqueness."""
    raw = df[col.name].astype(str)
    empty = raw.str.strip() == ""
    if not col.nullable and empty.any():
        fail_rows(file, col.name, "has empty values", df, empty, fix)
    values = _converted(file, col, df, raw, empty, fix)
    if col.min is not None or col.max is not None:
        _check_bounds(file, col, df, values, fix)
    if col.unique:
        bad = raw.duplicated(keep=False)
        if bad.any():
            fail_rows(file, col.name, "has duplicate ids", df, bad, fix)
    return values


def _converted(
    file: str, col: Column, df: pd.DataFrame, raw: pd.Series, empty: pd.Series, fix: str
) -> pd.Series:
    """A column's raw strings checked and converted to its kind's dtype."""
    if col.kind == "str":
        if col.allowed is not None:
            bad = ~raw.isin(col.allowed)
            if bad.any():
                fail_rows(file, col.name, "has unknown values", df, bad,
                          f"expected one of {list(col.allowed)}; {fix}")  # fmt: skip
        if col.pattern is not None:
            bad = ~raw.str.fullmatch(col.pattern)
            if bad.any():
                fail_rows(file, col.name, f"does not match /{col.pattern}/", df, bad, fix)
        return raw
    if col.kind in ("int", "float"):
        num = pd.to_numeric(raw.where(~empty), errors="coerce")
        bad = num.isna() & ~empty
        if col.kind == "int":
            bad |= num.notna() & (num != num.round())
        if bad.any():
            fail_rows(file, col.name, f"is not a valid {col.kind}", df, bad, fix)
        int_type = "Int64" if col.nullable else "int64"  # NaN needs the nullable type
        return num.astype(int_type) if col.kind == "int" else num.astype("float64")
    values = pd.to_datetime(raw.where(~empty), format=_DATE_FORMATS[col.kind],
                            errors="coerce")  # fmt: skip
    bad = values.isna() & ~empty
    if bad.any():
        fail_rows(file, col.name, f"is not a {_DATE_FORMATS[col.kind]} date", df, bad, fix)
    return values.astype("datetime64[ns]")  # same unit under pandas 2 and 3


def _check_bounds(file: str, col: Column, df: pd.DataFrame, values: pd.Series, fix: str) -> None:
    """Fail on values outside the column's inclusive ``[min, max]``."""
    lo = pd.Timestamp(col.min) if col.kind in _DATE_FORMATS and col.min else col.min
    hi = pd.Timestamp(col.max) if col.kind in _DATE_FORMATS and col.max else col.max
    bad = pd.Series(False, index=df.index)
    if lo is not None:
        bad |= values < lo
    if hi is not None:
        bad |= values > hi
    if bad.any():
        problem = f"is outside [{col.min}, {col.max}]"
        fail_rows(file, col.name, problem, df, bad.fillna(False), fix)


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
            fail_rows(schema.file, col.name, f"refers to ids missing from {other_file}", df, bad,
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
            problem = f"is out of range for images.npy ({n} rows)"
            fix = f"catalog and images are out of sync; {REGENERATE}"
            fail_rows("catalog.csv", C.COL_IMAGE_INDEX, problem, df, bad, fix)
    dup = idx.duplicated(keep=False) & (idx >= 0)
    if dup.any():
        fail_rows("catalog.csv", C.COL_IMAGE_INDEX, "reuses a picture row", df, dup, REGENERATE)
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
        fail_rows("qrels.csv", C.COL_GRADE, "disagrees with esci_label", df, bad,
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
        fail_rows("interactions.csv", C.COL_RATING, "must be 1-5 for rating events and empty "
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


def load_faq_questions(path: str | Path | None = None) -> pd.DataFrame:
    """Labelled shopper questions for the customer-service FAQ (English and Chinese).

    Each question asks one fact of one product (``field``: material, color, season, gender or
    price) or something no product fact answers (``field == "none"``: warranty, returns,
    stock), where the right reply is to hand over to a person.

    Returns:
        ``question_id``, ``question``, ``language``, ``product_id``, ``field`` and ``answer``
        (the catalog's value as text, prices with two decimals; empty string for ``none``).

    Example:
        >>> set(load_faq_questions()["field"]) >= {"material", "price", "none"}
        True
    """
    df, _ = _load("faq_questions", path)
    bad = (df[C.COL_FIELD] == C.FAQ_NO_FIELD) != (df[C.COL_ANSWER] == "")
    if bad.any():
        fail_rows("faq_questions.csv", C.COL_ANSWER, f"must be empty exactly when field is "
              f"{C.FAQ_NO_FIELD!r}", df, bad, REGENERATE)  # fmt: skip
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
