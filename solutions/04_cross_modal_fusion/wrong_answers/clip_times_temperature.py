# exercise: 04_infonce
# why: multiplies the logits by the temperature instead of dividing (confuses the temperature
#   with CLIP's learned logit scale).
def clip_loss(text_emb, image_emb, temperature):
    if not (isinstance(text_emb, torch.Tensor) and isinstance(image_emb, torch.Tensor)):
        raise ValueError("text_emb and image_emb must be torch tensors")
    if text_emb.ndim != 2 or text_emb.shape != image_emb.shape:
        raise ValueError("need two (n, d) tensors of the same shape")
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    t = torch.nn.functional.normalize(text_emb, dim=-1)
    i = torch.nn.functional.normalize(image_emb, dim=-1)
    logits = t @ i.T * temperature
    target = torch.arange(len(t))
    ce = torch.nn.functional.cross_entropy
    return 0.5 * (ce(logits, target) + ce(logits.T, target))
