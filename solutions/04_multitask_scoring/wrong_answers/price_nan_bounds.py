# exercise: 04_price_fit
# why: no special case for NaN bounds: max(p - NaN, 0) is NaN, so an unbounded side turns the
#   whole fit into NaN.
import numpy as np


def price_fit(prices, low, high, tolerance: float = 0.2) -> np.ndarray:
    if tolerance <= 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance}")
    p = np.asarray(prices, dtype=np.float64)
    lo = np.asarray(low, dtype=np.float64)
    hi = np.asarray(high, dtype=np.float64)
    over = np.maximum(p - hi, 0.0) / hi
    under = np.maximum(lo - p, 0.0) / lo
    return np.exp(-(over + under) / tolerance)
