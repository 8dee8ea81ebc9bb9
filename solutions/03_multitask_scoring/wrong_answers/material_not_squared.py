# exercise: 03_material_score
# why: uses the Euclidean distance itself (np.linalg.norm) instead of its square.
import numpy as np


def material_score(u, V, s, r, w_s: float = 0.5, w_r: float = 0.2) -> np.ndarray:
    u, V = np.asarray(u, dtype=np.float64), np.asarray(V, dtype=np.float64)
    s, r = np.asarray(s, dtype=np.float64), np.asarray(r, dtype=np.float64)
    if u.ndim != 1 or V.ndim != 2 or V.shape[1] != u.shape[0]:
        raise ValueError("bad shape of u or V")
    if s.shape != (len(V),) or r.shape != (len(V),):
        raise ValueError("bad shape of s or r")
    return -np.linalg.norm(V - u, axis=1) + w_s * s + w_r * r
