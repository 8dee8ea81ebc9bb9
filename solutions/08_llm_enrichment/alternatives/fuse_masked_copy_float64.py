# exercise: 08_fuse_vectors
# why: works in float64 on copies: zeroes the closed-gate rows of d in place, sums, and divides
#   only the nonzero rows by their norm (an explicit mask instead of np.where), casting at the end.
import math


def fuse_vectors(v, d, beta, gate):
    v = np.array(v, dtype=np.float64)
    d = np.array(d, dtype=np.float64)
    if v.ndim != 2 or d.shape != v.shape:
        raise ValueError("v and d must be 2-D arrays of the same shape")
    g = np.array(gate, dtype=bool).reshape(-1) if np.ndim(gate) == 1 else None
    if g is None or len(g) != len(v):
        raise ValueError("gate must hold one flag per product")
    beta = float(beta)
    if not math.isfinite(beta) or beta < 0:
        raise ValueError("beta must be finite and >= 0")
    d[~g] = 0.0
    c = v + beta * d
    norm = np.sqrt((c * c).sum(axis=1))
    out = np.zeros_like(c)
    nz = norm > 0
    out[nz] = c[nz] / norm[nz, None]
    return out.astype(np.float32)
