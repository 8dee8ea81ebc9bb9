"""The Amazon 5-core sequence loader, kept importable here: it lives in
:mod:`recsys_kit.datasets.sequences` with the other loaders.

Example:
    >>> from recsys_kit.cf.sequences import load_amazon_sequences
"""

from recsys_kit.datasets.sequences import FORMAT_HINT, amazon_fixture_path, load_amazon_sequences

__all__ = ["FORMAT_HINT", "amazon_fixture_path", "load_amazon_sequences"]
