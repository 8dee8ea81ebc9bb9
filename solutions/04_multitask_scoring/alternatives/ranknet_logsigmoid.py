# exercise: 04_ranknet
# why: -logsigmoid(s_i - s_j) over the index pairs from torch.nonzero (log(1 + e^-x) is
#   -log sigmoid(x)).
def ranknet_loss(scores: torch.Tensor, grades) -> torch.Tensor:
    grades = grades if torch.is_tensor(grades) else torch.tensor(np.asarray(grades, dtype=float))
    if scores.dim() != 1 or tuple(grades.shape) != tuple(scores.shape):
        raise ValueError(f"shape mismatch: {tuple(scores.shape)} vs {tuple(grades.shape)}")
    i, j = torch.nonzero(grades[:, None] > grades[None, :], as_tuple=True)
    if i.numel() == 0:
        return scores.sum() * 0.0
    return -torch.nn.functional.logsigmoid(scores[i] - scores[j]).mean()
