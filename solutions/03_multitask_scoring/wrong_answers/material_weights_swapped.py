# exercise: 03_material_score
# why: multiplies the attribute match by w_r and the rating by w_s.
import numpy as np


def material_score(u, V, s, r, w_s: float = 0.5, w_r: float = 0.2) -> np.ndarray:
    u, V = np.asarray(u, dtype=np.float64), np.asarray(V, dtype=np.float64)
    s, r = np.asarray(s, dtype=np.float64), np.asarray(r, dtype=np.float64)
    if u.ndim != 1 or V.ndim != 2 or V.shape[1] != u.shape[0]:
        raise ValueError(f"shape mismatch: u {u.shape}, V {V.shape}")
    if s.shape != (len(V),) or r.shape != (len(V),):
        raise ValueError(f"shape mismatch: s {s.shape}, r {r.shape}")
    return -((V - u) ** 2).sum(axis=1) + w_r * s + w_s * r
