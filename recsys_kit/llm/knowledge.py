"""LLM-written product knowledge for retrieval (the training material's §4.3), done faithfully.

The material's recipe: encode each product's title into ``v_i``; let an LLM write detailed
descriptions and attributes, encode them into ``d_i``; fuse ``c_i`` from both and rank by
``c_i``. This module holds the parts that are not already elsewhere in the kit:

* **generation, once**: :func:`build_knowledge_base` runs the shipped Gemma 3 270M over a
  fixed, seeded sample of products (descriptions from the title, constrained attribute
  extraction) and writes small CSV files with the generation settings next to them
  (``datasets/llm/kb/``). Every generation is cached per prompt (SQLite, see
  :class:`~recsys_kit.llm.GenerationCache`), so an interrupted run resumes where it stopped.
  One command regenerates everything: ``python -m recsys_kit.llm.knowledge``.
* **validation**: :func:`description_claims` finds the attribute values a description states
  (the catalog's vocabulary, e.g. a colour or a material) and :func:`validate_knowledge` keeps
  only what the product's own title supports, the check of
  :func:`~recsys_kit.llm.hallucination_rate`; an unsupported claim is what a shopper would be
  misled by.
* **fusion**: :func:`fuse` computes ``c_i = normalise(v_i + beta * g_i * d_i)``, the gate ``g_i``
  switching the extra vector off where there is no (validated) text.

Example:
    >>> import numpy as np
    >>> v = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> d = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    >>> fuse(v, d, beta=1.0, gate=[True, False]).astype(float).round(3).tolist()
    [[0.707, 0.707], [0.0, 1.0]]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys_kit import constants as C
from recsys_kit import paths
from recsys_kit.datasets import load_faq_questions
from recsys_kit.llm.evaluation import CLAIM_FIELDS, NOT_CLAIMS, description_claims, supported_by
from recsys_kit.llm.faq import draft_faq

__all__ = [
    "KB_PRODUCTS",
    "KB_SETTINGS",
    "kb_dir",
    "kb_products",
    "load_knowledge_base",
    "claims_frame",
    "supported_attributes",
    "validate_knowledge",
    "fuse",
    "STAGES",
    "build_knowledge_base",
]

#: Products enriched by default: the course's seeded "mini-shop" sample (Modules 2 and 6 draw
#: the same ``catalog.sample(n=300, random_state=SEED)``).
KB_PRODUCTS = 300
#: Generation settings written next to the outputs (greedy decoding: deterministic).
KB_SETTINGS: dict[str, Any] = {
    "n_products": KB_PRODUCTS,
    "sample": "catalog.sample(n=n_products, random_state=SEED), sorted by product_id",
    "seed": C.SEED,
    "description": {"n_shots": 2, "max_new_tokens": 40, "source": C.COL_TITLE_EN},
    "attributes": {"n_shots": 3, "method": "constrained", "source": C.COL_TITLE_EN},
    "decoding": "greedy (temperature 0)",
    "backend": "transformers",
    "batch_size": 16,
    "faq": {"max_new_tokens": 24, "products": "the products of load_faq_questions()"},
}


def kb_dir() -> Path:
    """Folder of the committed knowledge-base files (``datasets/llm/kb``)."""
    return paths.data_dir() / "llm" / "kb"


def kb_products(catalog: pd.DataFrame, n: int = KB_PRODUCTS, seed: int = C.SEED) -> pd.DataFrame:
    """The seeded product sample the knowledge base covers.

    Args:
        catalog: the catalog (``load_catalog()``).
        n: products to draw.
        seed: sampling seed.

    Returns:
        ``n`` catalog rows sorted by ``product_id``.

    Example:
        >>> kb_products(load_catalog(), 3)[C.COL_PRODUCT_ID].tolist()      # doctest: +SKIP
    """
    if not 0 < n <= len(catalog):
        raise ValueError(f"n must be between 1 and {len(catalog)} (the catalog size), got {n}")
    out = catalog.sample(n=n, random_state=seed)
    return out.sort_values(C.COL_PRODUCT_ID).reset_index(drop=True)


def load_knowledge_base(folder: str | Path | None = None) -> dict[str, Any]:
    """The committed generations: ``descriptions``, ``attributes``, ``faq_entries`` frames and
    ``settings``.

    Args:
        folder: default :func:`kb_dir`.

    Returns:
        ``{"descriptions": ..., "attributes": ..., "faq_entries": ..., "settings": dict}``.

    Raises:
        FileNotFoundError: when a file is missing, naming the command that writes it.
    """
    folder = Path(folder) if folder is not None else kb_dir()
    out: dict[str, Any] = {}
    for name in ("descriptions", "attributes", "faq_entries"):
        path = folder / f"{name}.csv"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: regenerate it with `python -m recsys_kit.llm.knowledge` "
                "or restore it with `git checkout -- datasets/llm/kb`"
            )
        out[name] = pd.read_csv(path, keep_default_na=False, dtype=str)
    out["settings"] = json.loads((folder / "settings.json").read_text())
    return out


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------
def claims_frame(
    texts: Sequence[str], schema: Mapping[str, Sequence[str]], ids: Sequence[str]
) -> pd.DataFrame:
    """The first value each text claims per field, as a prediction frame for
    :func:`~recsys_kit.llm.hallucination_rate` (``product_id`` plus :data:`CLAIM_FIELDS`;
    None where a text claims nothing)."""
    found = description_claims(texts, schema)
    rows = [{f: c.get(f, [None])[0] for f in CLAIM_FIELDS} for c in found]
    return pd.DataFrame(rows, columns=list(CLAIM_FIELDS)).assign(**{C.COL_PRODUCT_ID: list(ids)})


def supported_attributes(
    attributes: pd.DataFrame, fields: Sequence[str] = CLAIM_FIELDS, source_col: str = "title"
) -> pd.DataFrame:
    """A copy of extracted attributes where values the source text does not support are None."""
    out = attributes.copy()
    for f in fields:
        out[f] = [
            v if v and supported_by(str(v), str(t)) else None
            for v, t in zip(out[f], out[source_col])
        ]
    return out


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def validate_knowledge(
    products: pd.DataFrame,
    descriptions: Sequence[str],
    attributes: pd.DataFrame | None,
    schema: Mapping[str, Sequence[str]],
    *,
    source_col: str = C.COL_TITLE_EN,
    truth: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Keep only generated text the product's own source text supports.

    A description sentence survives when every attribute value it states is supported by the
    source text (each word of the value starts a word of the title, the check of
    :func:`~recsys_kit.llm.hallucination_rate`); an attribute value survives under the same
    rule. Nothing is compared with the catalog's ground truth here: a shop validating new
    products does not have it.

    Args:
        products: rows with ``product_id`` and ``source_col``, aligned with ``descriptions``.
        descriptions: one generated description per product.
        attributes: generated attributes (``product_id`` and field columns) or None.
        schema: ``{field: allowed values}``.
        source_col: the text the model was given.
        truth: an **oracle** for measurement only: with the catalog given here, a claim is
            kept exactly when it equals the product's true value (what a perfect validator
            would keep; no shop has it for new products).

    Returns:
        One row per product: ``product_id``, ``raw_text`` (description + every attribute),
        ``validated_text`` (supported sentences + supported attributes), ``n_claims``,
        ``n_unsupported`` (claims removed) and ``n_sentences_dropped``.

    Example:
        >>> p = pd.DataFrame({"product_id": ["P1"], "title_en": ["Red Linen Shirt"]})
        >>> validate_knowledge(p, ["A red shirt. Made of silk."], None,
        ...                    {"color": ["red"], "material": ["linen", "silk"]}).validated_text[0]
        'A red shirt.'
    """
    if len(descriptions) != len(products):
        raise ValueError(
            f"got {len(descriptions)} descriptions for {len(products)} products: pass one per row"
        )
    for col in (C.COL_PRODUCT_ID, source_col):
        if col not in products.columns:
            raise KeyError(f"products has no {col!r} column")
    ids = list(products[C.COL_PRODUCT_ID])
    sources = [str(t) for t in products[source_col]]
    attr_rows: dict[str, Mapping[str, Any]] = {}
    fields: list[str] = []
    if attributes is not None:
        fields = [f for f in schema if f in attributes.columns]
        attr_rows = attributes.set_index(C.COL_PRODUCT_ID)[fields].to_dict("index")
    kept_claim = _claim_judge(schema, truth)
    rows = []
    for pid, src, desc in zip(ids, sources, descriptions):
        desc = "" if desc is None else str(desc).strip()
        kept, dropped, n_claims, n_bad = _validate_sentences(desc, pid, src, schema, kept_claim)
        raw_attrs, ok_attrs, n_attr_bad = _validate_attributes(
            attr_rows.get(pid, {}), pid, src, kept_claim
        )
        n_claims += len(raw_attrs)
        n_bad += n_attr_bad
        rows.append(
            {
                C.COL_PRODUCT_ID: pid,
                "raw_text": " ".join([desc, "; ".join(raw_attrs)]).strip(),
                "validated_text": " ".join([" ".join(kept), "; ".join(ok_attrs)]).strip(),
                "n_claims": n_claims,
                "n_unsupported": n_bad,
                "n_sentences_dropped": dropped,
            }
        )
    return pd.DataFrame(rows)


