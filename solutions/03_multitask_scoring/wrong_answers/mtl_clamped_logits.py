# exercise: 03_multitask_loss
# why: "stabilises" by clamping the logits to [-20, 20] before sigmoid + log: finite, but a
#   confidently wrong logit of 100 costs 20 instead of 100, and the clamp kills its gradient.
def multitask_loss(rel_logits, buy_logits, rel_target, buy_target, alpha: float) -> torch.Tensor:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    shapes = {tuple(t.shape) for t in (rel_logits, buy_logits, rel_target, buy_target)}
    if len(shapes) != 1 or rel_logits.numel() == 0:
        raise ValueError(f"inputs need one non-empty shape, got {sorted(shapes)}")

    def bce(z, t):
        p = torch.sigmoid(z.clamp(-20, 20))
        return -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()

    return alpha * bce(rel_logits, rel_target) + (1 - alpha) * bce(buy_logits, buy_target)
