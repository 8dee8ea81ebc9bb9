# exercise: 00_price_summary
# why: returns numpy float64 statistics (Series.min() etc. without float()), not Python floats.
def price_summary(catalog: pd.DataFrame, department: str | None = None) -> dict:
    if department is not None and department not in C.DEPARTMENTS:
        raise ValueError(f"unknown department {department!r}")
    rows = catalog if department is None else catalog[catalog[C.COL_DEPARTMENT] == department]
    prices = pd.to_numeric(rows[C.COL_PRICE], errors="coerce").dropna()
    if prices.empty:
        return {"count": 0, "min": None, "max": None, "mean": None, "median": None}
    return {
        "count": len(prices),
        "min": prices.min(),
        "max": prices.max(),
        "mean": prices.mean(),
        "median": prices.median(),
    }
