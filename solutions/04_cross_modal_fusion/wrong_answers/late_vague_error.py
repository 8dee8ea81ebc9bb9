# exercise: 04_late
# why: an unknown policy raises a ValueError that does not name the valid policies.
import numpy as np


def fuse_late(text_scores, image_scores, has_image, w_image=0.3, missing="text_only"):
    if not 0.0 <= w_image <= 1.0:
        raise ValueError("w_image must be in [0, 1]")
    ts = np.asarray(text_scores, dtype=np.float64)
    ims = np.asarray(image_scores, dtype=np.float64)
    mask = np.asarray(has_image, dtype=bool)
    if ts.shape != ims.shape or mask.shape != (ts.shape[-1],):
        raise ValueError("shapes do not match")
    fill = ims.copy()
    if missing == "text_only":
        fill[..., ~mask] = ts[..., ~mask]
    elif missing == "zero":
        fill[..., ~mask] = 0.0
    elif missing == "mean":
        mean = ims[..., mask].mean(axis=-1, keepdims=True) if mask.any() else 0.0
        fill[..., ~mask] = np.broadcast_to(mean, fill[..., ~mask].shape)
    else:
        raise ValueError(f"unknown policy {missing!r}")
    return (1.0 - w_image) * ts + w_image * fill
