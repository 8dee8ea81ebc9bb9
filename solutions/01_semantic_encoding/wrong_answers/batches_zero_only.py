# exercise: 01_batches
# why: rejects batch_size == 0 only; a negative batch size gives an empty list of batches.
def length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    if batch_size == 0:
        raise ValueError("batch_size must be >= 1")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
