# exercise: 05_infonce
# why: log_softmax over rows and columns and the diagonal, instead of cross_entropy.
def clip_loss(text_emb, image_emb, temperature):
    both = (text_emb, image_emb)
    if not all(torch.is_tensor(x) and x.dim() == 2 for x in both):
        raise ValueError("clip_loss needs two 2-D torch tensors")
    if text_emb.shape != image_emb.shape:
        raise ValueError(f"shapes differ: {tuple(text_emb.shape)} vs {tuple(image_emb.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = (
        torch.nn.functional.normalize(text_emb, dim=1)
        @ torch.nn.functional.normalize(image_emb, dim=1).T
    )
    logits = logits / temperature
    rows = torch.log_softmax(logits, dim=1).diagonal()
    cols = torch.log_softmax(logits, dim=0).diagonal()
    return -(rows.mean() + cols.mean()) / 2
