# exercise: 01_mean_pool
# why: divides by the raw token count, so an all-padding row gives 0 / 0 = nan.
def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    return (token_embeddings * mask).sum(dim=1) / mask.sum(dim=1)
