"""Few-shot generation tasks: product descriptions, query rewriting, intent classification.

All prompts are few-shot because the shipped model is a base model: it continues a pattern
rather than following an instruction. Classification does not generate at all: each label's
verbalisation is scored by log-likelihood and the scores are normalised with a softmax, which
always returns one of the labels (no parsing, no invalid output).

Example:
    >>> lm = LanguageModel()                                                    # doctest: +SKIP
    >>> rewrite_query("送妈妈的礼物", lm)                                        # doctest: +SKIP
    'gift for mother, ...'
    >>> classify_intent(["red lipstick"], ["beauty", "electronics"], lm).label[0]  # doctest: +SKIP
    'beauty'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit.datasets import load_catalog
from recsys_kit.llm.extract import pick_examples

__all__ = ["REWRITE_EXAMPLES", "generate_descriptions", "rewrite_query", "classify_intent"]

#: Hand-written rewriting demonstrations (none of them is a MiniShop query).
REWRITE_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("蓝色牛仔裤", "blue denim jeans"),
    ("something for a rainy day", "waterproof jacket, rain boots, umbrella"),
    ("送给朋友的生日礼物", "birthday gift, perfume, scented candle, headphones"),
    ("quiet keyboard for the office", "silent wireless keyboard, office electronics"),
)


def generate_descriptions(
    products: pd.DataFrame,
    lm: Any,
    *,
    examples: pd.DataFrame | None = None,
    n_shots: int = 2,
    max_new_tokens: int = 40,
    title_col: str = C.COL_TITLE_EN,
    description_col: str = C.COL_DESCRIPTION_EN,
    seed: int = C.SEED,
) -> list[str]:
    """Write a short description for each product from its title (few-shot).

    Args:
        products: rows with ``title_col`` (and ``product_id``, excluded from the examples).
        lm: a :class:`~recsys_kit.llm.LanguageModel`.
        examples: catalog rows with titles and descriptions (default: MiniShop).
        n_shots: examples per prompt.
        max_new_tokens: length cap; generation also stops at the end of the line.

    Returns:
        One description per product (stripped; may be empty if the model stops at once).

    Example:
        >>> generate_descriptions(cat.head(1), lm)                               # doctest: +SKIP
        ['A casual red t-shirt by Urbanthread, made with polyester. ...']
    """
    if title_col not in products.columns:
        raise KeyError(f"products has no {title_col!r} column; pass title_col=")
    if examples is None:
        examples = load_catalog()
    exclude = list(products[C.COL_PRODUCT_ID]) if C.COL_PRODUCT_ID in products else []
    shots = pick_examples(examples, n_shots, exclude=exclude, seed=seed, title_col=title_col)
    head = "".join(
        f"Product: {r[title_col]}\nDescription: {r[description_col]}\n\n"
        for _, r in shots.iterrows()
    )
    prompts = [f"{head}Product: {t}\nDescription:" for t in products[title_col]]
    texts = lm.generate(prompts, max_new_tokens=max_new_tokens, stop=["\n"])
    return [t.strip() for t in texts]


def rewrite_query(
    query: str | Sequence[str],
    lm: Any,
    *,
    examples: Sequence[tuple[str, str]] = REWRITE_EXAMPLES,
    max_new_tokens: int = 16,
) -> str | list[str]:
    """Rewrite a shopper's query into English product keywords (vague or Chinese queries).

    Args:
        query: one query or a list.
        lm: a :class:`~recsys_kit.llm.LanguageModel`.
        examples: ``(query, keywords)`` demonstrations.
        max_new_tokens: length cap; generation stops at the end of the line.

    Returns:
        The rewrite (a string for a string, a list for a list).

    Example:
        >>> rewrite_query("红色连衣裙", lm)                                      # doctest: +SKIP
        'red dress'
    """
    single = isinstance(query, str)
    queries = [query] if single else list(query)
    if any(not str(q).strip() for q in queries):
        raise ValueError("queries must be non-empty strings")
    head = "".join(f"Search query: {q}\nProduct keywords: {k}\n\n" for q, k in examples)
    prompts = [f"{head}Search query: {q}\nProduct keywords:" for q in queries]
    out = [t.strip() for t in lm.generate(prompts, max_new_tokens=max_new_tokens, stop=["\n"])]
    return out[0] if single else out


def classify_intent(
    queries: Sequence[str],
    labels: Sequence[str] | Mapping[str, str],
    lm: Any,
    *,
    template: str = "Search query: {query}\nDepartment:",
    examples: Sequence[tuple[str, str]] = (),
    calibrate: bool = True,
) -> pd.DataFrame:
    """Zero/few-shot intent classification by scoring each label's verbalisation.

    Args:
        queries: the queries.
        labels: label names, or ``{label: verbalisation}`` (the text scored after the
            prompt; a leading space is added when missing).
        lm: anything with ``loglikelihood(prompts, continuations)``.
        template: the prompt, with a ``{query}`` placeholder.
        examples: optional ``(query, label)`` demonstrations put before each prompt.
        calibrate: subtract each label's score for a content-free query (``"N/A"``), which
            removes the model's prior preference for some labels (Zhao et al., 2021).

    Returns:
        One row per query: ``query``, ``label`` (the argmax) and one probability column per
        label (softmax over labels of the, possibly calibrated, log-likelihoods).

    Example:
        >>> classify_intent(["usb cable"], {"beauty": " beauty", "tech": " electronics"}, lm)
        ... # doctest: +SKIP
    """
    if isinstance(queries, str):
        raise TypeError("queries must be a list of strings; wrap a single query in a list")
    verbal = dict(labels) if isinstance(labels, Mapping) else {str(x): str(x) for x in labels}
    if len(verbal) < 2:
        raise ValueError("pass at least two labels to choose between")
    if "{query}" not in template:
        raise ValueError("template must contain a {query} placeholder")
    verbal = {k: v if v.startswith(" ") else f" {v}" for k, v in verbal.items()}
    names = list(verbal)
    head = "".join(template.format(query=q) + verbal[y] + "\n\n" for q, y in examples)
    items = [*queries, "N/A"] if calibrate else list(queries)
    prompts = [head + template.format(query=q) for q in items for _ in names]
    conts = [verbal[n] for _ in items for n in names]
    scores = np.asarray(lm.loglikelihood(prompts, conts), dtype=np.float64)
    scores = scores.reshape(len(items), len(names))
    if calibrate:
        scores = scores[:-1] - scores[-1]
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    out = pd.DataFrame(probs, columns=names)
    out.insert(0, "label", [names[j] for j in probs.argmax(axis=1)])
    out.insert(0, "query", list(queries))
    return out
