# exercise: 04_material_score
# why: expands the squared distance as |v|^2 - 2 v.u + |u|^2 with einsum and a matrix-vector
#   product (same values up to float64 rounding).
import numpy as np


def material_score(u, V, s, r, w_s: float = 0.5, w_r: float = 0.2) -> np.ndarray:
    u = np.array(u, dtype=np.float64)
    V = np.array(V, dtype=np.float64)
    s = np.array(s, dtype=np.float64).reshape(-1)
    r = np.array(r, dtype=np.float64).reshape(-1)
    n = V.shape[0] if V.ndim == 2 else -1
    if u.ndim != 1 or V.ndim != 2 or V.shape[1] != u.size or len(s) != n or len(r) != n:
        raise ValueError(f"shape mismatch: u {u.shape}, V {V.shape}, s {s.shape}, r {r.shape}")
    squared = np.einsum("ij,ij->i", V, V) - 2.0 * (V @ u) + u @ u
    return w_s * s + w_r * r - squared
