"""§4.3 knowledge base (validation, fusion), the customer-service FAQ, shipped vectors, and the
committed generations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_kit import constants as C
from recsys_kit import shipped_vectors
from recsys_kit.datasets import load_catalog, load_faq_questions
from recsys_kit.llm import catalog_schema, faq, knowledge
from recsys_kit.llm.evaluation import supported_by

SCHEMA = {
    "color": ["red", "navy", "blue", "none"],
    "material": ["linen", "silk", "cotton"],
    "season": ["summer", "all-season"],
    "gender": ["men", "women", "unisex"],
}


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


# --- validation ---------------------------------------------------------------------------------
def test_description_claims_whole_words_longest_first():
    got = knowledge.description_claims(
        ["A Navy Blue linen shirt; blueberry is not a colour. Red!", "none of it", ""],
        {"color": ["navy blue", "blue", "red", "none"], "material": ["linen"]},
    )
    assert got[0] == {"color": ["navy blue", "red"], "material": ["linen"]}
    assert got[1] == {} and got[2] == {}  # "none" is not a claim
    with pytest.raises(TypeError, match="list"):
        knowledge.description_claims("a red shirt", SCHEMA)


def test_validate_knowledge_keeps_only_supported_claims():
    products = pd.DataFrame(
        {
            C.COL_PRODUCT_ID: ["P1", "P2"],
            C.COL_TITLE_EN: ["Red Linen Shirt for Men", "Navy Cotton Cap"],
        }
    )
    attrs = pd.DataFrame(
        {
            C.COL_PRODUCT_ID: ["P1", "P2"],
            "color": ["red", "blue"],
            "material": ["silk", "cotton"],
            "season": ["summer", "all-season"],
            "gender": ["men", "unisex"],
        }
    )
    descs = ["A red shirt. Made of silk for summer. Great for men.", "A cap for sunny days."]
    out = knowledge.validate_knowledge(products, descs, attrs, SCHEMA).set_index(C.COL_PRODUCT_ID)
    assert out.at["P1", "validated_text"] == "A red shirt. Great for men. color: red; gender: men"
    assert "silk" in out.at["P1", "raw_text"] and "silk" not in out.at["P1", "validated_text"]
    assert out.at["P1", "n_sentences_dropped"] == 1
    # claims: description red, silk, summer, men + attributes red, silk, summer, men
    assert out.at["P1", "n_claims"] == 8 and out.at["P1", "n_unsupported"] == 4
    # P2: "blue" is not supported by "Navy"; neutral values are not claims
    assert out.at["P2", "validated_text"] == "A cap for sunny days. material: cotton"
    with pytest.raises(ValueError, match="one per row"):
        knowledge.validate_knowledge(products, descs[:1], attrs, SCHEMA)


def test_supported_attributes_and_claims_frame():
    attrs = pd.DataFrame(
        {
            C.COL_PRODUCT_ID: ["P1"],
            "title": ["Red Linen Shirt"],
            "color": ["red"],
            "material": ["silk"],
            "style": [None],
            "season": ["summer"],
            "gender": ["men"],
        }
    )
    kept = knowledge.supported_attributes(attrs)
    assert kept.loc[0, "color"] == "red" and kept.loc[0, "material"] is None
    assert attrs.loc[0, "material"] == "silk"  # the input is not modified
    frame = knowledge.claims_frame(["a red silk shirt"], SCHEMA, ["P1"])
    assert frame.loc[0, "color"] == "red" and frame.loc[0, "material"] == "silk"
    assert frame.loc[0, "season"] is None and frame.loc[0, C.COL_PRODUCT_ID] == "P1"


def test_supported_by_is_the_hallucination_check():
    assert supported_by("Sneaker", "White Running Sneakers")
    assert not supported_by("red", "Blue Cap")
    assert supported_by("stainless steel", "Stainless Steel Pan")


# --- fusion ---------------------------------------------------------------------------------------
def test_fuse_reference_and_gate():
    rng = np.random.default_rng(0)
    v, d = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    gate = [True, False, True, False, True]
    got = knowledge.fuse(v, d, 0.7, gate)
    want = v + 0.7 * np.array(gate, float)[:, None] * d
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert got.dtype == np.float32 and np.allclose(got, want, atol=1e-6)
    assert np.allclose(knowledge.fuse(v, d, 0.0), v / np.linalg.norm(v, axis=1, keepdims=True))
    d[1] = np.nan  # a closed gate ignores whatever is there
    assert np.isfinite(knowledge.fuse(v, d, 1.0, gate)).all()
    assert np.allclose(knowledge.fuse([[1.0, 0.0]], [[-1.0, 0.0]], 1.0), 0.0)
    for args in ((v, d[:4], 1.0), (v, d, -1.0), (v, d, np.nan), (v, d, 1.0, gate[:4])):
        with pytest.raises(ValueError):
            knowledge.fuse(*args)


def test_kb_sample_is_the_minishop(catalog):
    from recsys_kit.finetune import EvalShop

    ids = list(knowledge.kb_products(catalog)[C.COL_PRODUCT_ID])
    assert ids == list(EvalShop.minishop().products[C.COL_PRODUCT_ID])
    with pytest.raises(ValueError, match="between"):
        knowledge.kb_products(catalog, 0)


def test_committed_knowledge_base_is_complete(catalog):
    kb = knowledge.load_knowledge_base()
    ids = set(knowledge.kb_products(catalog)[C.COL_PRODUCT_ID])
    assert set(kb["descriptions"][C.COL_PRODUCT_ID]) == ids
    assert set(kb["attributes"][C.COL_PRODUCT_ID]) == ids
    assert (kb["descriptions"]["generated_description"].str.len() > 0).mean() > 0.9
    schema = catalog_schema(catalog)
    for f in knowledge.CLAIM_FIELDS:  # constrained decoding: always the vocabulary
        assert set(kb["attributes"][f]) <= set(schema[f]) | {""}, f
    faq_ids = set(load_faq_questions()[C.COL_PRODUCT_ID])
    assert set(kb["faq_entries"][C.COL_PRODUCT_ID]) == faq_ids
    s = kb["settings"]
    assert s["decoding"].startswith("greedy") and s["n_products"] == len(ids)
    assert {"descriptions", "attributes", "faq"} <= set(s["timings"])


def test_build_knowledge_base_with_a_stub_model(tmp_path, monkeypatch, catalog):
    """The generation pipeline end to end (prompts, files, settings), without the real LLM."""

    class StubLM:
        model_name = "stub"
        stats = {"generated_tokens": 0, "generate_seconds": 0.0}
        tokenizer = None

        def generate(self, prompts, max_new_tokens=32, stop=None, **kw):
            self.stats["generated_tokens"] += len(prompts)
            return [" It is red." for _ in prompts]

    import recsys_kit.llm.extract as extract

    def fake_extract(titles, lm, schema, *, ids=None, **kw):
        return pd.DataFrame(
            {
                "title": titles,
                C.COL_PRODUCT_ID: ids,
                **{f: [schema[f][0]] * len(titles) for f in schema},
            }
        )

    monkeypatch.setattr(extract, "extract_attributes", fake_extract)
    out = knowledge.build_knowledge_base(tmp_path, n_products=5, lm=StubLM())
    kb = knowledge.load_knowledge_base(out)
    assert len(kb["descriptions"]) == 5 and set(kb["descriptions"]["generated_description"]) == {
        "It is red."
    }
    assert len(kb["attributes"]) == 5 and kb["settings"]["model"] == "stub"
    assert len(kb["faq_entries"]) >= 42 * 4  # every fact of the labelled questions' products
    with pytest.raises(ValueError, match="unknown stage"):
        knowledge.build_knowledge_base(tmp_path, lm=StubLM(), stages=["poems"])


# --- the FAQ ----------------------------------------------------------------------------------
def test_faq_validation_and_served_answers(catalog):
    row = catalog.iloc[0]
    entries = pd.DataFrame(
        {
            C.COL_PRODUCT_ID: [row[C.COL_PRODUCT_ID]] * 4,
            C.COL_FIELD: [C.COL_MATERIAL, C.COL_MATERIAL, C.COL_PRICE, C.COL_PRICE],
            C.COL_QUESTION: ["q"] * 4,
            "value": [
                row[C.COL_MATERIAL],
                row[C.COL_MATERIAL],
                f"{row[C.COL_PRICE]:.2f}",
                f"{row[C.COL_PRICE]:.2f}",
            ],
            C.COL_ANSWER: [
                f"It is made of {row[C.COL_MATERIAL]}.",
                "It is made of silk.",
                f"It costs {row[C.COL_PRICE]:.2f} USD.",
                "It costs 1.00 USD.",
            ],
        }
    )
    checked = faq.validate_faq(entries, catalog, catalog_schema(catalog))
    assert list(checked["valid"]) == [True, False, True, False]
    assert checked.loc[1, "contradiction"] == "silk" and checked.loc[3, "contradiction"] == "1.00"
    served = faq.served_answers(checked, "validated")
    assert served[1] == faq.template_answer(C.COL_MATERIAL, row[C.COL_MATERIAL])
    assert list(faq.served_answers(checked, "raw")) == list(entries[C.COL_ANSWER])
    with pytest.raises(ValueError, match="mode"):
        faq.served_answers(checked, "best")


def test_faq_matching_answering_and_scoring():
    qs = pd.DataFrame(
        {
            C.COL_QUESTION: ["a", "b", "c", "d"],
            C.COL_LANGUAGE: ["en", "zh", "en", "zh"],
            C.COL_PRODUCT_ID: ["P1", "P2", "P1", "P2"],
            C.COL_FIELD: ["color", "price", "none", "color"],
            C.COL_ANSWER: ["red", "9.50", "", "navy"],
        }
    )
    titles = {"en": np.eye(3)[:2], "zh": np.eye(3)[:2]}
    intents = np.eye(3)[[2, 2, 0]]  # rows: "color", "price", "warranty"
    labels = ["color", "price", "warranty"]
    qv = np.array([[1, 0, 1], [0, 1, 0.9], [1, 0, 0.2], [0, 1, 1]], float)
    m = faq.match_questions(qv, qs[C.COL_LANGUAGE], titles, ["P1", "P2"], intents, labels)
    assert list(m[C.COL_PRODUCT_ID]) == ["P1", "P2", "P1", "P2"]
    entries = pd.DataFrame(
        {C.COL_PRODUCT_ID: ["P1", "P2", "P2"], C.COL_FIELD: ["color", "price", "color"]}
    )
    answers = pd.Series(["It is red.", "It costs 9.50 USD.", "It is blue."])
    m["intent"] = ["color", "price", "warranty", "color"]
    served = faq.answer_questions(m, entries, answers)
    assert list(served) == ["It is red.", "It costs 9.50 USD.", None, "It is blue."]
    score = faq.evaluate_faq(qs, list(served), {"color": ["red", "navy", "blue"]})
    assert score["accuracy"] == pytest.approx(2 / 3) and score["handover_accuracy"] == 1.0
    assert score["hallucination_rate"] == pytest.approx(1 / 3)  # "blue" for a navy product
    assert score["answered_share"] == 0.75 and score["n"] == 4
    with pytest.raises(ValueError, match="answers"):
        faq.evaluate_faq(qs, ["x"], {})


def test_faq_prompt_states_facts_and_asks_one_question(catalog):
    row = catalog.iloc[0]
    prompt = faq.faq_prompt(row[C.COL_TITLE_EN], row, C.COL_COLOR)
    assert prompt.endswith(f"Question: {faq.FAQ_QUESTIONS[C.COL_COLOR][0]}\nAnswer:")
    assert f"color: {row[C.COL_COLOR]}" in prompt.split("Product: ")[-1]
    assert faq.faq_fields({**row, C.COL_COLOR: "none"}) == [
        f for f in C.FAQ_FIELDS if f != C.COL_COLOR
    ]


# --- shipped vectors ----------------------------------------------------------------------------
def test_shipped_vectors_reencode_when_texts_change(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped_vectors, "vectors_dir", lambda: tmp_path)

    class Enc:
        calls = 0

        def encode(self, texts, kind="passage"):
            Enc.calls += 1
            return np.stack([np.eye(4)[len(t) % 4] for t in texts]).astype(np.float32)

    v = shipped_vectors.encode_shipped("demo", ["a", "bb"], write=True, encoder=Enc())
    assert (tmp_path / "demo.npz").is_file() and Enc.calls == 1
    again = shipped_vectors.encode_shipped("demo", ["a", "bb"], encoder=Enc())
    assert Enc.calls == 1 and np.allclose(again, v)  # loaded, not encoded
    other = shipped_vectors.encode_shipped("demo", ["a", "ccc"], encoder=Enc())
    assert Enc.calls == 2 and np.allclose(other[1], np.eye(4)[3])  # changed text: fresh vectors
    shipped_vectors.encode_shipped("demo", ["a", "bb"], kind="query", encoder=Enc())
    assert Enc.calls == 3  # another kind is another set
    with pytest.raises(ValueError, match="lowercase"):
        shipped_vectors.encode_shipped("Bad Name", ["a"])


def test_committed_vector_sets_match_their_texts(catalog):
    from recsys_kit.datasets import load_queries
    from recsys_kit.finetune import EvalShop

    shop = EvalShop.minishop()
    sets = {
        "minishop_titles_en": (list(shop.products[C.COL_TITLE_EN]), "passage"),
        "queries": (list(load_queries()[C.COL_QUERY]), "query"),
        "faq_intents": (faq.intent_texts()[1], "query"),
    }
    for name, (texts, kind) in sets.items():
        with np.load(shipped_vectors.vectors_dir() / f"{name}.npz") as f:
            assert str(f["digest"]) == shipped_vectors.texts_digest(texts, kind, "multilingual"), (
                name
            )
            assert f["vectors"].shape == (len(texts), 384)


# --- the labelled customer-service questions (datasets/minishop/faq_questions.csv) --------------
def test_faq_questions_agree_with_the_catalog(catalog):
    qs = load_faq_questions()
    assert len(qs) > 100 and set(qs[C.COL_LANGUAGE]) == {"en", "zh"}
    facts = catalog.set_index(C.COL_PRODUCT_ID)
    for _, q in qs.iterrows():
        if q[C.COL_FIELD] == C.FAQ_NO_FIELD:
            assert q[C.COL_ANSWER] == ""
        else:
            assert q[C.COL_ANSWER] == faq.fact_value(facts.loc[q[C.COL_PRODUCT_ID]], q[C.COL_FIELD])
    # each product is named without ambiguity among the products asked about
    asked = facts.loc[sorted(set(qs[C.COL_PRODUCT_ID]))]
    for attr in (C.COL_COLOR, C.COL_MATERIAL, C.COL_STYLE):
        assert not asked.duplicated([C.COL_BRAND, C.COL_CATEGORY, attr]).any(), attr


def test_faq_questions_loader_rejects_bad_files(tmp_path):
    from recsys_kit.datasets import SchemaError
    from recsys_kit.paths import minishop_dir

    bad = pd.read_csv(minishop_dir() / "faq_questions.csv", dtype=str, keep_default_na=False)
    bad.loc[0, C.COL_ANSWER] = ""  # an answerable question without its answer
    bad.to_csv(tmp_path / "faq_questions.csv", index=False)
    with pytest.raises(SchemaError, match="answer"):
        load_faq_questions(tmp_path / "faq_questions.csv")
    bad.loc[0, C.COL_FIELD] = "warranty"
    bad.to_csv(tmp_path / "faq_questions.csv", index=False)
    with pytest.raises(SchemaError, match="field"):
        load_faq_questions(tmp_path / "faq_questions.csv")


def test_validate_knowledge_with_the_truth_as_oracle():
    products = pd.DataFrame({C.COL_PRODUCT_ID: ["P1"], C.COL_TITLE_EN: ["Red Shirt"]})
    truth = pd.DataFrame(
        {
            C.COL_PRODUCT_ID: ["P1"],
            "color": ["red"],
            "material": ["linen"],
            "season": ["summer"],
            "gender": ["men"],
        }
    )
    descs = ["A red linen shirt. Made of silk."]
    by_title = knowledge.validate_knowledge(products, descs, None, SCHEMA)
    by_truth = knowledge.validate_knowledge(products, descs, None, SCHEMA, truth=truth)
    assert by_title.loc[0, "validated_text"] == ""  # "linen" is not in the title
    assert by_truth.loc[0, "validated_text"] == "A red linen shirt."  # true, though unstated
