# exercise: 07_item_cosine
# why: the dot products of the raw columns first, then scaled by 1 / (|a| |b|) on both sides.
def item_cosine_similarity(matrix):
    x = sp.csc_matrix(matrix).astype(np.float64)
    dots = (x.T @ x).tocsr()
    norms = np.sqrt(dots.diagonal())
    inv = np.zeros_like(norms)
    inv[norms > 0] = 1.0 / norms[norms > 0]
    scaled = (sp.diags(inv) @ dots @ sp.diags(inv)).tocsr()
    scaled.setdiag(0)
    scaled.eliminate_zeros()
    return scaled.astype(np.float32)
