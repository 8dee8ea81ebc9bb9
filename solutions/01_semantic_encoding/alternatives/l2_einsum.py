# exercise: 01_l2_normalize
# why: norms from einsum and np.clip instead of np.linalg.norm and np.maximum.
import numpy as np


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return x / np.clip(norms, 1e-12, None)
