# exercise: 03_ranknet
# why: log(1 + exp(-x)) written out: exp overflows for a pair ranked 1000 the wrong way round
#   (inf loss).
def ranknet_loss(scores: torch.Tensor, grades) -> torch.Tensor:
    g = torch.as_tensor(np.asarray(grades, dtype=np.float64))
    if scores.ndim != 1 or g.shape != scores.shape:
        raise ValueError(f"bad shape: scores {tuple(scores.shape)}, grades {tuple(g.shape)}")
    prefer = g[:, None] > g[None, :]
    if not bool(prefer.any()):
        return scores.sum() * 0.0
    diff = (scores[:, None] - scores[None, :])[prefer]
    return torch.log(1 + torch.exp(-diff)).mean()
