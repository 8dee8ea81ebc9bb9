# exercise: 03_price_fit
# why: rejects negative tolerances only: tolerance = 0 divides by zero instead of raising.
import numpy as np


def price_fit(prices, low, high, tolerance: float = 0.2) -> np.ndarray:
    if tolerance < 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance}")
    p = np.asarray(prices, dtype=np.float64)
    lo = np.broadcast_to(np.asarray(low, dtype=np.float64), p.shape)
    hi = np.broadcast_to(np.asarray(high, dtype=np.float64), p.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        over = np.where(np.isnan(hi), 0.0, np.maximum(p - hi, 0.0) / hi)
        under = np.where(np.isnan(lo), 0.0, np.maximum(lo - p, 0.0) / lo)
        return np.exp(-(over + under) / tolerance)
