# exercise: 04_material_score
# why: np.asarray without a dtype keeps float32 inputs in float32: with every input float32 the
#   scores come back float32, not float64 (dtype promotion only saves it when one input is
#   float64).
import numpy as np


def material_score(u, V, s, r, w_s: float = 0.5, w_r: float = 0.2) -> np.ndarray:
    u, V, s, r = (np.asarray(a) for a in (u, V, s, r))
    if u.ndim != 1 or V.ndim != 2 or V.shape[1] != u.shape[0]:
        raise ValueError(f"shape mismatch: u {u.shape}, V {V.shape}")
    if s.shape != (len(V),) or r.shape != (len(V),):
        raise ValueError(f"shape mismatch: s {s.shape}, r {r.shape}")
    if len(V) == 0:
        return np.zeros(0)
    return -((V - u) ** 2).sum(axis=1) + w_s * s + w_r * r
