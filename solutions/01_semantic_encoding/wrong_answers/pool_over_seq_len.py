# exercise: 01_mean_pool
# why: zeroes the padding but then averages over the whole sequence length (mean(dim=1)), so
#   padded texts get shrunken vectors.
def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    return (token_embeddings * mask).mean(dim=1)
