"""Cross-modal fusion: combine product text and pictures, and search pictures with text.

No image-text model ships offline, so the course builds one: the text encoder (MiniLM, 384-d)
and the image encoder (EfficientNet-lite0, 1280-d) live in unrelated spaces, and
:class:`ContrastiveProjector` learns two small projection heads into a shared space with the
symmetric InfoNCE loss of CLIP (Radford et al., 2021) on (product text, product picture) pairs.
Online, :class:`ClipEncoder` loads a real CLIP from the hub; both satisfy
:class:`CrossModalEncoder`, so notebooks swap one for the other.

Fusion of the two modalities for ranking:

* :func:`early_fusion`: one vector per product, the concatenation of the normalised text and
  image blocks (weighted), renormalised. A product without a picture gets a zero image block,
  flagged explicitly by ``has_image``. Use: item-to-item similarity ("more like this").
* :func:`late_fusion`: combine per-modality *scores*; products without a picture are scored
  by text alone (default) or with a zero / mean image score, chosen explicitly.

Missing pictures are the norm, not the exception (MiniShop: only apparel, footwear and bags
have them), and every choice biases the ranking one way or the other; see
:func:`missing_modality_report`.

Example:
    >>> import numpy as np
    >>> fused = early_fusion(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32),
    ...                      has_image=np.array([True, False]))
    >>> np.linalg.norm(fused, axis=1).round(6).tolist()
    [1.0, 1.0]

The module is over 600 lines because it is Module 4's one concept end to end (fusion, the
learned shared space, search and its diagnosis); the projector is the next piece to move out
if it grows.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from recsys_kit import constants as C
from recsys_kit.device import get_device
from recsys_kit.metrics import evaluate
from recsys_kit.progress import progress
from recsys_kit.ranking import topk
from recsys_kit.threads import cpu_threads_for

#: Hub name of the CLIP used by :class:`ClipEncoder` by default.
DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
MISSING_POLICIES = ("text_only", "zero", "mean")
_EPS = 1e-12


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, _EPS)


def _check_mask(has_image: np.ndarray | Sequence[bool], n: int) -> np.ndarray:
    mask = np.asarray(has_image)
    if mask.dtype != bool:
        raise TypeError(
            f"has_image must be a boolean array, got {mask.dtype}; e.g. "
            "catalog['image_index'].to_numpy() >= 0"
        )
    if mask.shape != (n,):
        raise ValueError(f"has_image must have shape ({n},), got {mask.shape}")
    return mask


def has_image_mask(catalog: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the products that have a picture (``image_index >= 0``).

    Example:
        >>> has_image_mask(pd.DataFrame({"image_index": [3, -1]})).tolist()
        [True, False]
    """
    if C.COL_IMAGE_INDEX not in catalog.columns:
        raise KeyError("catalog has no 'image_index' column; load it with load_catalog()")
    return catalog[C.COL_IMAGE_INDEX].to_numpy() >= 0


