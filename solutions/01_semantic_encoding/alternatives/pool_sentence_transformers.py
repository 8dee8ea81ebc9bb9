# exercise: 01_mean_pool
# why: the sentence-transformers idiom: a float mask expanded to the embeddings' size and
#   torch.clamp; type promotion keeps float64 inputs float64.
def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    expanded = attention_mask.unsqueeze(-1).expand(token_embeddings.size()).float()
    total = torch.sum(token_embeddings * expanded, 1)
    return total / torch.clamp(expanded.sum(1), min=1e-9)
