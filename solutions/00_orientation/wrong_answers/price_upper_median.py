# exercise: 00_price_summary
# why: the "median" is the middle element of the sorted prices, which for an even count is the
#   upper of the two middle values instead of their mean.
def price_summary(catalog: pd.DataFrame, department: str | None = None) -> dict:
    if department is not None and department not in C.DEPARTMENTS:
        raise ValueError(f"unknown department {department!r}")
    rows = catalog if department is None else catalog[catalog[C.COL_DEPARTMENT] == department]
    prices = sorted(pd.to_numeric(rows[C.COL_PRICE], errors="coerce").dropna().tolist())
    if not prices:
        return {"count": 0, "min": None, "max": None, "mean": None, "median": None}
    return {
        "count": len(prices),
        "min": float(prices[0]),
        "max": float(prices[-1]),
        "mean": float(sum(prices) / len(prices)),
        "median": float(prices[len(prices) // 2]),
    }
