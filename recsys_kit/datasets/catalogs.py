"""Two real product-search catalogs in MiniShop's column names: Wayfair WANDS and Amazon ESCI.

Neither is shipped (licences and size): download them and pass the folder as ``path=``. Each
file is checked against a schema (:class:`~recsys_kit.datasets.minishop.Schema`) before use,
so a truncated or edited file fails with the file, the column, a bad row and the fix.

Example:
    >>> bundle = load_wands("path/to/WANDS/dataset")                  # doctest: +SKIP
    >>> bundle.catalog.columns[:3].tolist()                            # doctest: +SKIP
    ['product_id', 'title_en', 'description_en']
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd

from recsys_kit import constants as C
from recsys_kit import paths
from recsys_kit.datasets.minishop import Column, Schema, SchemaError, fail_rows, validate

__all__ = [
    "CatalogBundle",
    "ESCI_FILES",
    "ESCI_LOCALES",
    "ESCI_SCHEMAS",
    "ESCI_URL",
    "WANDS_GRADES",
    "WANDS_SCHEMAS",
    "WANDS_TO_ESCI",
    "WANDS_URL",
    "load_esci",
    "load_wands",
]


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
            problem = f"refers to ids missing from {file}"
            fail_rows("label.csv", col, problem, label, bad, _WANDS_FIX)
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
        fail_rows(ESCI_FILES[0], "product_id", f"refers to products missing from {ESCI_FILES[1]}",
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
