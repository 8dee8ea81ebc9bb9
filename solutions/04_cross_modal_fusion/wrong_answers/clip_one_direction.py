# exercise: 04_infonce
# why: only the text-to-image cross-entropy (no image-to-text term): not symmetric.
def clip_loss(text_emb, image_emb, temperature):
    if not (isinstance(text_emb, torch.Tensor) and isinstance(image_emb, torch.Tensor)):
        raise ValueError("text_emb and image_emb must be torch tensors")
    if text_emb.ndim != 2 or text_emb.shape != image_emb.shape:
        raise ValueError("need two (n, d) tensors of the same shape")
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    t = torch.nn.functional.normalize(text_emb, dim=-1)
    i = torch.nn.functional.normalize(image_emb, dim=-1)
    logits = t @ i.T / temperature
    return torch.nn.functional.cross_entropy(logits, torch.arange(len(t)))
