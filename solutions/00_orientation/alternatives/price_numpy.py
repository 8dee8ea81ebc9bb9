# exercise: 00_price_summary
# why: numpy instead of pandas statistics (np.nanmin/np.nanmedian over the coerced prices,
#   the department checked after filtering), converted to Python types.
import numpy as np


def price_summary(catalog: pd.DataFrame, department: str | None = None) -> dict:
    if department is None:
        rows = catalog
    elif department in C.DEPARTMENTS:
        rows = catalog.loc[catalog[C.COL_DEPARTMENT] == department]
    else:
        raise ValueError(f"{department!r} is not a department ({', '.join(C.DEPARTMENTS)})")
    values = pd.to_numeric(rows[C.COL_PRICE], errors="coerce").to_numpy(dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return dict(count=0, min=None, max=None, mean=None, median=None)
    return dict(
        count=int(values.size),
        min=float(np.min(values)),
        max=float(np.max(values)),
        mean=float(np.mean(values)),
        median=float(np.median(values)),
    )
