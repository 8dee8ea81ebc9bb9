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
sample bad row and the fix (dtypes of the MiniShop frames: :mod:`recsys_kit.datasets.minishop`).
Files are only read, never written.

Example:
    >>> from recsys_kit.datasets import load_catalog, minishop_sample
    >>> len(load_catalog()) > 1000
    True
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
    "ESCI_FILES",
    "ESCI_LOCALES",
    "ESCI_SCHEMAS",
    "ESCI_URL",
    "INTENT_ATTRIBUTES",
    "REGENERATE",
    "RESTORE",
    "SCHEMAS",
    "SPLIT_TEST",
    "SPLIT_TRAIN",
    "SPLIT_VALID",
    "WANDS_GRADES",
    "WANDS_SCHEMAS",
    "WANDS_TO_ESCI",
    "WANDS_URL",
    "amazon_fixture_path",
    "CatalogBundle",
    "check_columns",
    "Column",
    "leave_last_out",
    "load_amazon_sequences",
    "load_catalog",
    "load_esci",
    "load_images",
    "load_intents",
    "load_interactions",
    "load_qrels",
    "load_queries",
    "load_shoppers",
    "load_users",
    "load_wands",
    "minishop_sample",
    "MiniShopSample",
    "product_text",
    "qrels_dict",
    "Schema",
    "SchemaError",
    "sorted_unique",
    "split_frames",
    "stratified_subset",
    "text_tokens",
    "train_test_queries",
    "train_test_split",
    "validate",
]
