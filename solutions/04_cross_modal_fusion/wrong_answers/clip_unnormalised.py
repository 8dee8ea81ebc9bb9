# exercise: 04_infonce
# why: skips the L2 normalisation: the logits are raw dot products, not cosines.
def clip_loss(text_emb, image_emb, temperature):
    if not (isinstance(text_emb, torch.Tensor) and isinstance(image_emb, torch.Tensor)):
        raise ValueError("text_emb and image_emb must be torch tensors")
    if text_emb.ndim != 2 or text_emb.shape != image_emb.shape:
        raise ValueError("need two (n, d) tensors of the same shape")
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    logits = text_emb @ image_emb.T / temperature
    target = torch.arange(len(text_emb))
    ce = torch.nn.functional.cross_entropy
    return 0.5 * (ce(logits, target) + ce(logits.T, target))
