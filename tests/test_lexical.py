"""Tests for recsys_kit.lexical: tokenizer and BM25 search."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys_kit.lexical import BM25Index, tokenize

DOCS = [
    "Red cotton T-shirt for men",
    "Blue denim jeans",
    "红色连衣裙 夏季",
    "Red leather handbag 红色手提包",
    "Running shoes, lightweight",
]
IDS = ["p0", "p1", "p2", "p3", "p4"]


def test_tokenize_latin_and_chinese():
    assert tokenize("Red T-Shirt, 2-Pack!") == ["red", "t", "shirt", "2", "pack"]
    assert tokenize("ＡＢＣ１２３") == ["abc123"]  # full-width -> ASCII (NFKC)
    toks = tokenize("红色连衣裙")
    assert "红色" in toks and "连衣裙" in toks and "连衣" in toks  # search-mode sub-words
    assert tokenize("") == [] and tokenize("  ,,  ") == []
    mixed = tokenize("iPhone手机壳")
    assert mixed[0] == "iphone" and "手机" in mixed
    with pytest.raises(TypeError):
        tokenize(None)  # type: ignore[arg-type]


def test_search_ranks_matching_docs_first():
    bm = BM25Index(DOCS, IDS)
    scores, idx = bm.search(["red shirt", "连衣裙", "红色"], k=2)
    assert scores.shape == idx.shape == (3, 2)
    assert idx[0, 0] == 0  # "red" and "shirt" both in doc 0
    assert idx[1, 0] == 2
    assert set(idx[2].tolist()) == {2, 3}  # both Chinese docs mention 红色
    assert (np.diff(scores, axis=1) <= 0).all()
    assert bm.search_ids("denim", k=1)[0][0][0] == "p1"


def test_bm25_score_matches_lucene_formula():
    # Lucene (>= 8) BM25 as in bm25s: idf = ln(1 + (N - df + 0.5) / (df + 0.5)) and
    # tf / (tf + k1 (1 - b + b dl / avgdl)) -- without the constant (k1 + 1) factor.
    docs = ["a b", "a a c", "d"]
    bm = BM25Index(docs, [0, 1, 2], k1=1.2, b=0.75)
    n, avgdl = 3, (2 + 3 + 1) / 3
    idf = math.log(1 + (n - 2 + 0.5) / (2 + 0.5))

    def tf_part(tf: int, dl: int) -> float:
        return tf / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl))

    want = [idf * tf_part(1, 2), idf * tf_part(2, 3), 0.0]
    np.testing.assert_allclose(bm.get_scores("a"), want, rtol=1e-5)


def test_unknown_query_scores_zero_in_index_order():
    bm = BM25Index(DOCS, IDS)
    for q in ("zzzz qqq", "", "！！"):
        scores, idx = bm.search(q, k=3)
        assert (scores == 0).all()
        assert idx.tolist() == [[0, 1, 2]]


def test_ties_go_to_lower_index():
    bm = BM25Index(["red", "blue", "red", "red"], ["a", "b", "c", "d"])
    _, idx = bm.search("red", k=3)
    assert idx.tolist() == [[0, 2, 3]]


def test_errors():
    with pytest.raises(ValueError, match="one id per text"):
        BM25Index(["a"], [1, 2])
    with pytest.raises(ValueError, match="empty corpus"):
        BM25Index([], [])
    bm = BM25Index(DOCS, IDS)
    with pytest.raises(ValueError, match="larger than the corpus"):
        bm.search("red", k=10)
    with pytest.raises(ValueError, match="positive int"):
        bm.search("red", k=0)
