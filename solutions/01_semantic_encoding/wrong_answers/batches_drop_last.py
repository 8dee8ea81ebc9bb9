# exercise: 01_batches
# why: stops at the last full batch (range(0, n - batch_size + 1, ...)): the short last batch
#   and its texts are lost.
def length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
