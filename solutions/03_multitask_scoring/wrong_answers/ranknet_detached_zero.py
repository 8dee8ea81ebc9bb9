# exercise: 03_ranknet
# why: returns a fresh torch.tensor(0.0) when there is no pair: it is not part of the graph, so
#   backward() fails instead of giving zero gradients.
def ranknet_loss(scores: torch.Tensor, grades) -> torch.Tensor:
    g = torch.as_tensor(np.asarray(grades, dtype=np.float64))
    if scores.ndim != 1 or g.shape != scores.shape:
        raise ValueError(f"bad shape: scores {tuple(scores.shape)}, grades {tuple(g.shape)}")
    prefer = g[:, None] > g[None, :]
    if not bool(prefer.any()):
        return torch.tensor(0.0, dtype=scores.dtype)
    return torch.nn.functional.softplus(-(scores[:, None] - scores[None, :])[prefer]).mean()
