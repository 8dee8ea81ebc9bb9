# exercise: 04_early
# why: validates the text weight only: a negative image weight goes into np.sqrt and gives nan.
import numpy as np


def fuse_early(text_vecs, image_vecs, has_image, w_text=1.0, w_image=1.0):
    t = np.asarray(text_vecs, dtype=np.float64)
    im = np.asarray(image_vecs, dtype=np.float64)
    mask = np.asarray(has_image, dtype=bool)
    if mask.shape != (len(t),):
        raise ValueError("has_image has the wrong length")
    if w_text < 0 or w_text + w_image == 0:
        raise ValueError("bad weights")

    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    img = np.zeros_like(im)
    with np.errstate(invalid="ignore"):
        img[mask] = unit(im[mask]) * np.sqrt(w_image)
    return unit(np.concatenate([unit(t) * np.sqrt(w_text), img], axis=1)).astype(np.float32)