#: ``kept_claim(product_id, source_text, field, value)``: whether a claim survives validation.
_ClaimJudge = Callable[[str, str, str, str], bool]


def _claim_judge(schema: Mapping[str, Sequence[str]], truth: pd.DataFrame | None) -> _ClaimJudge:
    """The rule of :func:`validate_knowledge`: supported by the source text, or (with the
    ``truth`` oracle) equal to the product's true value."""
    known: dict[str, Mapping[str, Any]] | None = None
    if truth is not None:
        known = truth.set_index(C.COL_PRODUCT_ID)[[f for f in schema if f in truth]].to_dict(
            "index"
        )

    def kept_claim(pid: str, src: str, field: str, value: str) -> bool:
        if known is None:
            return supported_by(value, src)
        true = known.get(pid, {}).get(field)
        return true is not None and str(true).lower() == str(value).lower()

    return kept_claim


def _validate_sentences(
    desc: str, pid: str, src: str, schema: Mapping[str, Sequence[str]], kept_claim: _ClaimJudge
) -> tuple[list[str], int, int, int]:
    """A description's sentences whose every claim is kept: ``(kept sentences, sentences
    dropped, claims, claims removed)``."""
    kept, dropped, n_claims, n_bad = [], 0, 0, 0
    for sentence in (s for s in _SENTENCE.split(desc) if s.strip()):
        claims = [(f, v) for f, vs in description_claims([sentence], schema)[0].items()
                  for v in vs]  # fmt: skip
        bad = [v for f, v in claims if not kept_claim(pid, src, f, v)]
        n_claims += len(claims)
        n_bad += len(bad)
        if bad:
            dropped += 1
        else:
            kept.append(sentence.strip())
    return kept, dropped, n_claims, n_bad


