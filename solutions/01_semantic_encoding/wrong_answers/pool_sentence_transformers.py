# exercise: 01_mean_pool
# why: the sentence-transformers snippet with a float32 mask (.float()): float64 inputs stay
#   float64 by type promotion, but bfloat16/float16 embeddings come back float32.
def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    expanded = attention_mask.unsqueeze(-1).expand(token_embeddings.size()).float()
    total = torch.sum(token_embeddings * expanded, 1)
    return total / torch.clamp(expanded.sum(1), min=1e-9)
