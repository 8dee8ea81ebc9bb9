"""Embedding maps: a 2-D projection of vectors, coloured by a label (department, language, ...).

A map is a sanity check, not a measurement: principal component analysis keeps the two
directions of largest variance, so clusters that show up are real, and clusters that do not may
still exist in the other dimensions.

Example:
    >>> rng = np.random.default_rng(0)
    >>> pca_2d(rng.normal(size=(50, 8))).shape
    (50, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pca_2d", "plot_embedding_map"]


def pca_2d(vectors: np.ndarray, center_by: Sequence[str] | None = None) -> np.ndarray:
    """Project rows onto their two principal components.

    Args:
        vectors: (n, d) array, n >= 2.
        center_by: optional group of each row (e.g. its language): each group's mean is
            subtracted first, so the map shows what varies *within* groups (what the texts are
            about) rather than the offset between groups.

    Returns:
        (n, 2) float64 coordinates; each axis's sign is fixed (its largest loading is positive),
        so the map does not flip between machines.
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need an (n, d) array with n >= 2, got shape {x.shape}")
    if center_by is not None:
        groups = np.asarray([str(g) for g in center_by])
        if len(groups) != len(x):
            raise ValueError(f"center_by needs one group per row ({len(x)}), got {len(groups)}")
        x = x.copy()
        for g in set(groups):
            x[groups == g] -= x[groups == g].mean(axis=0)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:2]
    if axes.shape[0] < 2:  # one feature: pad a zero axis
        axes = np.vstack([axes, np.zeros_like(axes)])
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    return x @ (axes * np.where(signs == 0, 1.0, signs)[:, None]).T


def plot_embedding_map(
    points: np.ndarray, labels: Sequence[str], ax=None, title: str | None = None, size: float = 8
):
    """Scatter 2-D points coloured by label (one legend entry per label, sorted).

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    pts = np.asarray(points, dtype=float)
    labels = np.asarray([str(v) for v in labels])
    if pts.shape != (len(labels), 2):
        raise ValueError(
            f"points must be (n, 2) with one label each, got {pts.shape}, {len(labels)}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    for value in sorted(set(labels)):
        mask = labels == value
        ax.scatter(pts[mask, 0], pts[mask, 1], s=size, alpha=0.7, label=value)
    ax.legend(fontsize=7, markerscale=1.5, loc="best")
    ax.set(xticks=[], yticks=[], title=title or "")
    return ax
