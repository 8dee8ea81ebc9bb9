# exercise: 01_batches
# why: sorts ascending (stably) and reverses: longest first, but ties end up by higher index.
def length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])[::-1]
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
