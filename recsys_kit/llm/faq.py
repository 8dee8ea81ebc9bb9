"""A customer-service FAQ built by the LLM from product facts (the training material's §6.1).

* **drafting**: :func:`draft_faq` asks the shipped LLM, few-shot, to answer one canonical
  question per product fact (material, colour, season, gender, price) *from the facts given
  in the prompt*; a base model still invents or swaps values now and then.
* **validation**: :func:`validate_faq` keeps an answer only when it states the fact's value
  and no other value of the catalog's vocabulary (a "cashmere" answer for a wool pullover is
  a hallucination even when the prompt said wool); a rejected answer is replaced by a plain
  template built from the fact (:func:`template_answer`), or the question goes to a person.
* **matching**: :func:`match_questions` maps a shopper's question (English or Chinese) to a
  product (by the course's dense retrieval over titles) and to an intent (a fact, or a
  *handover* intent such as warranty or returns, which no fact answers), and
  :func:`answer_questions` serves the FAQ entry or hands over.
* **measuring**: :func:`evaluate_faq` scores the served answers against the labelled
  questions shipped with MiniShop (``load_faq_questions``): answer accuracy, handover
  accuracy and the hallucination rate (a served answer stating a wrong value).

Example:
    >>> template_answer("material", "wool")
    'It is made of wool.'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit.llm.evaluation import description_claims, supported_by

__all__ = [
    "FAQ_QUESTIONS",
    "HANDOVER_INTENTS",
    "fact_value",
    "template_answer",
    "faq_fields",
    "faq_prompt",
    "draft_faq",
    "answer_states",
    "validate_faq",
    "served_answers",
    "intent_texts",
    "match_questions",
    "answer_questions",
    "evaluate_faq",
]

#: The FAQ's canonical question per fact (what an entry answers), English and Chinese.
FAQ_QUESTIONS: dict[str, tuple[str, str]] = {
    C.COL_MATERIAL: ("What is it made of?", "它是什么材质的？"),
    C.COL_COLOR: ("What colour is it?", "它是什么颜色的？"),
    C.COL_SEASON: ("Which season is it for?", "它适合什么季节？"),
    C.COL_GENDER: ("Is it for men or women?", "它是男款还是女款？"),
    C.COL_PRICE: ("How much does it cost?", "它多少钱？"),
}
#: Intents no product fact answers: the service hands them to a person.
HANDOVER_INTENTS: dict[str, tuple[str, str]] = {
    "warranty": ("Is there a warranty or guarantee?", "有保修或质保吗？"),
    "returns": ("Can I return or exchange it?", "可以退货或换货吗？"),
    "stock": ("Is it available, in stock, when will it ship?", "有现货吗，什么时候发货？"),
}
#: Few-shot demonstrations: (title, facts in FAQ_FIELDS order, asked field); the answer shown is
#: the field's template. None of them is a MiniShop product.
_SHOTS = (
    ("Brightwave Silver Desk Lamp", "aluminium|silver|all-season|unisex|39.90", "material"),
    ("Juniper Lane Women's Green Linen Maxi Skirt", "linen|green|summer|women|54.00", "season"),
    ("Cobalt Peak Men's Black Leather Hiking Boots", "leather|black|winter|men|129.50", "price"),
    ("Saltmarsh Classic Beige Canvas Tote", "canvas|beige|all-season|women|28.00", "color"),
    ("Ember & Ash Vintage Brown Wool Flat Cap", "wool|brown|autumn|men|24.99", "gender"),
)  # fmt: skip
_TEMPLATES = {
    C.COL_MATERIAL: "It is made of {v}.",
    C.COL_COLOR: "It is {v}.",
    C.COL_SEASON: "It is made for {v}.",
    C.COL_GENDER: "It is designed for {v}.",
    C.COL_PRICE: "It costs {v} USD.",
}


def fact_value(row: Mapping[str, Any], field: str) -> str:
    """A product's fact as text (prices with two decimals)."""
    return f"{float(row[field]):.2f}" if field == C.COL_PRICE else str(row[field])


def template_answer(field: str, value: str) -> str:
    """The plain, always-true fallback answer for a fact."""
    return _TEMPLATES[field].format(v=value)


def faq_fields(row: Mapping[str, Any]) -> list[str]:
    """The facts an FAQ states for a product (no colour question for colourless products)."""
    return [f for f in C.FAQ_FIELDS if f == C.COL_PRICE or str(row[f]) != "none"]


def _facts(row: Mapping[str, Any]) -> str:
    return "; ".join(f"{f}: {fact_value(row, f)}" for f in C.FAQ_FIELDS)


