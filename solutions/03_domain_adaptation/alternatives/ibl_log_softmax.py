# exercise: 03_in_batch_loss
# why: the cross-entropy written out as minus the mean of the diagonal of log_softmax, and the
#   duplicates found with a numpy object array instead of a nested list comprehension.
def in_batch_loss(
    q: torch.Tensor, p: torch.Tensor, scale: float = 20.0, ids: list | None = None
) -> torch.Tensor:
    """Mean cross-entropy of each query over the batch's positives (others are negatives)."""
    if q.dim() != 2 or p.dim() != 2 or tuple(q.shape) != tuple(p.shape):
        raise ValueError("q and p must both be (n, dim) with the same shape")
    n = q.shape[0]
    logits = scale * (
        torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(p, dim=-1).T
    )
    if ids is not None:
        if len(ids) != n:
            raise ValueError("ids must have one entry per row")
        keys = np.empty(n, dtype=object)
        keys[:] = list(ids)
        dup = (keys[:, None] == keys[None, :]) & ~np.eye(n, dtype=bool)
        logits = torch.where(
            torch.from_numpy(dup.astype(bool)), torch.full_like(logits, float("-inf")), logits
        )
    return -torch.log_softmax(logits, dim=1).diagonal().mean()
