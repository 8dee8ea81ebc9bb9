# exercise: 03_ranknet
# why: treats tied grades as preferences (>= off the diagonal), so ties add log(2)-ish terms.
def ranknet_loss(scores: torch.Tensor, grades) -> torch.Tensor:
    g = torch.as_tensor(np.asarray(grades, dtype=np.float64))
    if scores.ndim != 1 or g.shape != scores.shape:
        raise ValueError(f"bad shape: scores {tuple(scores.shape)}, grades {tuple(g.shape)}")
    prefer = (g[:, None] >= g[None, :]) & ~torch.eye(len(g), dtype=torch.bool)
    if not bool(prefer.any()):
        return scores.sum() * 0.0
    return torch.nn.functional.softplus(-(scores[:, None] - scores[None, :])[prefer]).mean()
