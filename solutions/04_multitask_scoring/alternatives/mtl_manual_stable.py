# exercise: 04_multitask_loss
# why: the stable BCE written out, max(z, 0) - z t + log(1 + e^-|z|), instead of torch's
#   binary_cross_entropy_with_logits.
def multitask_loss(rel_logits, buy_logits, rel_target, buy_target, alpha: float) -> torch.Tensor:
    if alpha < 0 or alpha > 1:
        raise ValueError(f"alpha={alpha} is outside [0, 1]")
    tensors = (rel_logits, buy_logits, rel_target, buy_target)
    if any(t.shape != rel_logits.shape for t in tensors) or rel_logits.numel() == 0:
        raise ValueError(f"need four non-empty tensors of one shape: {[t.shape for t in tensors]}")

    def bce(z, t):
        return (z.clamp(min=0) - z * t + torch.log1p(torch.exp(-z.abs()))).mean()

    return alpha * bce(rel_logits, rel_target) + (1 - alpha) * bce(buy_logits, buy_target)
