# exercise: 03_ranknet
# why: sums the pair losses instead of averaging them.
def ranknet_loss(scores: torch.Tensor, grades) -> torch.Tensor:
    g = torch.as_tensor(np.asarray(grades, dtype=np.float64))
    if scores.ndim != 1 or g.shape != scores.shape:
        raise ValueError(f"bad shape: scores {tuple(scores.shape)}, grades {tuple(g.shape)}")
    prefer = g[:, None] > g[None, :]
    return torch.nn.functional.softplus(-(scores[:, None] - scores[None, :])[prefer]).sum()
