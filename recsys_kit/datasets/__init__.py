"""Datasets: every loader, splitter and shared sample of the course, one module per concern.

* :mod:`~recsys_kit.datasets.minishop` -- MiniShop's schemas (kept as data), validation and
  loaders (``load_catalog``, ``load_queries``, ``load_qrels``, ...), ``qrels_dict``,
  ``product_text``, ``text_tokens``.
* :mod:`~recsys_kit.datasets.catalogs` -- two real product-search catalogs in MiniShop's column
  names: Wayfair WANDS (``load_wands``) and Amazon ESCI (``load_esci``).
* :mod:`~recsys_kit.datasets.sequences` -- Amazon 5-core review sequences
  (``load_amazon_sequences``).
* :mod:`~recsys_kit.datasets.splits` -- every train/test splitter: MiniShop's time split,
  leave-last-out, query splits.
* :mod:`~recsys_kit.datasets.sampling` -- samples notebooks share: ``stratified_subset``,
  ``minishop_sample`` (the mini-shop of Modules 2 and 5).
* :mod:`~recsys_kit.datasets.frames` -- column checks and sorted ids shared by all of them.

Loaders validate what they read and raise :class:`SchemaError` naming the file, the column, a
sample bad row and the fix. Files are only read, never written.

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

from recsys_kit import paths  # noqa: F401  (datasets.paths, as before the package)
from recsys_kit.datasets.catalogs import (
    ESCI_FILES,
    ESCI_LOCALES,
    ESCI_SCHEMAS,
    ESCI_URL,
    WANDS_GRADES,
    WANDS_SCHEMAS,
    WANDS_TO_ESCI,
    WANDS_URL,
    CatalogBundle,
    load_esci,
    load_wands,
)
from recsys_kit.datasets.frames import check_columns, sorted_unique
from recsys_kit.datasets.minishop import (
    INTENT_ATTRIBUTES,
    REGENERATE,
    RESTORE,
    SCHEMAS,
    Column,
    Schema,
    SchemaError,
    load_catalog,
    load_images,
    load_intents,
    load_interactions,
    load_qrels,
    load_queries,
    load_shoppers,
    load_users,
    product_text,
    qrels_dict,
    text_tokens,
    validate,
)
from recsys_kit.datasets.sampling import MiniShopSample, minishop_sample, stratified_subset
from recsys_kit.datasets.sequences import amazon_fixture_path, load_amazon_sequences
from recsys_kit.datasets.splits import (
    SPLIT_TEST,
    SPLIT_TRAIN,
    SPLIT_VALID,
    leave_last_out,
    split_frames,
    train_test_queries,
    train_test_split,
)

__all__ = [
    "SCHEMAS",
    "INTENT_ATTRIBUTES",
    "Column",
    "Schema",
    "SchemaError",
    "CatalogBundle",
    "MiniShopSample",
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
    "text_tokens",
    "validate",
    "load_wands",
    "load_esci",
    "load_amazon_sequences",
    "amazon_fixture_path",
    "train_test_split",
    "leave_last_out",
    "split_frames",
    "train_test_queries",
    "SPLIT_TRAIN",
    "SPLIT_VALID",
    "SPLIT_TEST",
    "stratified_subset",
    "minishop_sample",
    "check_columns",
    "sorted_unique",
    "REGENERATE",
    "RESTORE",
    "WANDS_URL",
    "WANDS_GRADES",
    "WANDS_TO_ESCI",
    "WANDS_SCHEMAS",
    "ESCI_URL",
    "ESCI_FILES",
    "ESCI_LOCALES",
    "ESCI_SCHEMAS",
]
