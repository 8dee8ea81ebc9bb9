# exercise: 03_price_fit
# why: measures the gap relative to the price instead of the bound ((p - high) / p).
import numpy as np


def price_fit(prices, low, high, tolerance: float = 0.2) -> np.ndarray:
    if tolerance <= 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance}")
    p = np.asarray(prices, dtype=np.float64)
    lo = np.broadcast_to(np.asarray(low, dtype=np.float64), p.shape)
    hi = np.broadcast_to(np.asarray(high, dtype=np.float64), p.shape)
    over = np.where(np.isnan(hi), 0.0, np.maximum(p - np.nan_to_num(hi), 0.0) / p)
    under = np.where(np.isnan(lo), 0.0, np.maximum(np.nan_to_num(lo) - p, 0.0) / p)
    return np.exp(-(over + under) / tolerance)