def faq_prompt(title: str, row: Mapping[str, Any], field: str) -> str:
    """The few-shot prompt asking the FAQ answer for one fact of one product."""
    blocks = []
    for shot_title, facts, asked in _SHOTS:
        known = dict(zip(C.FAQ_FIELDS, facts.split("|")))
        answer = template_answer(asked, known[asked])
        blocks.append(f"Product: {shot_title}\nFacts: {_facts(known)}\n"
                      f"Question: {FAQ_QUESTIONS[asked][0]}\nAnswer: {answer}\n\n")  # fmt: skip
    head = "".join(blocks)
    ask = FAQ_QUESTIONS[field][0]
    return f"{head}Product: {title}\nFacts: {_facts(row)}\nQuestion: {ask}\nAnswer:"


def draft_faq(products: pd.DataFrame, lm: Any, *, max_new_tokens: int = 24) -> pd.DataFrame:
    """LLM-drafted FAQ entries, one per product and fact.

    Args:
        products: catalog rows.
        lm: a :class:`~recsys_kit.llm.LanguageModel`.
        max_new_tokens: answer length cap (generation also stops at the end of the line).

    Returns:
        ``product_id``, ``field``, ``question``, ``value`` (the fact) and ``answer`` (drafted).
    """
    rows = [(r, f) for _, r in products.iterrows() for f in faq_fields(r)]
    prompts = [faq_prompt(r[C.COL_TITLE_EN], r, f) for r, f in rows]
    answers = lm.generate(prompts, max_new_tokens=max_new_tokens, stop=["\n"])
    return pd.DataFrame(
        {
            C.COL_PRODUCT_ID: [r[C.COL_PRODUCT_ID] for r, _ in rows],
            C.COL_FIELD: [f for _, f in rows],
            C.COL_QUESTION: [FAQ_QUESTIONS[f][0] for _, f in rows],
            "value": [fact_value(r, f) for r, f in rows],
            C.COL_ANSWER: [a.strip() for a in answers],
        }
    )


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def answer_states(answer: str, field: str, value: str) -> bool:
    """Whether ``answer`` states ``value`` for ``field`` (a price: the same amount)."""
    if field == C.COL_PRICE:
        return any(abs(float(n) - float(value)) < 0.005 for n in _NUMBER.findall(answer))
    return supported_by(value, answer)


