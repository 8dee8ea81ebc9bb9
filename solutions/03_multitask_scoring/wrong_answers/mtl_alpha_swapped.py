# exercise: 03_multitask_loss
# why: weighs the purchase loss by alpha and the relevance loss by 1 - alpha.
def multitask_loss(rel_logits, buy_logits, rel_target, buy_target, alpha: float) -> torch.Tensor:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    shapes = {tuple(t.shape) for t in (rel_logits, buy_logits, rel_target, buy_target)}
    if len(shapes) != 1 or rel_logits.numel() == 0:
        raise ValueError(f"inputs need one non-empty shape, got {sorted(shapes)}")
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    return (1 - alpha) * bce(rel_logits, rel_target) + alpha * bce(buy_logits, buy_target)
