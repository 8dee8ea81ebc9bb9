# exercise: 01_mean_pool
# why: casts the mask and the result to float32 "to be safe": float64 embeddings come back as
#   float32 (the text asks to keep the dtype).
def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).float()
    summed = (token_embeddings * mask).sum(dim=1)
    return (summed / mask.sum(dim=1).clamp(min=1e-9)).float()
