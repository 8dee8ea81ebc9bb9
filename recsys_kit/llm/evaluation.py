"""Measure what an LLM adds: attribute accuracy, hallucinations, retrieval effect by query kind.

Example:
    >>> pred = pd.DataFrame({"product_id": ["P1"], "color": ["red"]})
    >>> truth = pd.DataFrame({"product_id": ["P1"], "color": ["Red"]})
    >>> float(attribute_accuracy(pred, truth, ["color"]).loc["color", "accuracy"])
    1.0
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import pandas as pd

from recsys_kit import constants as C
from recsys_kit.datasets import product_text, qrels_dict
from recsys_kit.lexical import BM25Index
from recsys_kit.metrics import evaluate

__all__ = [
    "CLAIM_FIELDS",
    "NOT_CLAIMS",
    "attribute_accuracy",
    "description_claims",
    "hallucination_rate",
    "retrieval_effect",
    "supported_by",
]

#: Fields whose values a description can state (the catalog's attribute vocabulary).
CLAIM_FIELDS = (C.COL_COLOR, C.COL_MATERIAL, C.COL_STYLE, C.COL_SEASON, C.COL_GENDER)
#: Vocabulary values too generic to count as a claim when they appear in running text.
NOT_CLAIMS = {"none", "all-season", "unisex"}


def _fields(pred: pd.DataFrame, other: pd.DataFrame, fields: Sequence[str] | None) -> list[str]:
    if fields is None:
        fields = [f for f in C.ATTRIBUTE_COLUMNS + (C.COL_BRAND, C.COL_CATEGORY) if f in pred]
    missing = [f for f in fields if f not in pred.columns or f not in other.columns]
    if missing:
        raise KeyError(f"field(s) {missing} missing from the predictions or the truth frame")
    if not fields:
        raise ValueError("no field to compare; pass fields=[...]")
    return list(fields)


def _align(pred: pd.DataFrame, truth: pd.DataFrame, on: str) -> pd.DataFrame:
    if on in pred.columns and on in truth.columns:
        if pred[on].duplicated().any():
            raise ValueError(f"predictions have duplicate {on!r} values; keep one row per product")
        return truth.set_index(on).loc[pred[on]].reset_index()
    if len(pred) != len(truth):
        raise ValueError(
            f"cannot align {len(pred)} predictions with {len(truth)} truth rows: give both a "
            f"{on!r} column or pass frames in the same order and length"
        )
    return truth.reset_index(drop=True)


def _norm(v: object) -> str | None:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return None
    return str(v).strip().lower()


def attribute_accuracy(
    pred_df: pd.DataFrame,
    truth_df: pd.DataFrame,
    fields: Sequence[str] | None = None,
    on: str = C.COL_PRODUCT_ID,
) -> pd.DataFrame:
    """Per-field accuracy of extracted attributes (case-insensitive exact match).

    Args:
        pred_df: predictions, one row per product (e.g. from ``extract_attributes``).
        truth_df: ground truth (e.g. the catalog), matched on ``on`` or by position.
        fields: fields to score (default: the attribute columns present in ``pred_df``).

    Returns:
        Index = field, plus ``"all"`` (macro mean); columns ``accuracy`` (a missing
        prediction counts as wrong), ``coverage`` (share predicted) and ``n``.
    """
    fields = _fields(pred_df, truth_df, fields)
    truth = _align(pred_df, truth_df, on)
    rows = {}
    for f in fields:
        p = pred_df[f].map(_norm).reset_index(drop=True)
        t = truth[f].map(_norm)
        rows[f] = {
            "accuracy": float((p == t).mean()),
            "coverage": float(p.notna().mean()),
            "n": len(p),
        }
    out = pd.DataFrame(rows).T
    out.loc["all"] = [out["accuracy"].mean(), out["coverage"].mean(), len(pred_df)]
    out["n"] = out["n"].astype(int)
    return out


def _supported(value: str, text: str) -> bool:
    """Every word of ``value`` starts some word of ``text`` ("sneaker" is in "Sneakers")."""
    words = re.findall(r"[^\W_]+", text.lower())
    return all(any(w.startswith(v) for w in words) for v in re.findall(r"[^\W_]+", value))


def supported_by(value: str, text: str) -> bool:
    """Whether ``text`` supports ``value``: each of its words starts a word of the text.

    The check :func:`hallucination_rate` uses for "unsupported" (case-insensitive).

    Example:
        >>> supported_by("Sneaker", "White Running Sneakers"), supported_by("red", "Blue Cap")
        (True, False)
    """
    return _supported(str(value).lower(), str(text))


def hallucination_rate(
    pred_df: pd.DataFrame,
    catalog: pd.DataFrame,
    fields: Sequence[str] | None = None,
    text_col: str = C.COL_TITLE_EN,
    on: str = C.COL_PRODUCT_ID,
) -> pd.DataFrame:
    """How often extracted values are invented or unsupported.

    * ``invented``: the value is not in the catalog's vocabulary for that field (a brand or
      colour that does not exist in the shop).
    * ``unsupported``: the value's words do not appear in the product's source text.
    * ``hallucinated``: invented, or unsupported *and* different from the ground truth: a
      claim that neither the text nor the catalog backs (a correct prior guess such as
      "unisex" for a t-shirt is not counted).

    Args:
        pred_df: predictions with ``on`` and the fields.
        catalog: the catalog (vocabulary, source text and truth).
        fields: fields to check (default: attribute columns present in ``pred_df``).
        text_col: the text the values were extracted from.

    Returns:
        Index = field plus ``"all"`` (pooled over fields); columns ``n_predicted``,
        ``invented``, ``unsupported``, ``hallucinated`` (shares of the predicted values).
    """
    fields = _fields(pred_df, catalog, fields)
    truth = _align(pred_df, catalog, on)
    text = truth[text_col].astype(str)
    rows = {}
    pooled = {"n_predicted": 0, "invented": 0, "unsupported": 0, "hallucinated": 0}
    for f in fields:
        vocab = {_norm(v) for v in catalog[f]}
        counts = dict.fromkeys(pooled, 0)
        # A list comprehension, not Series.map: pandas turns a None result back into NaN.
        values = [_norm(v) for v in pred_df[f]]
        for value, src, true in zip(values, text, truth[f].map(_norm)):
            if value is None:
                continue
            invented = value not in vocab
            unsupported = not _supported(value, src)
            counts["n_predicted"] += 1
            counts["invented"] += invented
            counts["unsupported"] += unsupported
            counts["hallucinated"] += invented or (unsupported and value != true)
        for k in pooled:
            pooled[k] += counts[k]
        rows[f] = counts
    rows["all"] = pooled
    out = pd.DataFrame(rows).T
    for k in ("invented", "unsupported", "hallucinated"):
        out[k] = out[k] / out["n_predicted"].where(out["n_predicted"] > 0)
    out["n_predicted"] = out["n_predicted"].astype(int)
    return out


def _expansions(catalog: pd.DataFrame, extra: Sequence[str] | Mapping[str, str]) -> list[str]:
    if isinstance(extra, Mapping):
        return [str(extra.get(pid, "")) for pid in catalog[C.COL_PRODUCT_ID]]
    if len(extra) != len(catalog):
        raise ValueError(
            f"doc_expansion has {len(extra)} texts for {len(catalog)} products: pass one per "
            "catalog row, or a {product_id: text} dict"
        )
    return ["" if t is None or (isinstance(t, float) and pd.isna(t)) else str(t) for t in extra]


def retrieval_effect(
    catalog: pd.DataFrame,
    queries: pd.DataFrame,
    qrels: pd.DataFrame,
    *,
    doc_expansion: Sequence[str] | Mapping[str, str] | None = None,
    query_rewrites: Mapping[str, str] | None = None,
    lang: str = "both",
    k: int = C.DEFAULT_K,
) -> pd.DataFrame:
    """BM25 nDCG@k by query kind, without and with LLM-generated text.

    Args:
        catalog: products (indexed with ``product_text(catalog, lang)``).
        queries: ``query_id``, ``query``, ``kind``.
        qrels: relevance labels (``load_qrels()``).
        doc_expansion: text appended to each product's indexed text (generated descriptions,
            extracted attributes), per catalog row or ``{product_id: text}``.
        query_rewrites: ``{query_id: rewrite}`` appended to those queries.
        lang: product text language(s) indexed (``"en"``, ``"zh"`` or ``"both"``).
        k: metric cutoff.

    Returns:
        Index = query kind plus ``"all"``; columns ``n_queries``, ``baseline``, ``with_llm``
        and ``delta`` (nDCG@k).

    Example:
        >>> retrieval_effect(cat, q, qrels, doc_expansion=descs)                 # doctest: +SKIP
    """
    if doc_expansion is None and not query_rewrites:
        raise ValueError("pass doc_expansion= and/or query_rewrites= to measure their effect")
    base_text = product_text(catalog, lang)
    ids = list(catalog[C.COL_PRODUCT_ID])
    base = BM25Index(base_text, ids)
    if doc_expansion is not None:
        extra = _expansions(catalog, doc_expansion)
        expanded = BM25Index([f"{t} {e}".strip() for t, e in zip(base_text, extra)], ids)
    else:
        expanded = base
    qids = list(queries[C.COL_QUERY_ID])
    texts = list(queries[C.COL_QUERY])
    rewritten = [
        f"{t} {query_rewrites[q]}" if query_rewrites and q in query_rewrites else t
        for q, t in zip(qids, texts)
    ]
    judged = qrels_dict(qrels[qrels[C.COL_QUERY_ID].isin(set(qids))])
    metric = f"ndcg@{k}"

    def run(index: BM25Index, query_texts: list[str]) -> dict[str, dict[str, float]]:
        hits = index.search_ids(query_texts, k=k)
        return {q: {pid: s for pid, s in h} for q, h in zip(qids, hits)}

    before = evaluate(judged, run(base, texts), metric, per_query=True)[metric]
    after = evaluate(judged, run(expanded, rewritten), metric, per_query=True)[metric]
    frame = pd.DataFrame(
        {
            "kind": [dict(zip(qids, queries[C.COL_QUERY_KIND]))[q] for q in before],
            "baseline": list(before.values()),
            "with_llm": [after[q] for q in before],
        }
    )
    out = frame.groupby("kind").agg(
        n_queries=("baseline", "size"), baseline=("baseline", "mean"), with_llm=("with_llm", "mean")
    )
    out.loc["all"] = [len(frame), frame["baseline"].mean(), frame["with_llm"].mean()]
    out["n_queries"] = out["n_queries"].astype(int)
    out["delta"] = out["with_llm"] - out["baseline"]
    return out


def _vocab_patterns(schema: Mapping[str, Sequence[str]]) -> dict[str, list[tuple[str, re.Pattern]]]:
    out = {}
    for field in CLAIM_FIELDS:
        values = [v for v in schema.get(field, ()) if str(v).lower() not in NOT_CLAIMS]
        # Longest first, so "navy blue" wins over "blue" when both exist.
        values.sort(key=len, reverse=True)
        out[field] = [
            (v, re.compile(rf"(?<![^\W_]){re.escape(str(v).lower())}(?![^\W_])")) for v in values
        ]
    return out


def description_claims(
    texts: Sequence[str], schema: Mapping[str, Sequence[str]]
) -> list[dict[str, list[str]]]:
    """The attribute values each text states, by field (whole-word, case-insensitive).

    Args:
        texts: generated descriptions.
        schema: ``{field: allowed values}`` (``catalog_schema(catalog)``).

    Returns:
        One ``{field: [values in order of appearance]}`` per text (fields without a claim
        are absent). Generic values ("none", "unisex", "all-season") are not claims.

    Example:
        >>> description_claims(["A red linen shirt."], {"color": ["red"], "material": ["linen"]})
        [{'color': ['red'], 'material': ['linen']}]
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings; wrap a single text in a list")
    patterns = _vocab_patterns(schema)
    out = []
    for text in texts:
        low = str(text).lower()
        found: dict[str, list[str]] = {}
        for field, pats in patterns.items():
            taken = low
            hits = []
            for value, pat in pats:
                for m in pat.finditer(taken):
                    hits.append((m.start(), value))
                taken = pat.sub(lambda m: " " * len(m.group()), taken)  # no "blue" in "navy blue"
            if hits:
                found[field] = [v for _, v in sorted(hits)]
        out.append(found)
    return out
