# exercise: 01_mean_pool
# why: einsum over the sequence axis with the mask cast to the embeddings' dtype, and
#   torch.clamp on the counts.
def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.to(token_embeddings.dtype)
    summed = torch.einsum("bsd,bs->bd", token_embeddings, mask)
    return summed / torch.clamp(mask.sum(dim=1, keepdim=True), min=1e-9)
