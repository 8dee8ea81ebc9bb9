# exercise: 01_l2_normalize
# why: divides in place (x /= norms): an integer array cannot hold the result (numpy raises),
#   and a float32 argument would be changed under the caller.
import numpy as np


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x.astype(np.float32)
