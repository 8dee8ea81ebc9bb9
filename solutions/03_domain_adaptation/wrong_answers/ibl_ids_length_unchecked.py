# exercise: 03_in_batch_loss
# why: never checks that ids has one entry per row: a short list builds a small mask that
#   broadcasts over the logits (or masks nothing) instead of raising ValueError.
def in_batch_loss(
    q: torch.Tensor, p: torch.Tensor, scale: float = 20.0, ids: list | None = None
) -> torch.Tensor:
    """Mean cross-entropy of each query over the batch's positives (others are negatives)."""
    if q.ndim != 2 or q.shape != p.shape:
        raise ValueError("q and p must be (n, dim) of one shape")
    logits = (
        scale
        * torch.nn.functional.normalize(q, dim=-1)
        @ torch.nn.functional.normalize(p, dim=-1).T
    )
    if ids is not None:
        same = torch.tensor([[a == b for b in ids] for a in ids], dtype=torch.bool)
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    return torch.nn.functional.cross_entropy(logits, torch.arange(len(q)))
