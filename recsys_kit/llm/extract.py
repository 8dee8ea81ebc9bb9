"""Attribute extraction from product titles into schema-validated records.

A 270M *base* model does not follow instructions, so the prompt is few-shot: a handful of
catalog products (never the product being asked) written as ``field: value`` lines, then the new
title. Lines are easier for a small model than JSON and map one-to-one onto a JSON object; the
output is parsed (JSON objects are accepted too, for instruction-tuned models), validated
against the schema (allowed keys, allowed values per field from the catalog's vocabulary) and,
when invalid:

1. **retry** with a stricter prompt that lists the allowed values of the failing fields and
   pre-fills the fields already accepted;
2. **constrained decoding** (transformers backend): a trie over the tokens of every allowed
   ``field: value`` line restricts each step to tokens that keep the output valid, so the
   model only chooses among allowed values (one short greedy pass); or **likelihood ranking**
   (any backend): every allowed value is scored with :meth:`LanguageModel.loglikelihood`
   and the best one is kept (exact but one forward pass per value).

Example:
    >>> schema = {"color": ("red", "blue"), "gender": ("men", "women", "unisex")}
    >>> validate_attributes(parse_attributes("color: Red\\ngender: kids"), schema)
    ({'color': 'red', 'gender': None}, ["gender: 'kids' is not an allowed value"])
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit.datasets import load_catalog

__all__ = [
    "DEFAULT_FIELDS",
    "METHODS",
    "Schema",
    "catalog_schema",
    "parse_attributes",
    "validate_attributes",
    "pick_examples",
    "format_record",
    "build_prompt",
    "LineTrie",
    "constrained_extract",
    "likelihood_extract",
    "extract_attributes",
]

#: Fields extracted by default (MiniShop ground-truth columns).
DEFAULT_FIELDS = (
    C.COL_BRAND,
    C.COL_CATEGORY,
    C.COL_MATERIAL,
    C.COL_STYLE,
    C.COL_SEASON,
    C.COL_GENDER,
    C.COL_COLOR,
)
METHODS = ("auto", "free", "constrained", "likelihood")
Schema = Mapping[str, Sequence[str]]


def catalog_schema(catalog: pd.DataFrame, fields: Sequence[str] = DEFAULT_FIELDS) -> dict:
    """Allowed values per field: the catalog's own vocabulary.

    Args:
        catalog: a frame with one column per field.
        fields: the fields to extract.

    Returns:
        ``{field: sorted tuple of values}``.

    Example:
        >>> catalog_schema(pd.DataFrame({"color": ["red", "blue", "red"]}), ["color"])
        {'color': ('blue', 'red')}
    """
    missing = [f for f in fields if f not in catalog.columns]
    if missing:
        raise KeyError(f"catalog has no column(s) {missing}; pass fields= among {list(catalog)}")
    return {f: tuple(sorted(catalog[f].astype(str).unique())) for f in fields}


def _check_schema(schema: Schema) -> None:
    if not isinstance(schema, Mapping) or not schema:
        raise TypeError(
            "schema must be a non-empty dict {field: allowed values}; build one with "
            "catalog_schema(load_catalog())"
        )
    for field, values in schema.items():
        if isinstance(values, str) or len(values) == 0:
            raise ValueError(f"schema[{field!r}] must be a non-empty list of allowed values")


def parse_attributes(text: str) -> dict[str, str]:
    """Parse a generated record: a JSON object, or ``field: value`` lines.

    Args:
        text: the model's output.

    Returns:
        ``{field: value}`` as written (not validated); ``{}`` when nothing parses.

    Example:
        >>> parse_attributes('{"color": "red"} trailing words')
        {'color': 'red'}
        >>> parse_attributes("color: red\\nbrand: Kestrel")
        {'color': 'red', 'brand': 'Kestrel'}
    """
    start = text.find("{")
    if start >= 0:
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[start:])
            if isinstance(obj, dict):
                return {str(k).strip(): str(v) for k, v in obj.items() if v is not None}
        except json.JSONDecodeError:
            pass  # fall through to the line format
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().strip('"').lower()
        if sep and key and key not in out and re.fullmatch(r"[a-z_ ]+", key):
            out[key] = value.strip()
    return out


def _normalise(value: str) -> str:
    return value.strip().strip("\"'.,;").strip().lower()


def validate_attributes(
    raw: Mapping[str, str], schema: Schema
) -> tuple[dict[str, str | None], list[str]]:
    """Check a parsed record against the schema.

    Values match case-insensitively and are returned in the schema's spelling.

    Args:
        raw: from :func:`parse_attributes`.
        schema: ``{field: allowed values}``.

    Returns:
        ``(record, errors)``: every schema field (None when missing or invalid) and one
        message per problem (unknown key, missing field, value not allowed).
    """
    record: dict[str, str | None] = {f: None for f in schema}
    errors = [f"{k}: unknown field" for k in raw if k not in schema]
    for field, allowed in schema.items():
        if field not in raw:
            errors.append(f"{field}: missing")
            continue
        lookup = {_normalise(v): v for v in allowed}
        value = lookup.get(_normalise(raw[field]))
        if value is None:
            errors.append(f"{field}: {raw[field]!r} is not an allowed value")
        record[field] = value
    return record, errors


# ------------------------------------------------------------------------------------------------
# Prompts
# ------------------------------------------------------------------------------------------------
def pick_examples(
    catalog: pd.DataFrame,
    n: int,
    exclude: Sequence[str] = (),
    seed: int = C.SEED,
    title_col: str = C.COL_TITLE_EN,
) -> pd.DataFrame:
    """Few-shot examples from the catalog: one per department in a seeded order, never an
    excluded product (the ones being asked) nor one with the same title.

    Returns:
        ``n`` catalog rows.
    """
    pool = catalog
    if C.COL_PRODUCT_ID in catalog.columns and len(exclude):
        pool = pool[~pool[C.COL_PRODUCT_ID].isin(set(exclude))]
    if n > len(pool):
        raise ValueError(f"need {n} few-shot examples but only {len(pool)} products are left")
    rng = np.random.default_rng(seed)
    order = pool.iloc[rng.permutation(len(pool))]
    if C.COL_DEPARTMENT in order.columns:  # spread the shots over departments
        rank = order.groupby(C.COL_DEPARTMENT, sort=False).cumcount()
        order = order.iloc[np.argsort(rank.to_numpy(), kind="stable")]
    order = order.drop_duplicates(title_col)
    return order.head(n)


def format_record(title: str, record: Mapping[str, Any], fields: Sequence[str]) -> str:
    """One few-shot block: ``Product: <title>`` then ``field: value`` lines."""
    lines = [f"Product: {title}"] + [f"{f}: {record[f]}" for f in fields if record.get(f)]
    return "\n".join(lines)


def build_prompt(
    title: str,
    examples: pd.DataFrame,
    fields: Sequence[str],
    *,
    title_col: str = C.COL_TITLE_EN,
    allowed: Schema | None = None,
    prefill: Mapping[str, str] | None = None,
) -> str:
    """The few-shot extraction prompt.

    Args:
        title: the product to extract.
        examples: few-shot catalog rows (with ``title_col`` and the fields).
        fields: the fields, in output order.
        allowed: list these fields' allowed values at the top (the stricter retry prompt).
        prefill: field values already accepted, written after the title.

    Returns:
        A prompt ending where the model should continue.
    """
    blocks = []
    if allowed:
        blocks.append("\n".join(f"Allowed {f} values: {', '.join(v)}." for f, v in allowed.items()))
    blocks += [format_record(r[title_col], r, fields) for _, r in examples.iterrows()]
    blocks.append(format_record(title, prefill or {}, fields) + "\n")
    return "\n\n".join(blocks)


# ------------------------------------------------------------------------------------------------
# Constrained decoding and likelihood ranking
# ------------------------------------------------------------------------------------------------
class LineTrie:
    """Allowed token sequences for consecutive ``field: value`` lines (constrained decoding).

    Args:
        tokenizer: the model's tokenizer; ``"\\n"`` must be a single token (true for Gemma,
            whose newline is a user-defined piece, so each line tokenizes on its own).
        choices: per line, the allowed values.
        fields: the field name of each line.
        eos_id: token allowed once all lines are written.
    """

    def __init__(
        self, tokenizer: Any, fields: Sequence[str], choices: Sequence[Sequence[str]], eos_id: int
    ) -> None:
        nl = tokenizer("\n", add_special_tokens=False)["input_ids"]
        if len(nl) != 1:
            raise ValueError("constrained decoding needs a tokenizer with a single newline token")
        self.newline = nl[0]
        self.eos_id = eos_id
        self.tries: list[dict] = []
        self.depth = 0
        for field, values in zip(fields, choices):
            root: dict = {}
            deepest = 0
            lines = [f"{field}: {v}" for v in values]
            for ids in tokenizer(lines, add_special_tokens=False)["input_ids"]:
                node = root
                for t in [*ids, self.newline]:
                    node = node.setdefault(t, {})
                deepest = max(deepest, len(ids) + 1)
            self.tries.append(root)
            self.depth += deepest

    def allowed(self, generated: Sequence[int]) -> list[int]:
        """Token ids allowed after ``generated`` (the ids produced so far)."""
        line = sum(1 for t in generated if t == self.newline)
        if line >= len(self.tries):
            return [self.eos_id]
        start = max((i + 1 for i, t in enumerate(generated) if t == self.newline), default=0)
        node = self.tries[line]
        for t in generated[start:]:
            node = node.get(t)
            if node is None:  # cannot happen under the constraint; end cleanly
                return [self.eos_id]
        return list(node)


def _decode_lines(text: str, fields: Sequence[str]) -> dict[str, str]:
    parsed = parse_attributes(text)
    return {f: parsed.get(f, "") for f in fields}


def constrained_extract(
    prompts: Sequence[str],
    lm: Any,
    fields: Sequence[str],
    choices: Sequence[Sequence[Sequence[str]]],
) -> list[dict[str, str]]:
    """Greedy decoding restricted to allowed lines (transformers backend).

    Args:
        prompts: one prompt per product, ending where the first field line starts.
        lm: a :class:`~recsys_kit.llm.LanguageModel`.
        fields: field names, in line order.
        choices: per product, per field, the allowed values (one value = forced).

    Returns:
        One ``{field: value}`` per product, always within ``choices``.
    """
    tok = lm.tokenizer
    tries = [LineTrie(tok, fields, ch, tok.eos_token_id) for ch in choices]
    depth = max(t.depth for t in tries) + 1
    texts = lm.generate(
        list(prompts),
        max_new_tokens=depth,
        allowed_tokens_fn=lambda i, ids: tries[i].allowed(ids),
        constraint_keys=[json.dumps([list(fields), ch], ensure_ascii=False) for ch in choices],
    )
    return [_decode_lines(t, fields) for t in texts]


def likelihood_extract(
    prompts: Sequence[str],
    lm: Any,
    fields: Sequence[str],
    choices: Sequence[Sequence[Sequence[str]]],
) -> list[dict[str, str]]:
    """Pick each field's value by log-likelihood, field after field (any backend).

    The prompt for field ``k`` holds the values already chosen for fields ``< k``; fields with a
    single choice are taken as given without scoring.

    Returns:
        One ``{field: value}`` per product.
    """
    out: list[dict[str, str]] = [{} for _ in prompts]
    for k, field in enumerate(fields):
        pairs: list[tuple[int, str, str]] = []
        for i, p in enumerate(prompts):
            values = choices[i][k]
            if len(values) == 1:
                out[i][field] = values[0]
                continue
            done = "".join(f"{f}: {out[i][f]}\n" for f in fields[:k])
            pairs += [(i, p + done + f"{field}:", f" {v}\n") for v in values]
        if not pairs:
            continue
        scores = lm.loglikelihood([p for _, p, _ in pairs], [c for *_, c in pairs])
        best: dict[int, tuple[float, str]] = {}
        for (i, _, cont), s in zip(pairs, scores):
            if i not in best or s > best[i][0]:
                best[i] = (float(s), cont.strip())
        for i, (_, value) in best.items():
            out[i][field] = value
    return out


# ------------------------------------------------------------------------------------------------
# The pipeline
# ------------------------------------------------------------------------------------------------
def extract_attributes(
    titles: Sequence[str],
    lm: Any,
    schema: Schema,
    *,
    examples: pd.DataFrame | None = None,
    ids: Sequence[str] | None = None,
    n_shots: int = 3,
    method: str = "auto",
    max_attempts: int = 2,
    max_new_tokens: int = 48,
    title_col: str = C.COL_TITLE_EN,
    seed: int = C.SEED,
) -> pd.DataFrame:
    """Extract schema-valid attributes from product titles with a few-shot LM.

    Args:
        titles: product titles (or title + description).
        lm: a :class:`~recsys_kit.llm.LanguageModel` (anything with ``generate`` /
            ``loglikelihood`` / ``tokenizer`` works, e.g. a test double).
        schema: ``{field: allowed values}`` (see :func:`catalog_schema`).
        examples: catalog rows for the few-shot examples (default: the MiniShop catalog).
        ids: product ids of ``titles``, never used as examples of themselves.
        n_shots: few-shot examples per prompt.
        method: ``"auto"`` (free generation, retries, then constrained decoding or
            likelihood ranking for what is still invalid), ``"free"`` (no fallback: invalid
            fields stay None), ``"constrained"`` or ``"likelihood"`` (straight to that).
        max_attempts: free-generation attempts (the second and later use the stricter prompt).
        max_new_tokens: tokens per free generation.

    Returns:
        One row per title: ``title``, (``product_id``), one column per field, ``valid`` (all
        fields present and allowed), ``attempts``, ``method`` (what produced the accepted
        record), ``errors`` (of the last free attempt), ``json`` (the record) and ``seconds``.

    Example:
        >>> df = extract_attributes(titles, LanguageModel(), catalog_schema(cat))  # doctest: +SKIP
        >>> df[["color", "valid"]].head(1)                                         # doctest: +SKIP
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(titles, str):
        raise TypeError("titles must be a list of strings; wrap a single title in a list")
    _check_schema(schema)
    if ids is not None and len(ids) != len(titles):
        raise ValueError(f"got {len(titles)} titles and {len(ids)} ids; pass one id per title")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    fields = list(schema)
    shots = _few_shots(titles, examples, fields, ids, n_shots, title_col, seed)
    t0 = time.perf_counter()
    state = _Extraction(titles, fields, shots, title_col)
    if method in ("auto", "free"):
        _free_generation(state, lm, schema, max_attempts, max_new_tokens)
    if method != "free":
        _fall_back(state, lm, schema, method)
    return state.frame(ids, seconds=(time.perf_counter() - t0) / max(len(titles), 1))