def product_images(catalog: pd.DataFrame, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pictures in catalog order: ``(images (n_products, H, W), has_image (n_products,))``.

    Products without a picture get an all-zero (blank) image and ``False`` in the mask.

    Example:
        >>> imgs, mask = product_images(pd.DataFrame({"image_index": [1, -1]}),
        ...                             np.arange(8, dtype=np.uint8).reshape(2, 2, 2))
        >>> imgs[0].tolist(), mask.tolist()
        ([[4, 5], [6, 7]], [True, False])
    """
    mask = has_image_mask(catalog)
    idx = catalog[C.COL_IMAGE_INDEX].to_numpy()
    if mask.any() and idx[mask].max() >= len(images):
        raise ValueError(
            f"image_index {idx[mask].max()} is beyond the {len(images)} images; load the "
            "catalog and images of the same dataset"
        )
    out = np.zeros((len(catalog), *images.shape[1:]), dtype=images.dtype)
    out[mask] = images[idx[mask]]
    return out, mask


# --------------------------------------------------------------------------------------------
# Early and late fusion
# --------------------------------------------------------------------------------------------
def early_fusion(
    text_vecs: np.ndarray,
    image_vecs: np.ndarray,
    has_image: np.ndarray | Sequence[bool],
    weights: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Concatenate normalised text and image blocks into one unit vector per product.

    Blocks are scaled by ``sqrt(w)`` so that, between two products that both have pictures,
    ``cos(fused) = (w_t cos_text + w_i cos_image) / (w_t + w_i)``. A product without a picture
    gets a zero image block and is renormalised to its text block alone. Bias to know: between
    a product without a picture and any other, the cosine is ``cos_text * sqrt(w_t / (w_t +
    w_i))`` at most, so picture-less products look less similar to pictured ones than to each
    other.

    Args:
        text_vecs: (n, d_t) text embeddings.
        image_vecs: (n, d_i) image embeddings; rows where ``has_image`` is False are ignored
            (they may be zeros or NaN).
        has_image: (n,) bool, True where the product has a picture.
        weights: ``(w_text, w_image)``, both >= 0, not both 0.

    Returns:
        float32 (n, d_t + d_i), unit rows, no NaN.

    Example:
        >>> t = np.array([[1.0, 0.0]]); i = np.array([[0.0, 1.0]])
        >>> early_fusion(t, i, [True]).astype(float).round(4).tolist()
        [[0.7071, 0.0, 0.0, 0.7071]]
    """
    t = np.asarray(text_vecs, dtype=np.float32)
    im = np.asarray(image_vecs, dtype=np.float32)
    if t.ndim != 2 or im.ndim != 2 or len(t) != len(im):
        raise ValueError(
            f"text_vecs {t.shape} and image_vecs {im.shape} must be 2-D with one row per product"
        )
    mask = _check_mask(np.asarray(has_image), len(t))
    w_t, w_i = (float(w) for w in weights)
    if w_t < 0 or w_i < 0 or w_t + w_i == 0:
        raise ValueError(f"weights must be >= 0 and not both 0, got {weights}")
    if not np.isfinite(t).all():
        raise ValueError("text_vecs contain NaN or inf")
    if not np.isfinite(im[mask]).all():
        raise ValueError("image_vecs contain NaN or inf for products flagged has_image=True")
    img = np.zeros_like(im)
    img[mask] = _unit_rows(im[mask]) * math.sqrt(w_i)
    fused = np.concatenate([_unit_rows(t) * math.sqrt(w_t), img], axis=1)
    return _unit_rows(fused).astype(np.float32)


def late_fusion(
    text_scores: np.ndarray,
    image_scores: np.ndarray,
    has_image: np.ndarray | Sequence[bool],
    w_image: float = 0.3,
    missing: Literal["text_only", "zero", "mean"] = "text_only",
) -> np.ndarray:
    """Weighted sum of text and image scores, with an explicit policy for missing pictures.

    With a picture: ``(1 - w_image) * text + w_image * image``. Without one (``missing``):

    * ``"text_only"`` (default): the text score alone, i.e. the weights renormalised over the
      modalities present. Neutral on average, but the product's score has no image noise and
      no image evidence: a picture-less product that matches the text well can outrank
      pictured products whose image agrees with the query.
    * ``"zero"``: image score 0, so ``(1 - w_image) * text``: penalises products without a
      picture (fine when a picture is itself a quality signal, unfair otherwise).
    * ``"mean"``: the mean image score of the pictured products (per query), an "average
      picture" assumption.

    Scores should share a scale (e.g. cosines, or min-max normalise them first).

    Args:
        text_scores: (n_items,) or (n_queries, n_items).
        image_scores: same shape; ignored (may be NaN) where ``has_image`` is False.
        has_image: (n_items,) bool.
        w_image: weight of the image score, in [0, 1].
        missing: policy for products without a picture (above).

    Returns:
        float64 array of the scores' shape, no NaN.

    Example:
        >>> late_fusion(np.array([0.8, 0.8]), np.array([0.2, np.nan]), [True, False], 0.5)
        array([0.5, 0.8])
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")
    if not 0.0 <= w_image <= 1.0:
        raise ValueError(f"w_image must be in [0, 1], got {w_image}")
    ts = np.asarray(text_scores, dtype=np.float64)
    ims = np.asarray(image_scores, dtype=np.float64)
    if ts.shape != ims.shape or ts.ndim not in (1, 2):
        raise ValueError(
            f"text_scores {ts.shape} and image_scores {ims.shape} must have the same shape, "
            "(n_items,) or (n_queries, n_items)"
        )
    mask = _check_mask(np.asarray(has_image), ts.shape[-1])
    if not np.isfinite(ts).all():
        raise ValueError("text_scores contain NaN or inf")
    if not np.isfinite(ims[..., mask]).all():
        raise ValueError("image_scores contain NaN or inf for products flagged has_image=True")
    fill = ims.copy()
    if missing == "text_only":
        fill[..., ~mask] = ts[..., ~mask]
    elif missing == "zero":
        fill[..., ~mask] = 0.0
    else:
        mean = ims[..., mask].mean(axis=-1, keepdims=True) if mask.any() else 0.0
        fill[..., ~mask] = np.broadcast_to(mean, fill[..., ~mask].shape)
    return (1.0 - w_image) * ts + w_image * fill


# --------------------------------------------------------------------------------------------
# Contrastive projector (a tiny CLIP on top of frozen encoders)
# --------------------------------------------------------------------------------------------
def info_nce_loss(
    text: torch.Tensor, image: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP) loss of a batch of matching (text, image) rows.

    Row ``i`` of each is a pair; the other rows of the batch are the negatives. Inputs are
    L2-normalised here; ``logit_scale`` = 1 / temperature.

    Example:
        >>> x = torch.eye(3)
        >>> round(float(info_nce_loss(x, x, 10.0)), 4)   # perfect pairs: near 0
        0.0001
    """
    t = nn.functional.normalize(text, dim=-1)
    i = nn.functional.normalize(image, dim=-1)
    logits = logit_scale * t @ i.T
    target = torch.arange(len(t), device=t.device)
    return 0.5 * (
        nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target)
    )


