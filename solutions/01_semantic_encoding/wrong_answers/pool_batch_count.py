# exercise: 01_mean_pool
# why: counts the tokens of the whole batch (mask.sum() without dim) instead of each text's.
def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    return (token_embeddings * mask).sum(dim=1) / mask.sum().clamp(min=1e-9)