def _few_shots(
    titles: Sequence[str],
    examples: pd.DataFrame | None,
    fields: list[str],
    ids: Sequence[str] | None,
    n_shots: int,
    title_col: str,
    seed: int,
) -> pd.DataFrame:
    """Phase 1: the few-shot examples, never a product (or a title) that is being asked."""
    examples = load_catalog() if examples is None else examples
    missing = [c for c in [title_col, *fields] if c not in examples.columns]
    if missing:
        raise KeyError(f"examples lack column(s) {missing}; pass catalog rows with them")
    shots = pick_examples(
        examples, n_shots, exclude=list(ids or []), seed=seed, title_col=title_col
    )
    if title_col in shots and set(shots[title_col]) & set(titles):
        shots = pick_examples(  # never show the asked title itself as an example
            examples[~examples[title_col].isin(set(titles))],
            n_shots,
            seed=seed,
            title_col=title_col,
        )
    return shots


class _Extraction:
    """What :func:`extract_attributes` knows of each title so far, phase after phase."""

    def __init__(
        self, titles: Sequence[str], fields: list[str], shots: pd.DataFrame, title_col: str
    ) -> None:
        n = len(titles)
        self.titles, self.fields, self.shots, self.title_col = titles, fields, shots, title_col
        self.records: list[dict[str, str | None]] = [{f: None for f in fields} for _ in range(n)]
        self.errors: list[list[str]] = [[] for _ in range(n)]
        self.attempts = [0] * n
        self.how = [""] * n

    def incomplete(self, rows: Sequence[int] | None = None) -> list[int]:
        rows = range(len(self.titles)) if rows is None else rows
        return [i for i in rows if any(self.records[i][f] is None for f in self.fields)]

    def prompt(self, i: int, schema: Schema | None = None) -> str:
        """The first prompt of title ``i``, or (with ``schema``) the stricter retry prompt."""
        if schema is None:
            return build_prompt(self.titles[i], self.shots, self.fields, title_col=self.title_col)
        bad = {f: schema[f] for f in self.fields if self.records[i][f] is None}
        ok = {f: v for f, v in self.records[i].items() if v is not None}
        # The pre-filled lines must come first to be continued, so keep field order.
        first_bad = min(self.fields.index(f) for f in bad)
        prefill = {f: ok[f] for f in self.fields[:first_bad] if f in ok}
        return build_prompt(self.titles[i], self.shots, self.fields, title_col=self.title_col,
                            allowed=bad, prefill=prefill)  # fmt: skip

    def frame(self, ids: Sequence[str] | None, seconds: float) -> pd.DataFrame:
        """Phase 4: one row per title."""
        rows = []
        for i, title in enumerate(self.titles):
            row: dict[str, Any] = {"title": title}
            if ids is not None:
                row[C.COL_PRODUCT_ID] = ids[i]
            row.update(self.records[i])
            row["valid"] = all(self.records[i][f] is not None for f in self.fields)
            row["attempts"] = self.attempts[i]
            row["method"] = self.how[i]
            row["errors"] = "; ".join(self.errors[i])
            row["json"] = json.dumps(self.records[i], ensure_ascii=False)
            row["seconds"] = seconds
            rows.append(row)
        return pd.DataFrame(rows)


