# exercise: 01_batches
# why: sorted(..., reverse=True) on the lengths: Python keeps sorting stable with reverse=True,
#   so ties stay by lower index.
def length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches = []
    while order:
        batches.append(order[:batch_size])
        order = order[batch_size:]
    return batches
