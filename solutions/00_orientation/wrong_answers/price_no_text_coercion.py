# exercise: 00_price_summary
# why: prices stored as text ("1.5", "n/a") are not coerced: astype(float) fails on "n/a"
#   instead of skipping it.
def price_summary(catalog: pd.DataFrame, department: str | None = None) -> dict:
    if department is not None and department not in C.DEPARTMENTS:
        raise ValueError(f"unknown department {department!r}")
    rows = catalog if department is None else catalog[catalog[C.COL_DEPARTMENT] == department]
    prices = rows[C.COL_PRICE].dropna().astype(float)
    if prices.empty:
        return {"count": 0, "min": None, "max": None, "mean": None, "median": None}
    return {
        "count": int(prices.size),
        "min": float(prices.min()),
        "max": float(prices.max()),
        "mean": float(prices.mean()),
        "median": float(prices.median()),
    }
