# exercise: 03_multitask_loss
# why: checks that the shapes agree but not that they are non-empty: empty inputs give a nan
#   loss instead of ValueError.
def multitask_loss(rel_logits, buy_logits, rel_target, buy_target, alpha: float) -> torch.Tensor:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if len({tuple(t.shape) for t in (rel_logits, buy_logits, rel_target, buy_target)}) != 1:
        raise ValueError("the four inputs must have the same shape")
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    return alpha * bce(rel_logits, rel_target) + (1 - alpha) * bce(buy_logits, buy_target)