def _free_generation(
    state: _Extraction, lm: Any, schema: Schema, max_attempts: int, max_new_tokens: int
) -> None:
    """Phase 2: free generation, then retries with the stricter prompt for invalid fields."""
    todo = list(range(len(state.titles)))
    for attempt in range(max_attempts):
        if not todo:
            break
        prompts = [state.prompt(i, None if attempt == 0 else schema) for i in todo]
        texts = lm.generate(prompts, max_new_tokens=max_new_tokens, stop=["\n\n", "Product:"])
        for i, prompt, text in zip(todo, prompts, texts):
            state.attempts[i] += 1
            prefilled = prompt[prompt.rfind("Product: ") :].split("\n", 1)[1]
            record, errs = validate_attributes(parse_attributes(prefilled + text), schema)
            errs = [e for e in errs if "unknown field" not in e]  # extra lines are harmless
            # Keep values accepted in an earlier attempt when this one lost them.
            state.records[i] = {f: record[f] or state.records[i][f] for f in state.fields}
            state.errors[i] = errs
            state.how[i] = "free" if attempt == 0 else "retry"
        todo = state.incomplete(todo)


def _fall_back(state: _Extraction, lm: Any, schema: Schema, method: str) -> None:
    """Phase 3: constrained decoding or likelihood ranking for the fields still invalid."""
    fallback = state.incomplete()
    if not fallback:
        return
    use = method
    if method == "auto":
        use = "constrained" if getattr(lm, "backend", "") == "transformers" else "likelihood"
    prompts = [state.prompt(i) for i in fallback]
    choices = [
        [[state.records[i][f]] if state.records[i][f] is not None else list(schema[f])
         for f in state.fields]
        for i in fallback
    ]  # fmt: skip
    run = constrained_extract if use == "constrained" else likelihood_extract
    for i, rec in zip(fallback, run(prompts, lm, state.fields, choices)):
        record, _ = validate_attributes(rec, schema)
        state.records[i] = record
        state.how[i] = use if method != "auto" else f"{state.how[i] or 'free'}+{use}"
