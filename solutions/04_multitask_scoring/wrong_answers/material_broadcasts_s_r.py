# exercise: 04_material_score
# why: checks u and V but not the lengths of s and r: numpy broadcasts a one-element s or r
#   over every product instead of raising.
import numpy as np


def material_score(u, V, s, r, w_s: float = 0.5, w_r: float = 0.2) -> np.ndarray:
    u, V = np.asarray(u, dtype=np.float64), np.asarray(V, dtype=np.float64)
    if u.ndim != 1 or V.ndim != 2 or V.shape[1] != u.shape[0]:
        raise ValueError(f"shape mismatch: u {u.shape}, V {V.shape}")
    distance = ((V - u) ** 2).sum(axis=1)
    return -distance + w_s * np.asarray(s, dtype=np.float64) + w_r * np.asarray(r, dtype=np.float64)
