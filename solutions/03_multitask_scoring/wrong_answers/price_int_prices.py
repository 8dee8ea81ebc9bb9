# exercise: 03_price_fit
# why: keeps the prices' own dtype: with integer prices np.zeros_like makes integer gap arrays,
#   so relative gaps are truncated to whole numbers.
import numpy as np


def price_fit(prices, low, high, tolerance: float = 0.2) -> np.ndarray:
    if tolerance <= 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance}")
    p = np.asarray(prices)
    lo = np.broadcast_to(np.asarray(low, dtype=np.float64), p.shape)
    hi = np.broadcast_to(np.asarray(high, dtype=np.float64), p.shape)
    over, under = np.zeros_like(p), np.zeros_like(p)
    has_hi, has_lo = ~np.isnan(hi), ~np.isnan(lo)
    over[has_hi] = np.maximum(p[has_hi] - hi[has_hi], 0.0) / hi[has_hi]
    under[has_lo] = np.maximum(lo[has_lo] - p[has_lo], 0.0) / lo[has_lo]
    return np.exp(-(over + under) / tolerance).astype(np.float64)
