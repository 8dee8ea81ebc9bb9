"""Encoders: texts and images to L2-normalised float32 vectors (one contract for both).

``encode_distributed`` encodes a large catalogue on a Dask cluster (the ``cluster`` extra).

Example:
    >>> from recsys_kit.encoders import TextEncoder, ImageEncoder    # doctest: +SKIP
"""

from recsys_kit.encoders.batch import encode_distributed
from recsys_kit.encoders.image import ImageEncoder
from recsys_kit.encoders.pooling import cls_pool, l2_normalize, mean_pool
from recsys_kit.encoders.text import TextEncoder, resolve_model
from recsys_kit.encoders.wordlevel import word_level_tokenizer

__all__ = [
    "ImageEncoder",
    "TextEncoder",
    "cls_pool",
    "encode_distributed",
    "l2_normalize",
    "mean_pool",
    "resolve_model",
    "word_level_tokenizer",
]