def _validate_attributes(
    values: Mapping[str, Any], pid: str, src: str, kept_claim: _ClaimJudge
) -> tuple[list[str], list[str], int]:
    """A product's generated attributes as ``field: value`` texts: ``(every claim, the kept
    ones, claims removed)``; empty and "none"-like values claim nothing."""
    raw_attrs, ok_attrs, n_bad = [], [], 0
    for field, value in values.items():
        if value is None or str(value).strip() == "" or str(value).lower() in NOT_CLAIMS:
            continue
        raw_attrs.append(f"{field}: {value}")
        if kept_claim(pid, src, field, str(value)):
            ok_attrs.append(f"{field}: {value}")
        else:
            n_bad += 1
    return raw_attrs, ok_attrs, n_bad


# ------------------------------------------------------------------------------------------------
# Fusion
# ------------------------------------------------------------------------------------------------
def fuse(
    v: np.ndarray,
    d: np.ndarray,
    beta: float,
    gate: Sequence[bool] | np.ndarray | None = None,
) -> np.ndarray:
    """The material's combined vector ``c_i = normalise(v_i + beta * g_i * d_i)``.

    Args:
        v: ``(n, dim)`` title vectors.
        d: ``(n, dim)`` vectors of the extra (generated) text; rows where the gate is off
            are ignored (they may be zeros).
        beta: weight of the extra vector, ``>= 0`` (0 gives back normalised ``v``).
        gate: per product, whether ``d_i`` may be used (has validated text); default all.

    Returns:
        float32 ``(n, dim)``, unit rows (a zero sum stays zero).

    Example:
        >>> fuse(np.eye(2), np.eye(2)[::-1], 0.0).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    v = np.asarray(v, dtype=np.float32)
    d = np.asarray(d, dtype=np.float32)
    if v.ndim != 2 or v.shape != d.shape:
        raise ValueError(f"v and d must be 2-D arrays of one shape, got {v.shape} and {d.shape}")
    if not np.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be a finite number >= 0, got {beta}")
    g = np.ones(len(v), dtype=bool) if gate is None else np.asarray(gate, dtype=bool)
    if g.shape != (len(v),):
        raise ValueError(f"gate must hold one flag per product ({len(v)}), got shape {g.shape}")
    c = v + np.float32(beta) * np.where(g[:, None], d, np.float32(0))  # closed: d ignored
    norm = np.linalg.norm(c, axis=1, keepdims=True)
    return (c / np.where(norm > 0, norm, 1.0)).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Generation (run once; outputs committed)
# ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _stage(lm: Any, name: str, n: int, timings: dict) -> Iterator[None]:
    """Record a stage's wall time and generated tokens into ``timings[name]``."""
    tokens, start = lm.stats["generated_tokens"], time.perf_counter()
    yield
    sec = time.perf_counter() - start
    timings[name] = dict(seconds=round(sec, 1), n=n, seconds_per_item=round(sec / max(n, 1), 2),
                         generated_tokens=int(lm.stats["generated_tokens"] - tokens))  # fmt: skip
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {timings[name]}", flush=True)


