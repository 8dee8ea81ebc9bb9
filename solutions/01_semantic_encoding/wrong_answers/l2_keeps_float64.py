# exercise: 01_l2_normalize
# why: keeps the input's dtype (float64 in, float64 out) instead of returning float32.
import numpy as np


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
