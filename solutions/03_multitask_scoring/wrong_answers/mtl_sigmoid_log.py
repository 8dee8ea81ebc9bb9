# exercise: 03_multitask_loss
# why: computes sigmoid then log (binary_cross_entropy on probabilities): logits of +-100
#   saturate to exactly 0 or 1 and the loss is clamped or infinite.
def multitask_loss(rel_logits, buy_logits, rel_target, buy_target, alpha: float) -> torch.Tensor:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    shapes = {tuple(t.shape) for t in (rel_logits, buy_logits, rel_target, buy_target)}
    if len(shapes) != 1 or rel_logits.numel() == 0:
        raise ValueError(f"inputs need one non-empty shape, got {sorted(shapes)}")
    bce = torch.nn.functional.binary_cross_entropy
    rel = bce(torch.sigmoid(rel_logits), rel_target)
    return alpha * rel + (1 - alpha) * bce(torch.sigmoid(buy_logits), buy_target)
