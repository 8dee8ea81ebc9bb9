# exercise: 01_l2_normalize
# why: normalises the columns (axis=0) instead of the rows.
import numpy as np


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=0, keepdims=True), 1e-12)