def paired_recall_at_k(queries: np.ndarray, items: np.ndarray, k: int = 1) -> float:
    """Share of rows ``i`` whose own item ``items[i]`` is among the top k for ``queries[i]``.

    The standard metric of paired (text, image) retrieval. Ties count against the pair
    (its own item must beat every other item strictly to be rank 1).

    Example:
        >>> paired_recall_at_k(np.eye(3), np.eye(3), k=1)
        1.0
    """
    q = np.asarray(queries, dtype=np.float32)
    it = np.asarray(items, dtype=np.float32)
    if q.shape != it.shape or q.ndim != 2:
        raise ValueError(f"queries {q.shape} and items {it.shape} must be paired (n, d) arrays")
    if not 1 <= k <= len(q):
        raise ValueError(f"k must be in [1, {len(q)}], got {k}")
    sims = _unit_rows(q) @ _unit_rows(it).T
    own = np.diag(sims)[:, None]
    rank = (sims >= own).sum(axis=1)  # 1 + number of other items at least as similar
    return float((rank <= k).mean())


class ContrastiveProjector(nn.Module):
    """Two projection heads (text -> d, image -> d) trained with symmetric InfoNCE.

    Args:
        text_dim: width of the text vectors (384 for MiniLM).
        image_dim: width of the image vectors (1280 for EfficientNet-lite0).
        dim: shared space width.
        hidden: hidden width of each head (0 = a single linear layer).
        temperature: initial temperature (CLIP: 0.07).
        learn_temperature: learn it (as CLIP does, clamped to >= 0.01) or keep it fixed.
        seed: seed of the initial weights.

    Example:
        >>> proj = ContrastiveProjector(384, 1280).fit(text_vecs, image_vecs)   # doctest: +SKIP
        >>> q = proj.project_text(TextEncoder().encode(["black ankle boots"]))   # doctest: +SKIP
    """

    def __init__(
        self,
        text_dim: int,
        image_dim: int,
        dim: int = 128,
        hidden: int = 0,
        temperature: float = 0.07,
        learn_temperature: bool = True,
        seed: int = C.SEED,
    ) -> None:
        super().__init__()
        if min(text_dim, image_dim, dim) < 1 or hidden < 0:
            raise ValueError("text_dim, image_dim and dim must be >= 1, hidden >= 0")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.text_head = self._head(text_dim, dim, hidden)
        self.image_head = self._head(image_dim, dim, hidden)
        torch.random.set_rng_state(state)  # leave the caller's random stream alone
        scale = torch.tensor(math.log(1.0 / temperature))
        if learn_temperature:
            self.log_scale = nn.Parameter(scale)
        else:
            self.register_buffer("log_scale", scale)
        self.text_dim, self.image_dim, self.dim = text_dim, image_dim, dim
        self.history: list[float] = []

    @staticmethod
    def _head(d_in: int, d_out: int, hidden: int) -> nn.Module:
        if hidden == 0:
            return nn.Linear(d_in, d_out)
        return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_out))

    @property
    def temperature(self) -> float:
        """Current temperature (1 / logit scale)."""
        return float(torch.exp(-self.log_scale.detach()))

    def logit_scale(self) -> torch.Tensor:
        # Clamp as CLIP does (scale <= 100): a runaway scale makes the loss unstable.
        return self.log_scale.clamp(max=math.log(100.0)).exp()

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-length projections of text and image batches."""
        t = nn.functional.normalize(self.text_head(text), dim=-1)
        i = nn.functional.normalize(self.image_head(image), dim=-1)
        return t, i

    def _tensor(self, x: np.ndarray | torch.Tensor, width: int, name: str) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        if t.ndim == 1:
            t = t[None]
        if t.ndim != 2 or t.shape[1] != width:
            raise ValueError(f"{name} must be (n, {width}), got {tuple(t.shape)}")
        dev = next(self.parameters()).device
        t = t.to(dev, torch.float32)
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contain NaN or inf (products without a picture?)")
        return t

    def fit(
        self,
        text_vecs: np.ndarray,
        image_vecs: np.ndarray,
        epochs: int = 30,
        batch_size: int = 256,
        lr: float = 1e-3,
        seed: int = C.SEED,
        weight_decay: float = 1e-4,
        device: str | torch.device | None = None,
    ) -> ContrastiveProjector:
        """Train on paired rows (row i of each is the same product).

        Args:
            text_vecs: (n, text_dim) text embeddings of products *with* pictures.
            image_vecs: (n, image_dim) their image embeddings.
            epochs: passes over the pairs.
            batch_size: pairs per step (the in-batch negatives: larger is harder).
            lr: AdamW learning rate.
            seed: shuffling seed (same seed, same result).
            weight_decay: AdamW weight decay.
            device: torch device (default :func:`recsys_kit.device.get_device`).

        Returns:
            self, trained (``history`` holds the mean loss per epoch).
        """
        if epochs < 1 or batch_size < 2 or lr <= 0:
            raise ValueError("need epochs >= 1, batch_size >= 2 and lr > 0")
        self.to(get_device(device))
        t = self._tensor(text_vecs, self.text_dim, "text_vecs")
        im = self._tensor(image_vecs, self.image_dim, "image_vecs")
        if len(t) != len(im):
            raise ValueError(f"got {len(t)} text rows and {len(im)} image rows; pass pairs")
        if len(t) < 2:
            raise ValueError("need at least two pairs (the other pairs are the negatives)")
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=weight_decay)
        self.train()
        self.history = []
        with cpu_threads_for(t.device, batch_size * (self.text_dim + self.image_dim) * self.dim):
            self._epochs(t, im, epochs, batch_size, gen, opt)
        self.eval()
        return self

    def _epochs(self, t, im, epochs, batch_size, gen, opt) -> None:
        for _ in progress(range(epochs), "InfoNCE epochs"):
            order = torch.randperm(len(t), generator=gen).to(t.device)
            total = 0.0
            starts = range(0, len(t), batch_size)
            for s in starts:
                idx = order[s : s + batch_size]
                if len(idx) < 2:  # a batch of one has no negative
                    continue
                tp, ip = self(t[idx], im[idx])
                loss = info_nce_loss(tp, ip, self.logit_scale())
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            self.history.append(total / len(t))

    @torch.no_grad()
    def project_text(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Text vectors (n, text_dim) -> shared space, float32 unit rows (n, dim)."""
        out = nn.functional.normalize(self.text_head(self._tensor(x, self.text_dim, "x")), dim=-1)
        return out.cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def project_image(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Image vectors (n, image_dim) -> shared space, float32 unit rows (n, dim)."""
        out = nn.functional.normalize(self.image_head(self._tensor(x, self.image_dim, "x")), dim=-1)
        return out.cpu().numpy().astype(np.float32)


# --------------------------------------------------------------------------------------------
# One interface for "text and images in one space"
# --------------------------------------------------------------------------------------------
@runtime_checkable
class CrossModalEncoder(Protocol):
    """Anything that maps texts and images into one space (float32, unit rows)."""

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """(n,) texts -> (n, d)."""
        ...

    def encode_image(self, images: np.ndarray) -> np.ndarray:
        """(n, H, W) or (n, H, W, 3) uint8 images -> (n, d)."""
        ...


class ProjectedEncoder:
    """The offline :class:`CrossModalEncoder`: frozen encoders + a trained projector.

    Args:
        projector: a fitted :class:`ContrastiveProjector`.
        text_encoder: object with ``encode(texts, kind=...)`` (default ``TextEncoder()``).
        image_encoder: object with ``encode(images)`` (default ``ImageEncoder()``).

    Example:
        >>> enc = ProjectedEncoder(proj)                                 # doctest: +SKIP
        >>> search_images(enc, "black ankle boots", image_vecs, k=8)     # doctest: +SKIP
    """

    def __init__(self, projector: ContrastiveProjector, text_encoder=None, image_encoder=None):
        if text_encoder is None:
            from recsys_kit.encoders import TextEncoder

            text_encoder = TextEncoder()
        if image_encoder is None:
            from recsys_kit.encoders import ImageEncoder

            image_encoder = ImageEncoder()
        self.projector = projector
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> shared space."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        return self.projector.project_text(self.text_encoder.encode(texts, kind="query"))

    def encode_image(self, images: np.ndarray) -> np.ndarray:
        """Images -> shared space."""
        return self.projector.project_image(self.image_encoder.encode(images))


class ClipEncoder:
    """A hub CLIP model (transformers ``CLIPModel`` + ``CLIPProcessor``), online path.

    Args:
        model_name: hub name or local folder (default :data:`DEFAULT_CLIP_MODEL`).
        device: torch device (default :func:`recsys_kit.device.get_device`).
        local_files_only: never download (use the local hub cache only).

    Raises:
        OSError: when the model cannot be loaded (offline and not cached), naming the fix.

    Example:
        >>> clip = ClipEncoder()                                        # doctest: +SKIP
        >>> clip.encode_text(["black ankle boots"]).shape               # doctest: +SKIP
        (1, 512)
    """

    def __init__(
        self,
        model_name: str = DEFAULT_CLIP_MODEL,
        device: str | torch.device | None = None,
        local_files_only: bool = False,
    ) -> None:
        from transformers import CLIPModel, CLIPProcessor

        self.model_name = model_name
        self.device = get_device(device)
        try:
            self.processor = CLIPProcessor.from_pretrained(
                model_name, local_files_only=local_files_only
            )
            self.model = CLIPModel.from_pretrained(model_name, local_files_only=local_files_only)
        except (OSError, ValueError) as exc:
            raise OSError(
                f"could not load CLIP model {model_name!r} ({type(exc).__name__}: {exc}).\n"
                "Fix: run once with internet access so the hub caches it (or pass a local "
                "folder holding a saved CLIPModel). Offline, use the course's own image-text "
                "space: ProjectedEncoder(ContrastiveProjector(...).fit(text_vecs, image_vecs))."
            ) from exc
        self.model = self.model.to(self.device).eval()
        self.dim = int(self.model.config.projection_dim)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Texts -> (n, dim) float32 unit rows."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = []
        for s in range(0, len(texts), batch_size):
            batch = self.processor(
                text=texts[s : s + batch_size], return_tensors="pt", padding=True, truncation=True
            ).to(self.device)
            out.append(self.model.get_text_features(**batch).float().cpu())
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return nn.functional.normalize(torch.cat(out), dim=-1).numpy().astype(np.float32)

    @torch.no_grad()
    def encode_image(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """(n, H, W) grey or (n, H, W, 3) uint8 images -> (n, dim) float32 unit rows."""
        arr = np.asarray(images)
        if arr.ndim == 3:  # grey: repeat the channel, CLIP expects RGB
            arr = np.repeat(arr[..., None], 3, axis=-1)
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"images must be (n, H, W) or (n, H, W, 3), got {arr.shape}")
        out = []
        for s in range(0, len(arr), batch_size):
            batch = self.processor(images=list(arr[s : s + batch_size]), return_tensors="pt")
            pixels = batch["pixel_values"].to(self.device)
            out.append(self.model.get_image_features(pixel_values=pixels).float().cpu())
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return nn.functional.normalize(torch.cat(out), dim=-1).numpy().astype(np.float32)


def search_images(
    encoder: CrossModalEncoder,
    query: str,
    image_vecs: np.ndarray,
    k: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Text-to-image search: the ``k`` images closest to the query in the shared space.

    Args:
        encoder: a :class:`CrossModalEncoder` (``ProjectedEncoder`` or ``ClipEncoder``).
        query: the query text.
        image_vecs: (n_images, d) from ``encoder.encode_image``.
        k: results.

    Returns:
        ``(scores, indices)`` each (k,), best first (ties by lower index).
    """
    if not isinstance(encoder, CrossModalEncoder):
        raise TypeError("encoder must have encode_text and encode_image (CrossModalEncoder)")
    q = encoder.encode_text([query])
    scores, idx = topk(q, np.asarray(image_vecs, dtype=np.float32), k=k, metric="cosine")
    return scores[0], idx[0]


# --------------------------------------------------------------------------------------------
# Evaluation and display
# --------------------------------------------------------------------------------------------
def missing_modality_report(
    qrels: Mapping[Hashable, Mapping[Hashable, int]],
    runs: Mapping[str, Mapping[Hashable, Mapping[Hashable, float]]],
    queries: pd.DataFrame,
    catalog: pd.DataFrame,
    k: int = 10,
) -> pd.DataFrame:
    """Retrieval quality for products with and without pictures, by query kind.

    Only the queries listed in ``queries`` are evaluated. For each run and ``subset`` in
    ``all`` / ``with_image`` / ``without_image``, the qrels are restricted to the relevant
    products of that subset (queries with none are dropped), then nDCG@k and recall@k are
    averaged per query kind. A fused run that helps pictured products
    and hurts picture-less ones shows up as a gap between the two subsets.

    Args:
        qrels: ``{query_id: {product_id: grade}}``.
        runs: name -> run ``{query_id: {product_id: score}}``.
        queries: frame with ``query_id`` and ``kind``.
        catalog: frame with ``product_id`` and ``image_index``.
        k: cut-off.

    Returns:
        Long frame: ``run``, ``subset``, ``kind`` (including ``"all"``), ``n_queries``,
        ``ndcg@k``, ``recall@k``.
    """
    for name, df, cols in (
        ("queries", queries, [C.COL_QUERY_ID, C.COL_QUERY_KIND]),
        ("catalog", catalog, [C.COL_PRODUCT_ID, C.COL_IMAGE_INDEX]),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise KeyError(f"{name} lacks column(s) {missing}")
    if not runs:
        raise ValueError("pass at least one run, e.g. {'text': text_run, 'fused': fused_run}")
    pictured = set(catalog.loc[has_image_mask(catalog), C.COL_PRODUCT_ID].astype(str))
    kind_of = dict(zip(queries[C.COL_QUERY_ID].astype(str), queries[C.COL_QUERY_KIND]))
    metrics = [f"ndcg@{k}", f"recall@{k}"]
    subsets = {
        "all": lambda pid: True,
        "with_image": lambda pid: pid in pictured,
        "without_image": lambda pid: pid not in pictured,
    }
    rows = []
    for subset, keep in subsets.items():
        sub = {
            q: {p: g for p, g in docs.items() if g > 0 and keep(str(p))}
            for q, docs in qrels.items()
            if str(q) in kind_of
        }
        sub = {q: d for q, d in sub.items() if d}
        if not sub:
            continue
        for run_name, run in runs.items():
            per_q = evaluate(sub, run, metrics, per_query=True)
            df = pd.DataFrame(per_q)
            df["kind"] = [kind_of[str(q)] for q in df.index]
            for kind, grp in [("all", df), *df.groupby("kind")]:
                rows.append(
                    {
                        "run": run_name,
                        "subset": subset,
                        "kind": kind,
                        "n_queries": len(grp),
                        **{m: float(grp[m].mean()) for m in metrics},
                    }
                )
    return pd.DataFrame(rows)


def gallery_plot(
    images: np.ndarray,
    scores: Sequence[float] | np.ndarray | None = None,
    titles: Sequence[str] | None = None,
    ncols: int = 5,
    query: str | None = None,
) -> Figure:
    """A grid of the images found for a query (matplotlib Figure, no pyplot state).

    Args:
        images: (n, H, W) grey or (n, H, W, 3) images.
        scores: optional score per image (shown under it).
        titles: optional caption per image.
        ncols: images per row.
        query: optional figure title.

    Returns:
        ``matplotlib.figure.Figure`` (display it in a notebook, or ``fig.savefig(path)``).

    Example:
        >>> fig = gallery_plot(np.zeros((3, 28, 28), np.uint8), scores=[0.9, 0.8, 0.7])
        >>> len(fig.axes)
        3
    """
    imgs = np.asarray(images)
    if imgs.ndim not in (3, 4) or len(imgs) == 0:
        raise ValueError(
            f"images must be a non-empty (n, H, W) or (n, H, W, 3) array, got {imgs.shape}"
        )
    n = len(imgs)
    for name, seq in (("scores", scores), ("titles", titles)):
        if seq is not None and len(seq) != n:
            raise ValueError(f"got {len(seq)} {name} for {n} images")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(1.8 * ncols, 2.1 * nrows + (0.4 if query else 0)))
    for j in range(n):
        ax = fig.add_subplot(nrows, ncols, j + 1)
        ax.imshow(imgs[j], cmap="gray_r" if imgs.ndim == 3 else None)
        ax.set_xticks([])
        ax.set_yticks([])
        caption = [] if titles is None else [str(titles[j])[:22]]
        if scores is not None:
            caption.append(f"{float(scores[j]):.3f}")
        if caption:
            ax.set_title("\n".join(caption), fontsize=8)
    if query:
        fig.suptitle(query)
    fig.tight_layout()
    return fig


__all__ = [
    "DEFAULT_CLIP_MODEL",
    "MISSING_POLICIES",
    "ClipEncoder",
    "ContrastiveProjector",
    "CrossModalEncoder",
    "ProjectedEncoder",
    "early_fusion",
    "gallery_plot",
    "has_image_mask",
    "info_nce_loss",
    "late_fusion",
    "missing_modality_report",
    "paired_recall_at_k",
    "product_images",
    "search_images",
]
