# exercise: 03_ranknet
# why: a "stable" log(1 + e^-x) by torch.where over two branches: the values are finite at
#   +-1000, but the branch not taken overflows and its gradient (inf * 0) is nan.
def ranknet_loss(scores: torch.Tensor, grades) -> torch.Tensor:
    g = torch.as_tensor(np.asarray(grades, dtype=np.float64))
    if scores.ndim != 1 or g.shape != scores.shape:
        raise ValueError(f"bad shape: scores {tuple(scores.shape)}, grades {tuple(g.shape)}")
    prefer = g[:, None] > g[None, :]
    if not bool(prefer.any()):
        return scores.sum() * 0.0
    x = (scores[:, None] - scores[None, :])[prefer]
    loss = torch.where(x > 0, torch.log1p(torch.exp(-x)), -x + torch.log1p(torch.exp(x)))
    return loss.mean()
