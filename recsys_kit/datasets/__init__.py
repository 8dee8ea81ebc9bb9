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
from recsys_kit.datasets import catalogs, frames, minishop, sampling, sequences, splits

# Each room's public names are its __all__: a loader added to a room is exported here too.
from recsys_kit.datasets.catalogs import *  # noqa: F403
from recsys_kit.datasets.frames import *  # noqa: F403
from recsys_kit.datasets.minishop import *  # noqa: F403
from recsys_kit.datasets.minishop import INTENT_ATTRIBUTES, REGENERATE, RESTORE
from recsys_kit.datasets.sampling import *  # noqa: F403
from recsys_kit.datasets.sequences import *  # noqa: F403
from recsys_kit.datasets.splits import *  # noqa: F403

__all__ = [
    *minishop.__all__,
    *catalogs.__all__,
    *sequences.__all__,
    *splits.__all__,
    *sampling.__all__,
    *frames.__all__,
    "INTENT_ATTRIBUTES",
    "REGENERATE",
    "RESTORE",
]