def validate_faq(
    entries: pd.DataFrame, catalog: pd.DataFrame, schema: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """Check each drafted answer against its product's facts.

    An answer is ``valid`` when it states the fact's value (:func:`answer_states`) and claims
    no value that contradicts any of the product's facts (a vocabulary value of a fact field
    other than the product's; a price other than the product's).

    Returns:
        ``entries`` with ``states_value``, ``contradiction`` (the first wrong claim, or "")
        and ``valid``.
    """

    facts = catalog.set_index(C.COL_PRODUCT_ID)
    claims = description_claims(list(entries[C.COL_ANSWER]), schema)
    states, wrong = [], []
    for (_, e), found in zip(entries.iterrows(), claims):
        row = facts.loc[e[C.COL_PRODUCT_ID]]
        states.append(answer_states(e[C.COL_ANSWER], e[C.COL_FIELD], e["value"]))
        bad = [v for f, vs in found.items() if f in C.FAQ_FIELDS
               for v in vs if v.lower() != str(row[f]).lower()]  # fmt: skip
        if not bad:
            price = fact_value(row, C.COL_PRICE)
            nums = _NUMBER.findall(e[C.COL_ANSWER]) if e[C.COL_FIELD] == C.COL_PRICE else []
            bad = [n for n in nums if abs(float(n) - float(price)) >= 0.005]
        wrong.append(bad[0] if bad else "")
    out = entries.copy()
    out["states_value"] = states
    out["contradiction"] = wrong
    out["valid"] = out["states_value"] & (out["contradiction"] == "")
    return out


def served_answers(validated: pd.DataFrame, mode: str = "validated") -> pd.Series:
    """The answer the service gives per entry.

    ``"raw"``: the LLM's draft as is; ``"validated"``: the draft when valid, else the
    template built from the fact; ``"template"``: always the template.
    """
    if mode not in ("raw", "validated", "template"):
        raise ValueError(f"mode must be 'raw', 'validated' or 'template', got {mode!r}")
    tmpl = [template_answer(f, v) for f, v in zip(validated[C.COL_FIELD], validated["value"])]
    if mode == "template":
        return pd.Series(tmpl, index=validated.index)
    if mode == "raw":
        return validated[C.COL_ANSWER]
    return validated[C.COL_ANSWER].where(validated["valid"], pd.Series(tmpl, index=validated.index))


def intent_texts() -> tuple[list[str], list[str]]:
    """``(labels, texts)``: every intent phrasing (facts and handover, both languages)."""
    labels, texts = [], []
    for name, pair in {**FAQ_QUESTIONS, **HANDOVER_INTENTS}.items():
        for t in pair:
            labels.append(name)
            texts.append(t)
    return labels, texts


def match_questions(
    question_vectors: np.ndarray,
    languages: Sequence[str],
    title_vectors: Mapping[str, np.ndarray],
    product_ids: Sequence[str],
    intent_vectors: np.ndarray,
    intent_labels: Sequence[str],
) -> pd.DataFrame:
    """Each question's product (nearest title in its language) and intent (nearest phrasing).

    Args:
        question_vectors: ``(n, dim)`` query vectors.
        languages: each question's language (``"en"``/``"zh"``).
        title_vectors: ``{"en": (n_products, dim), "zh": ...}`` of the FAQ's products.
        product_ids: ids of those products.
        intent_vectors: ``(n_phrasings, dim)`` of :func:`intent_texts`.
        intent_labels: the intent of each phrasing.

    Returns:
        ``product_id``, ``product_score``, ``intent``, ``intent_score`` per question.
    """
    from recsys_kit.ranking import topk

    q = np.asarray(question_vectors, np.float32)
    langs = np.asarray(languages)
    pid = np.empty(len(q), dtype=object)
    pscore = np.zeros(len(q), np.float32)
    for lang, vecs in title_vectors.items():
        rows = np.flatnonzero(langs == lang)
        if len(rows):
            s, i = topk(q[rows], vecs, k=1, metric="cosine", device="cpu")
            pid[rows] = [product_ids[j] for j in i[:, 0]]
            pscore[rows] = s[:, 0]
    s, i = topk(q, np.asarray(intent_vectors, np.float32), k=1, metric="cosine", device="cpu")
    return pd.DataFrame({
        C.COL_PRODUCT_ID: pid, "product_score": pscore,
        "intent": [intent_labels[j] for j in i[:, 0]], "intent_score": s[:, 0],
    })  # fmt: skip


def answer_questions(matches: pd.DataFrame, entries: pd.DataFrame, answers: pd.Series) -> pd.Series:
    """The served answer per matched question, or None (handover: a person answers).

    A question is handed over when its intent is a handover intent or its product has no
    entry for the intent.
    """
    table = {(p, f): a for p, f, a in zip(entries[C.COL_PRODUCT_ID], entries[C.COL_FIELD], answers)}
    return pd.Series(
        [table.get((p, it)) for p, it in zip(matches[C.COL_PRODUCT_ID], matches["intent"])],
        index=matches.index, dtype=object,
    )  # fmt: skip


def evaluate_faq(
    questions: pd.DataFrame, served: Sequence[str | None], schema: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Answer quality on labelled questions (``load_faq_questions``).

    * ``accuracy``: answerable questions whose served answer states the true value and
      claims no other value of that field.
    * ``handover_accuracy``: unanswerable questions (``field == "none"``) handed over.
    * ``hallucination_rate``: share of served answers (handovers excluded) that state a
      value other than the truth for the question's field, or answer a question no fact
      answers (a confident answer where a person was needed).
    * ``answered_share``: questions answered rather than handed over.

    Returns:
        The four rates and ``n``.
    """

    served = list(served)
    if len(served) != len(questions):
        raise ValueError(f"got {len(served)} answers for {len(questions)} questions")
    correct, hallucinated, answered, handover_ok = [], [], [], []
    for (_, q), a in zip(questions.iterrows(), served):
        field, truth = q[C.COL_FIELD], q[C.COL_ANSWER]
        if a is None:
            answered.append(False)
            if field == C.FAQ_NO_FIELD:
                handover_ok.append(True)
            else:
                correct.append(False)
            continue
        answered.append(True)
        if field == C.FAQ_NO_FIELD:
            handover_ok.append(False)
            hallucinated.append(True)
            continue
        claims = description_claims([a], {field: schema.get(field, ())})[0].get(field, [])
        other = [v for v in claims if v.lower() != truth.lower()]
        if field == C.COL_PRICE:
            other = [n for n in _NUMBER.findall(a) if abs(float(n) - float(truth)) >= 0.005]
        correct.append(answer_states(a, field, truth) and not other)
        hallucinated.append(bool(other))
    return {
        "accuracy": float(np.mean(correct)) if correct else float("nan"),
        "handover_accuracy": float(np.mean(handover_ok)) if handover_ok else float("nan"),
        "hallucination_rate": float(np.mean(hallucinated)) if hallucinated else 0.0,
        "answered_share": float(np.mean(answered)),
        "n": len(questions),
    }