STAGES = ("descriptions", "attributes", "faq")


def build_knowledge_base(
    out_dir: str | Path | None = None,
    *,
    n_products: int = KB_PRODUCTS,
    lm: Any = None,
    stages: Sequence[str] = STAGES,
) -> Path:
    """Generate (or resume) the knowledge base and write it with its settings.

    Args:
        out_dir: default :func:`kb_dir` (the committed copy).
        n_products: products of the seeded sample.
        lm: a :class:`~recsys_kit.llm.LanguageModel` (default: the shipped Gemma 3 270M,
            transformers backend, batches of 16).
        stages: any of :data:`STAGES` (``"faq"``: FAQ answers drafted from the facts of the
            products of the labelled customer-service questions, :mod:`recsys_kit.llm.faq`).

    Returns:
        The folder written (``descriptions.csv``, ``attributes.csv``, ``faq_entries.csv``,
        ``settings.json``).
    """
    from importlib.metadata import version

    from recsys_kit.datasets import load_catalog
    from recsys_kit.llm.extract import catalog_schema, extract_attributes
    from recsys_kit.llm.model import LanguageModel
    from recsys_kit.llm.tasks import generate_descriptions

    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)}; use {', '.join(STAGES)}")
    out = Path(out_dir) if out_dir is not None else kb_dir()
    out.mkdir(parents=True, exist_ok=True)
    catalog = load_catalog()
    products = kb_products(catalog, n_products)
    settings = dict(KB_SETTINGS, n_products=n_products)
    if lm is None:
        lm = LanguageModel(backend=settings["backend"], batch_size=settings["batch_size"])
    settings["model"] = lm.model_name
    settings["versions"] = {
        "python": platform.python_version(),
        **{p: version(p) for p in ("torch", "transformers")},
    }
    timings: dict[str, dict] = {}
    ids = list(products[C.COL_PRODUCT_ID])
    if "descriptions" in stages:
        cfg = settings["description"]
        with _stage(lm, "descriptions", len(products), timings):
            texts = generate_descriptions(products, lm, examples=catalog, n_shots=cfg["n_shots"],
                                          max_new_tokens=cfg["max_new_tokens"])  # fmt: skip
        pd.DataFrame(
            {
                C.COL_PRODUCT_ID: ids,
                C.COL_DEPARTMENT: list(products[C.COL_DEPARTMENT]),
                "title": list(products[C.COL_TITLE_EN]),
                "generated_description": texts,
            }
        ).to_csv(out / "descriptions.csv", index=False)
    if "attributes" in stages:
        cfg = settings["attributes"]
        with _stage(lm, "attributes", len(products), timings):
            attrs = extract_attributes(
                list(products[C.COL_TITLE_EN]), lm, catalog_schema(catalog), examples=catalog,
                ids=ids, n_shots=cfg["n_shots"], method=cfg["method"],
            )  # fmt: skip
        keep = [C.COL_PRODUCT_ID, "title", *catalog_schema(catalog)]
        attrs[keep].to_csv(out / "attributes.csv", index=False)
    if "faq" in stages:
        faq_ids = set(load_faq_questions()[C.COL_PRODUCT_ID])
        faq_products = catalog[catalog[C.COL_PRODUCT_ID].isin(faq_ids)]
        with _stage(lm, "faq", len(faq_products), timings):
            entries = draft_faq(faq_products, lm, max_new_tokens=settings["faq"]["max_new_tokens"])
        entries.to_csv(out / "faq_entries.csv", index=False)
    old = out / "settings.json"
    if old.is_file():  # keep the timings of stages not rerun
        timings = {**json.loads(old.read_text()).get("timings", {}), **timings}
    settings["timings"] = timings
    old.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m recsys_kit.llm.knowledge [--out DIR] [--n N] [--stage S]``."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--out", default=None, help="output folder (default datasets/llm/kb)")
    ap.add_argument("--n", type=int, default=KB_PRODUCTS, help="products of the sample")
    ap.add_argument(
        "--stage", action="append", choices=list(STAGES),
        help="run only this stage (repeatable; default all)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    stages = args.stage or list(STAGES)
    t0 = time.perf_counter()
    folder = build_knowledge_base(args.out, n_products=args.n, stages=stages)
    print(f"wrote {folder} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
