# exercise: 00_price_summary
# why: an unknown department silently gives an empty summary instead of the ValueError the
#   text asks for.
def price_summary(catalog: pd.DataFrame, department: str | None = None) -> dict:
    rows = catalog if department is None else catalog[catalog[C.COL_DEPARTMENT] == department]
    prices = pd.to_numeric(rows[C.COL_PRICE], errors="coerce").dropna()
    if prices.empty:
        return {"count": 0, "min": None, "max": None, "mean": None, "median": None}
    return {
        "count": int(prices.size),
        "min": float(prices.min()),
        "max": float(prices.max()),
        "mean": float(prices.mean()),
        "median": float(prices.median()),
    }
