# exercise: 04_late
# why: the "mean" policy averages the image scores of every item, including the NaN ones of
#   items without a picture, so the fill is NaN.
import numpy as np


def fuse_late(text_scores, image_scores, has_image, w_image=0.3, missing="text_only"):
    if missing not in ("text_only", "zero", "mean"):
        raise ValueError(f"missing must be 'text_only', 'zero' or 'mean', got {missing!r}")
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
    else:
        fill[..., ~mask] = ims.mean(axis=-1, keepdims=True)
    return (1.0 - w_image) * ts + w_image * fill
