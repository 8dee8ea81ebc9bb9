# exercise: 09_percentile
# why: numpy's default percentile interpolates between two timings: a latency no request had.
def latency_percentile(seconds, p: float) -> float:
    x = np.asarray(seconds, dtype=float)
    if x.size == 0:
        raise ValueError("no timings")
    if not 0 < p <= 100:
        raise ValueError(f"p must be in (0, 100], got {p}")
    return float(np.percentile(x, p) * 1000.0)
