# exercise: 09_percentile
# why: returns a numpy scalar from the sorted array instead of a Python float.
def latency_percentile(seconds, p: float) -> float:
    x = np.sort(np.asarray(seconds, dtype=np.float64))
    if x.size == 0:
        raise ValueError("no timings")
    if not 0 < p <= 100:
        raise ValueError(f"p must be in (0, 100], got {p}")
    return x[max(math.ceil(p / 100 * x.size), 1) - 1] * 1000.0
