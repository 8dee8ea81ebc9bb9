"""BM25 lexical search over product text, for English and Chinese.

Scoring is done by `bm25s <https://github.com/xhluca/bm25s>`_ (Lucene >= 8 BM25:
``idf = ln(1 + (N - df + .5) / (df + .5))`` times ``tf / (tf + k1 (1 - b + b dl / avgdl))``);
this module only supplies a tokenizer that handles both languages and returns results shaped
like :func:`recsys_kit.ranking.topk`.

Tokenizer (:func:`tokenize`): text is NFKC-normalised (full-width letters and digits become
ASCII) and lowercased; then

* **CJK runs** are segmented with **jieba in search mode** (``cut_for_search``): it emits the
  dictionary words *and* their shorter sub-words (``连衣裙`` -> ``连衣``, ``衣裙``,
  ``连衣裙``), so a query for the short word still matches a title that uses the
  compound. We prefer it to character bigrams, which match more spurious pairs across word
  boundaries and make the index larger, while search-mode jieba keeps most
  of the bigrams' recall on product vocabulary.
* **Other text** is split into runs of letters/digits (``[^\\W_]+``), so ``"T-shirt 2-pack"`` ->
  ``t, shirt, 2, pack``. No stemming or stop-word list: BM25's IDF already discounts frequent
  words, and the course compares plain BM25 against dense retrieval.

Queries with no indexed token score 0 for every document; the order is then by document index
(ties always go to the lower index, as in :func:`recsys_kit.ranking.topk`).

Example:
    >>> tokenize("Red T-Shirt 红色连衣裙")
    ['red', 't', 'shirt', '红色', '连衣', '衣裙', '连衣裙']
    >>> bm = BM25Index(["red dress", "blue jeans", "red shoes"], ["a", "b", "c"])
    >>> bm.search("red shoes", k=2)[1].tolist()
    [[2, 0]]
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import bm25s
import jieba
import numpy as np

from recsys_kit.constants import DEFAULT_K

__all__ = ["tokenize", "BM25Index"]

jieba.setLogLevel(logging.WARNING)  # silence "Building prefix dict ..." on first use

# CJK Unified Ideographs (+ extension A and compatibility ideographs).
_CJK_RUN = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)")
_WORD = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """Split product or query text into BM25 tokens (see the module docstring).

    Args:
        text: any mix of Latin and Chinese text.

    Returns:
        The tokens, lowercased, in order of appearance.

    Example:
        >>> tokenize("iPhone 15 手机壳")
        ['iphone', '15', '手机', '壳']
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text).lower()
    tokens: list[str] = []
    for i, piece in enumerate(_CJK_RUN.split(text)):
        if i % 2:  # odd pieces are the captured CJK runs
            tokens.extend(w for w in jieba.cut_for_search(piece) if w.strip())
        else:
            tokens.extend(_WORD.findall(piece))
    return tokens


def _topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of one score vector: score descending, then lower index."""
    n = scores.shape[0]
    if k < n:
        t = scores[np.argpartition(scores, n - k)[n - k]]
        cand = np.flatnonzero(scores >= t)
    else:
        cand = np.arange(n)
    sel = cand[np.lexsort((cand, -scores[cand]))[:k]]
    return scores[sel], sel


class BM25Index:
    """A BM25 index over texts, searched with the same tokenizer.

    Args:
        texts: one text per document (e.g. title + description).
        ids: one id per document (kept for :meth:`search_ids`).
        k1: term-frequency saturation.
        b: length normalisation.

    Example:
        >>> bm = BM25Index(["红色连衣裙", "蓝色牛仔裤"], ["p1", "p2"])
        >>> bm.search_ids("连衣裙", k=1)  # doctest: +ELLIPSIS
        [[('p1', 0.78...)]]
    """

    def __init__(
        self, texts: Sequence[str], ids: Sequence[Any], k1: float = 1.5, b: float = 0.75
    ) -> None:
        if len(texts) != len(ids):
            raise ValueError(f"got {len(texts)} texts and {len(ids)} ids; pass one id per text")
        if len(texts) == 0:
            raise ValueError("cannot index an empty corpus; pass at least one text")
        if k1 < 0 or not 0.0 <= b <= 1.0:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.ids = list(ids)
        self.k1, self.b = k1, b
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        self._bm25.index([tokenize(t) for t in texts], show_progress=False)

    def __len__(self) -> int:
        return len(self.ids)

    def get_scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for one query (float32, shape (n_docs,))."""
        tokens = [t for t in tokenize(query) if t in self._bm25.vocab_dict]
        if not tokens:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def search(
        self, queries: str | Sequence[str], k: int = DEFAULT_K
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k documents per query, shaped like :func:`recsys_kit.ranking.topk`.

        Args:
            queries: one query or a list of queries.
            k: results per query, 1 <= k <= number of documents.

        Returns:
            ``(scores, indices)``, each (n_queries, k), best first, ties by lower index.
        """
        if isinstance(queries, str):
            queries = [queries]
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"k must be a positive int, got {k!r}")
        if k > len(self.ids):
            raise ValueError(f"k={k} is larger than the corpus ({len(self.ids)} documents)")
        scores = np.empty((len(queries), k), dtype=np.float32)
        indices = np.empty((len(queries), k), dtype=np.int64)
        for r, q in enumerate(queries):
            scores[r], indices[r] = _topk_rows(self.get_scores(q), k)
        return scores, indices

    def search_ids(
        self, queries: str | Sequence[str], k: int = DEFAULT_K
    ) -> list[list[tuple[Any, float]]]:
        """Like :meth:`search`, as ``(id, score)`` lists (the :class:`~recsys_kit.ranking.Index`
        format)."""
        scores, indices = self.search(queries, k)
        return [
            [(self.ids[j], float(s)) for s, j in zip(srow, irow, strict=True)]
            for srow, irow in zip(scores, indices, strict=True)
        ]
