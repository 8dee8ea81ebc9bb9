# exercise: 05_infonce
# why: computes the loss in numpy (detached copies): the value is right but the result has no
#   autograd graph, so training cannot call backward().
import numpy as np


def clip_loss(text_emb, image_emb, temperature):
    if not (isinstance(text_emb, torch.Tensor) and isinstance(image_emb, torch.Tensor)):
        raise ValueError("text_emb and image_emb must be torch tensors")
    if text_emb.ndim != 2 or text_emb.shape != image_emb.shape:
        raise ValueError("need two (n, d) tensors of the same shape")
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    t = text_emb.detach().numpy().astype(np.float64)
    i = image_emb.detach().numpy().astype(np.float64)
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    i /= np.maximum(np.linalg.norm(i, axis=1, keepdims=True), 1e-12)
    logits = t @ i.T / temperature

    def ce(z):
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - np.diag(z)))

    return torch.tensor(0.5 * (ce(logits) + ce(logits.T)), dtype=text_emb.dtype)
