# exercise: 09_percentile
# why: numpy sort and index, milliseconds before indexing.
def latency_percentile(seconds, p: float) -> float:
    ms = np.sort(np.asarray(seconds, dtype=np.float64)) * 1000.0
    if ms.size == 0 or not (0 < p <= 100):
        raise ValueError("need timings and p in (0, 100]")
    rank = math.ceil(p / 100 * ms.size)
    return float(ms[max(rank, 1) - 1])
