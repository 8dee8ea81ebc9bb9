"""Reference building blocks of a sentence encoder: pooling and normalisation.

A transformer returns one vector per token; a search engine needs one vector per text. These
functions are the reference implementations that Module 1 asks students to rebuild.

Example:
    >>> import torch
    >>> h = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [9.0, 9.0]]])
    >>> m = torch.tensor([[1, 1, 0]])          # the third token is padding
    >>> mean_pool(h, m)
    tensor([[2., 2.]])
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["mean_pool", "cls_pool", "POOLING", "l2_normalize"]


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors of each text, ignoring padding.

    Args:
        token_embeddings: ``(batch, seq_len, dim)`` last hidden states.
        attention_mask: ``(batch, seq_len)``, 1 for real tokens and 0 for padding.

    Returns:
        ``(batch, dim)`` mean of the unmasked token vectors (zeros for an all-padding row).
    """
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    summed = (token_embeddings * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)  # an all-padding row gives 0, not NaN
    return summed / counts


def cls_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The first ([CLS]) token's vector, as BGE-style models are trained to use."""
    del attention_mask  # same signature as mean_pool, so pooling modes are interchangeable
    return token_embeddings[:, 0]


POOLING = {"mean": mean_pool, "cls": cls_pool}


def l2_normalize(x: np.ndarray | torch.Tensor, eps: float = 1e-12) -> np.ndarray | torch.Tensor:
    """Scale each row to unit Euclidean length, so that a dot product is a cosine similarity.

    Args:
        x: ``(n, dim)`` array or tensor (a 1-D vector is treated as one row).
        eps: floor of the norm, so that a zero row stays zero instead of becoming NaN.

    Returns:
        The same type and shape as ``x``.
    """
    if isinstance(x, torch.Tensor):
        return torch.nn.functional.normalize(x, p=2.0, dim=-1, eps=eps)
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)
