# exercise: 03_ranknet
# why: casts the scores to float32 (.float()), so float64 scores give a float32 loss.
def ranknet_loss(scores: torch.Tensor, grades) -> torch.Tensor:
    s = scores.float()
    g = torch.as_tensor(np.asarray(grades, dtype=np.float32))
    if s.ndim != 1 or g.shape != s.shape:
        raise ValueError(f"bad shape: scores {tuple(s.shape)}, grades {tuple(g.shape)}")
    prefer = g[:, None] > g[None, :]
    if not bool(prefer.any()):
        return s.sum() * 0.0
    return torch.nn.functional.softplus(-(s[:, None] - s[None, :])[prefer]).mean()
