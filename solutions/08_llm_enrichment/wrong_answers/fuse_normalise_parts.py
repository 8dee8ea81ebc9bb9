# exercise: 08_fuse_vectors
# why: normalises v and d separately before summing (and not the sum): right only when the inputs
#   are unit rows and the sum happens to have norm 1.
def fuse_vectors(v, d, beta, gate):
    v = np.asarray(v, dtype=np.float32)
    d = np.asarray(d, dtype=np.float32)
    if v.ndim != 2 or v.shape != d.shape:
        raise ValueError("shapes")
    g = np.asarray(gate, dtype=bool)
    if g.shape != (len(v),):
        raise ValueError("gate")
    if not np.isfinite(beta) or beta < 0:
        raise ValueError("beta")

    def unit(x):
        n = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(n > 0, n, 1.0)

    c = unit(v) + beta * np.where(g[:, None], unit(np.nan_to_num(d)), 0.0)
    return c.astype(np.float32)
